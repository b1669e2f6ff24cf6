// The container's layered root filesystem (overlayfs).
//
// An overlay mount shows a stack of folders as one:
//
//   merged/   what the container sees: upper on top of lower
//   upper/    this container's own layer: new files, changed copies, and
//             "whiteouts" that hide deleted lower files
//   work/     overlayfs's scratch space (same file system as upper)
//   lower     rootfs/, never written: many containers can share it
//
// Each container's folders live in <temp folder>/containers-from-scratch/<id>/:
// the parent creates them before the child starts and removes them after it
// exits, and with them every write the container made. The next run removes
// the folders of runs that were killed (lib/container/stale.ts).
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { WorkshopError, warn } from '../kernel/errors.js';
import { Cgroup, cgroupLayout, untouchedForLong } from './cgroups.js';
import { isStale, ownerOf } from './stale.js';
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

/**
 * The overlay mount's options: `lowerdir=...,upperdir=...,workdir=...`.
 * overlayfs splits them at "," and lowerdir at ":": in a path, those (and
 * "\\" itself) are written with a backslash before them.
 */
export function overlayOptions(lower: string, layers: Layers): string {
  const escape = (path: string): string => path.replace(/[\\,:]/g, (character) => `\\${character}`);
  const options = `lowerdir=${escape(lower)},upperdir=${escape(layers.upper)},workdir=${escape(layers.work)}`;
  // mount(2) reads at most one page of options.
  if (Buffer.byteLength(options) >= 4096) {
    throw new WorkshopError(
      `the overlay's options are ${Buffer.byteLength(options)} bytes long: mount(2) takes at most 4095`,
      'Use a shorter --rootfs path (or a shorter TMPDIR): the folders of the overlay are named in its options.',
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

/**
 * Remove the folders of runs that were killed before they could clean up (the
 * process that made them is gone). Those made in another PID namespace go only
 * once no cgroup of that id is left (a running container always has one) and
 * they have been untouched for long.
 */
export function removeStaleLayers(): void {
  let ids: string[] = [];
  try {
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
      // another user's (the folder is sticky, like /tmp): theirs to remove
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
