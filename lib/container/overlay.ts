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
// Each container's folders live in <layers folder>/<id>/: the parent creates
// them before the child starts and removes them after it exits, and with them
// every write the container made. The next run removes the folders of runs
// that were killed (lib/container/stale.ts).
//
// The layers folder is one only this user can write. Whoever can write there
// could swap a container's upper layer for their own between the moment the
// parent creates it and the moment the child mounts it, and have root run
// their /bin/sh in the container (a shared /tmp/containers-from-scratch allowed
// exactly that). So:
//   root:     /run/containers-from-scratch                (0700; /run is a tmpfs)
//   others:   $XDG_RUNTIME_DIR/containers-from-scratch    (the user's own 0700 tmpfs)
//             else <temp folder>/containers-from-scratch-layers-<uid>, 0700
// An overlay's upper layer cannot be on an overlay (/tmp and /run inside a
// Docker container are): then /dev/shm/containers-from-scratch-layers-<uid>, a tmpfs.
// The folder is created without following symlinks, then checked: a folder
// that belongs to someone else, or that others can write, is refused.
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { WorkshopError, warn } from '../kernel/errors.js';
import { Cgroup, cgroupLayout, untouchedForLong } from './cgroups.js';
import { isStale, ownerOf } from './stale.js';
import { traceNote, traceShortName } from '../kernel/trace.js';
import { overlayBlocker } from '../host/machine.js';
import { chdir } from '../kernel/libc.js';
import { missingLayer, pullCommand } from './image.js';
import type { Container } from './options.js';
import { ensureRootfs } from './rootfs.js';

/** statfs(2)'s f_type of an overlay file system (linux/magic.h). */
const OVERLAYFS_MAGIC = 0x794c7630;

function onOverlay(path: string): boolean {
  try {
    return statfsSync(path).type === OVERLAYFS_MAGIC;
  } catch {
    return false;
  }
}

/** This user's uid on the host, also inside a user namespace, where it is 0 (read from /proc/self/uid_map). */
export function hostUid(): number {
  const uid = process.getuid?.() ?? 0;
  try {
    for (const line of readFileSync('/proc/self/uid_map', 'utf8').trim().split('\n')) {
      const [inside = 0, outside = 0, count = 0] = line.trim().split(/\s+/).map(Number);
      if (uid >= inside && uid < inside + count) return outside + (uid - inside);
    }
  } catch {
    // no /proc: assume no user namespace
  }
  return uid;
}

function exists(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
}

/** Where this user's container layers go (see the top of this file). Parent and child compute the same. */
export function layersFolder(): string {
  const uid = hostUid();
  const runtimeDir = process.env.XDG_RUNTIME_DIR;
  const candidates = [
    ...(uid === 0 ? ['/run/containers-from-scratch'] : []),
    ...(uid !== 0 && runtimeDir?.startsWith('/') ? [join(runtimeDir, 'containers-from-scratch')] : []),
    join(tmpdir(), `containers-from-scratch-layers-${uid}`),
  ];
  return candidates.find((path) => exists(dirname(path)) && !onOverlay(dirname(path))) ?? `/dev/shm/containers-from-scratch-layers-${uid}`;
}

export const LAYERS_PARENT = layersFolder();

/** Why `folder` is not safe to keep layers in, or undefined when it is this user's alone. */
export function unsafeFolder(folder: string): string | undefined {
  const parent = statSync(dirname(folder));
  // Whoever may rename entries of the parent could swap the folder itself: the parent must be
  // sticky (like /tmp) or writable by its owner only, and that owner root or this user.
  const uid = process.getuid?.() ?? 0;
  if (!(parent.mode & 0o1000) && ((parent.mode & 0o022) !== 0 || (parent.uid !== 0 && parent.uid !== uid))) {
    return `${dirname(folder)} can be changed by another user (owner uid ${parent.uid}, mode ${(parent.mode & 0o7777).toString(8)})`;
  }
  const stat = lstatSync(folder);
  if (stat.isSymbolicLink()) return `${folder} is a symbolic link`;
  if (!stat.isDirectory()) return `${folder} is not a folder`;
  if (stat.uid !== uid) return `${folder} belongs to uid ${stat.uid}, not to you (uid ${uid})`;
  if ((stat.mode & 0o022) !== 0) return `${folder} can be written by others (mode ${(stat.mode & 0o777).toString(8)})`;
  return undefined;
}

/** Create this user's layers folder if needed (0700, never through a symlink), and make sure it is safe. */
function ensureLayersFolder(): void {
  try {
    mkdirSync(LAYERS_PARENT, { mode: 0o700 }); // fails with EEXIST on anything already there, symlinks included
    traceNote(`mkdir ${LAYERS_PARENT} (mode 0700)`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const problem = unsafeFolder(LAYERS_PARENT);
  if (problem) {
    throw new WorkshopError(
      `refusing to keep container layers in ${LAYERS_PARENT}: ${problem}.`,
      'Another user could swap a container\'s files for their own there. Remove that folder (or ask its owner to), ' +
        'or point TMPDIR (or XDG_RUNTIME_DIR) to a folder of your own, then run again.',
    );
  }
  if ((lstatSync(LAYERS_PARENT).mode & 0o077) !== 0) chmodSync(LAYERS_PARENT, 0o700); // ours: nobody else needs to read it either
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

/** Create the (empty) layer folders of container `id`, in this user's own layers folder: all of them, or none. */
export function createLayers(id: string): Layers {
  const blocker = overlayBlocker();
  if (blocker) throw new WorkshopError(blocker, 'Run steps 6 and later as root (`sudo npm run step N`), or use a newer kernel (Ubuntu 22.04+, Debian 12+).');
  const layers = layersOf(id);
  try {
    ensureLayersFolder();
  } catch (error) {
    throw error instanceof WorkshopError ? error : layersError(error, LAYERS_PARENT, id);
  }
  // --trace=compact shows these folders as layers/... and merged/... (the container's root).
  traceShortName(layers.dir, 'layers');
  traceShortName(layers.merged, 'merged');
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

/** What a failed mkdir of the layers means, and what to do. */
function layersError(error: unknown, path: string, id: string): WorkshopError {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const failed = `creating the container's layer folders (${path}) failed: ${code || (error as Error).message}`;
  const temp = `the folder ${dirname(LAYERS_PARENT)}`;
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

/**
 * Remove the folders of runs that were killed before they could clean up (the
 * process that made them is gone). Those made in another PID namespace go only
 * once no cgroup of that id is left (a running container always has one) and
 * they have been untouched for long.
 */
export function removeStaleLayers(): void {
  let ids: string[] = [];
  try {
    if (unsafeFolder(LAYERS_PARENT)) return; // not ours to clean: createLayers() says why
    ids = readdirSync(LAYERS_PARENT);
  } catch {
    return; // no container ran yet
  }
  for (const id of ids) {
    const dir = layersOf(id).dir;
    const foreignAndUnused = (): boolean => ownerOf(id) === 'another' && untouchedForLong(dir) && !cgroupExists(id);
    if (!isStale(id) && !foreignAndUnused()) continue;
    traceNote(`stale layers ${id}: the process that made them is gone`);
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // still busy: the next run tries again
    }
  }
}

/** Does a cgroup of container `id` exist (in any hierarchy)? */
function cgroupExists(id: string): boolean {
  try {
    return new Cgroup(cgroupLayout(), id).folders.some((folder) => existsSync(folder));
  } catch {
    return false; // no usable cgroups here: steps 6+ would not have run
  }
}
