// Where things are, wherever a command is run from.
import { fileURLToPath } from 'node:url';

// Set by cli/launch.mjs when it bundles a step into its cache: the bundle no
// longer sits in lib/, so import.meta.url would point into the cache.
declare const BUNDLED_REPO_ROOT: string | undefined;

/** The repository's folder. */
export const REPO_ROOT =
  typeof BUNDLED_REPO_ROOT === 'string' ? BUNDLED_REPO_ROOT : fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

/** The root filesystem the containers use unless --rootfs says otherwise. */
export const DEFAULT_ROOTFS = `${REPO_ROOT}/rootfs`;
