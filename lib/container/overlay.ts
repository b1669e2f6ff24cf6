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
import { chmodSync, mkdirSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isStale } from './stale.js';
import { traceNote } from '../kernel/trace.js';
import { WorkshopError } from '../kernel/errors.js';
import { overlayBlocker } from '../host/machine.js';

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

/** The overlay mount's options: `lowerdir=...,upperdir=...,workdir=...`. */
export function overlayOptions(lower: string, layers: Layers): string {
  return `lowerdir=${lower},upperdir=${layers.upper},workdir=${layers.work}`;
}

/** Create the (empty) layer folders of container `id`. */
export function createLayers(id: string): Layers {
  const blocker = overlayBlocker();
  if (blocker) throw new WorkshopError(blocker, 'Run steps 6 and later as root (`sudo npm run step N`), or use a newer kernel (Ubuntu 22.04+, Debian 12+).');
  // Shared by every user, like /tmp itself: anyone may add a folder, only its owner may remove it.
  if (mkdirSync(LAYERS_PARENT, { recursive: true }) !== undefined) chmodSync(LAYERS_PARENT, 0o1777);
  const layers = layersOf(id);
  mkdirSync(layers.dir, { mode: 0o700 });
  for (const folder of [layers.upper, layers.work, layers.merged]) mkdirSync(folder);
  traceNote(`mkdir ${layers.dir}/{upper,work,merged}`);
  return layers;
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
    process.emitWarning(`could not remove ${dir}: ${(error as Error).message}`);
  }
}

/** Remove the folders of runs that were killed before they could clean up (their runtime pid is gone). */
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
