// Where things are, wherever a command is run from.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Set by cli/launch.mjs when it bundles a step into its cache: the bundle no
// longer sits in lib/, so import.meta.url would point into the cache.
declare const BUNDLED_REPO_ROOT: string | undefined;

/** The repository's folder. */
export const REPO_ROOT =
  typeof BUNDLED_REPO_ROOT === 'string' ? BUNDLED_REPO_ROOT : fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

/** The root filesystem the containers use unless --rootfs says otherwise. */
export const DEFAULT_ROOTFS = `${REPO_ROOT}/rootfs`;

/**
 * The image store: pulled or loaded images, their layers unpacked once each
 * (rootfs-builder/image-store.ts writes it, lib/container/image.ts reads it).
 * CFS_IMAGES points elsewhere (the tests use a temporary one).
 */
export const IMAGES_DIR = process.env.CFS_IMAGES ? resolve(process.env.CFS_IMAGES) : `${REPO_ROOT}/images`;
