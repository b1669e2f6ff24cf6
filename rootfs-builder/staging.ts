// A new root filesystem is made in a folder beside its target, then put in
// place with rename(2): nobody ever sees half a rootfs, and with --force the
// previous one is replaced only once the new one is complete. A failed or
// interrupted build leaves the previous rootfs exactly as it was.
//
//   rootfs/                                  the target
//   .rootfs.importing-<pid>-<hex>/           being imported (0700: nobody else can reach it)
//   .rootfs.building-<pid>-<hex>/            being built
//   .rootfs.replaced-<pid>-<hex>/            the previous rootfs, for the instant of the swap
//
// The pid names the process that made the folder: once it is gone, the next
// build or import into the same place removes its leftovers (or, if the swap
// itself was interrupted, puts the previous rootfs back).
import { mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { warn } from '../lib/kernel/errors.js';
import { generatedId, processIsGone } from '../lib/container/stale.js';
import { lstatIfExists } from './safe-fs.js';

export type StagingKind = 'importing' | 'building';

/** Folders beside `target` that this module names: .<name>.<kind>-<pid>-<hex>. */
function siblingPattern(target: string): RegExp {
  const name = basename(target).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^\\.${name}\\.(importing|building|replaced)-(\\d+)-[0-9a-f]+$`);
}

/** A new, empty, private (0700) folder beside `target`, named after this process. */
export function makeStaging(target: string, kind: StagingKind): string {
  mkdirSync(dirname(target), { recursive: true });
  const folder = join(dirname(target), `.${basename(target)}.${generatedId(kind)}`);
  mkdirSync(folder, { mode: 0o700 });
  return folder;
}

/** Remove the staging folders of builds and imports that were killed; put back a rootfs whose swap was interrupted. */
export function removeStaleStaging(target: string, log: (line: string) => void = () => {}): void {
  const pattern = siblingPattern(target);
  let names: string[];
  try {
    names = readdirSync(dirname(target));
  } catch {
    return; // no parent folder yet
  }
  for (const name of names) {
    const match = pattern.exec(name);
    if (!match || !processIsGone(Number(match[2]))) continue;
    const folder = join(dirname(target), name);
    if (match[1] === 'replaced' && !lstatIfExists(target)) {
      renameSync(folder, target);
      log(`put back ${target}: the import that was replacing it was interrupted`);
    } else {
      log(`removing ${name}, left by an interrupted ${match[1] === 'building' ? 'build' : 'import'}`);
      rmSync(folder, { recursive: true, force: true });
    }
  }
}

/** Put the complete `staging` folder in place of `target` (replacing a previous one when `replace` is set). */
export function putInPlace(staging: string, target: string, replace: boolean): void {
  if (!replace || !lstatIfExists(target)) {
    renameSync(staging, target); // fails (ENOTEMPTY/EEXIST) if another build got there first
    return;
  }
  const previous = join(dirname(target), `.${basename(target)}.${generatedId('replaced')}`);
  renameSync(target, previous);
  try {
    renameSync(staging, target);
  } catch (error) {
    renameSync(previous, target);
    throw error;
  }
  try {
    rmSync(previous, { recursive: true, force: true });
  } catch (error) {
    warn(`could not remove the previous root filesystem ${previous}: ${(error as Error).message}`);
  }
}
