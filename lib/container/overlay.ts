// The container's layered root filesystem (overlayfs).
//
// An overlay mount shows a stack of folders as one:
//
//   merged/   what the container sees: upper on top of lower
//   upper/    this container's own layer: new files, changed copies, and
//             "whiteouts" that hide deleted lower files
//   work/     overlayfs's scratch space (same file system as upper)
//   lower     rootfs/, never written: many containers can share it;
//             or an image's layers, stacked: lowerdir=top:…:bottom (--image)
//
// Each container's folders live in <temp folder>/containers-from-scratch/<id>/:
// the parent creates them before the child starts and removes them after it
// exits, and with them every write the container made. The next run removes
// the folders of runs that were killed (lib/container/stale.ts).
import { chmodSync, mkdirSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { WorkshopError, warn } from '../kernel/errors.js';
import { chdir } from '../kernel/libc.js';
import { missingLayer, pullCommand } from './image.js';
import type { Container } from './options.js';
import { ensureRootfs } from './rootfs.js';
import { isStale } from './stale.js';
import { traceNote } from '../kernel/trace.js';

/** statfs(2)'s f_type of an overlay file system (linux/magic.h). */
const OVERLAYFS_MAGIC = 0x794c7630;

/**
 * Where the layers of every container go: the temp folder, unless it is on an
 * overlay itself (/tmp inside a Docker container is), which overlayfs refuses
 * as an upper layer; then /dev/shm, a tmpfs (the layers then live in memory).
 */
export const LAYERS_PARENT = join(onOverlay(tmpdir()) ? '/dev/shm' : tmpdir(), 'containers-from-scratch');

function onOverlay(path: string): boolean {
  try {
    return statfsSync(path).type === OVERLAYFS_MAGIC;
  } catch {
    return false;
  }
}

export interface Layers {
  /** The container's folder, holding the three below. */
  dir: string;
  upper: string;
  work: string;
  merged: string;
}

/** The layer folders of container `id` (parent and child compute the same paths). */
export function layersOf(id: string): Layers {
  const dir = join(LAYERS_PARENT, id);
  return { dir, upper: join(dir, 'upper'), work: join(dir, 'work'), merged: join(dir, 'merged') };
}

/** The read-only layers under the container's own, top first: its image's layers (--image), or the rootfs folder. */
export function lowerLayers(container: Container): string[] {
  return container.image ? container.image.layers : [container.rootfs];
}

/** Before anything is created: the read-only layers are there (the rootfs checked, or every layer of the image). */
export function ensureLowerLayers(container: Container): void {
  if (!container.image) return ensureRootfs(container.rootfs);
  const missing = missingLayer(container.image);
  if (missing) {
    throw new WorkshopError(`the image ${container.image.ref} lacks its layer ${missing} (was the image store cleaned by hand?)`, `Pull it again: ${pullCommand(container.image.ref)}`);
  }
}

/** mount(2) reads at most one page of options. */
const MAX_OPTIONS = 4095;

/**
 * The overlay mount's options: `lowerdir=top:…:bottom,upperdir=...,workdir=...`.
 * overlayfs splits them at "," and lowerdir at ":": in a path, those (and
 * "\\" itself) are written with a backslash before them.
 *
 * An image of many layers can name more folders than one page holds. Then the
 * layers are named relative to the folder they share, which becomes the
 * current folder (the kernel resolves relative paths from it when mounting):
 * "layers/0123456789ab" is 19 bytes, so hundreds of layers fit.
 */
export function overlayOptions(container: Container, layers: Layers): string {
  const escape = (path: string): string => path.replace(/[\\,:]/g, (character) => `\\${character}`);
  const lower = lowerLayers(container);
  // Layers whose opaque folders are marked with user.overlay.* xattrs (pulled without root) need `userxattr`.
  const rest = `upperdir=${escape(layers.upper)},workdir=${escape(layers.work)}${container.image?.userXattrs ? ',userxattr' : ''}`;
  let options = `lowerdir=${lower.map(escape).join(':')},${rest}`;
  const shared = dirname(dirname(lower[0]!));
  if (Buffer.byteLength(options) > MAX_OPTIONS && lower.length > 1 && lower.every((folder) => dirname(dirname(folder)) === shared)) {
    options = `lowerdir=${lower.map((folder) => escape(folder.slice(shared.length + 1))).join(':')},${rest}`;
    if (Buffer.byteLength(options) <= MAX_OPTIONS) {
      traceNote(`${lower.length} layers: named relative to ${shared} (their full paths exceed mount(2)'s one page)`);
      chdir(shared);
    }
  }
  if (Buffer.byteLength(options) > MAX_OPTIONS) {
    throw new WorkshopError(
      `the overlay's options are ${Buffer.byteLength(options)} bytes long: mount(2) takes at most ${MAX_OPTIONS}`,
      lower.length > 1
        ? `The image has ${lower.length - 1} layers: too many for one mount (overlayfs stacks up to 500, in one page of options).`
        : 'Use a shorter --rootfs path (or a shorter TMPDIR): the folders of the overlay are named in its options.',
    );
  }
  return options;
}

/** Create the (empty) layer folders of container `id`: all of them, or none. */
export function createLayers(id: string): Layers {
  const layers = layersOf(id);
  try {
    makeLayersParent();
  } catch (error) {
    throw layersError(error, LAYERS_PARENT, id);
  }
  try {
    mkdirSync(layers.dir, { mode: 0o700 });
  } catch (error) {
    throw layersError(error, layers.dir, id);
  }
  try {
    for (const folder of [layers.upper, layers.work, layers.merged]) mkdirSync(folder);
  } catch (error) {
    rmSync(layers.dir, { recursive: true, force: true });
    throw layersError(error, layers.dir, id);
  }
  traceNote(`mkdir ${layers.dir}/{upper,work,merged}`);
  return layers;
}

/**
 * The folder of every container's layers, shared by every user like /tmp
 * itself: anyone may add a folder, only its owner may remove it. Created
 * without `recursive` (which loops forever under /proc): its parent must exist.
 */
function makeLayersParent(): void {
  try {
    mkdirSync(LAYERS_PARENT);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw error;
  }
  chmodSync(LAYERS_PARENT, 0o1777);
}

/** What a failed mkdir of the layers means, and what to do. */
function layersError(error: unknown, path: string, id: string): WorkshopError {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const failed = `creating the container's layer folders (${path}) failed: ${code || (error as Error).message}`;
  const temp = `the temporary folder ${dirname(LAYERS_PARENT)} (from TMPDIR)`;
  switch (code) {
    case 'EEXIST':
      return new WorkshopError(
        `${failed}: a container with the id "${id}" is running, or a run with this --id was killed`,
        `Give this one another --id (or leave --id out). If no container "${id}" runs, remove the folder: rm -r ${path}`,
      );
    case 'ENOSPC':
    case 'EDQUOT':
      return new WorkshopError(`${failed}: no space (or no free inodes) left there`, `Free some space (df -h ${dirname(path)}; df -i ${dirname(path)}), or set TMPDIR to a folder with room.`);
    case 'ENOENT':
    case 'ENOTDIR':
      return new WorkshopError(`${failed}: ${temp} is not a folder on disk`, 'Set TMPDIR to an existing folder (e.g. TMPDIR=/tmp), or unset it.');
    case 'EROFS':
      return new WorkshopError(`${failed}: ${temp} is read-only`, 'Set TMPDIR to a writable folder (e.g. TMPDIR=/tmp).');
    case 'EACCES':
    case 'EPERM':
      return new WorkshopError(`${failed}: this user may not write there`, 'Set TMPDIR to a folder of yours, or check its permissions (ls -ld).');
    default:
      return new WorkshopError(failed, '`npm run doctor` checks what this machine offers for overlays.');
  }
}

/**
 * Remove container `id`'s folders, and with them its writes. The overlay
 * itself was only mounted in the container's mount namespace, which the
 * kernel tore down when the container's last process exited.
 */
export function removeLayers(id: string): void {
  const { dir } = layersOf(id);
  try {
    rmSync(dir, { recursive: true, force: true });
    traceNote(`rm -r ${dir}`);
  } catch (error) {
    warn(`could not remove ${dir}: ${(error as Error).message}`);
  }
}

/** Remove the folders of runs that were killed before they could clean up (the process that made them is gone). */
export function removeStaleLayers(): void {
  let ids: string[] = [];
  try {
    ids = readdirSync(LAYERS_PARENT);
  } catch {
    return; // no container ran yet
  }
  for (const id of ids) {
    if (!isStale(id)) continue;
    traceNote(`stale layers ${id}: its runtime is gone`);
    try {
      rmSync(layersOf(id).dir, { recursive: true, force: true });
    } catch {
      // another user's (the folder is sticky, like /tmp): theirs to remove
    }
  }
}
