// Finding the container's root filesystem before the child needs it.
import chalk from 'chalk';
import { existsSync, writeSync } from 'node:fs';
import { buildRootfs, checkRootfs } from '../rootfs-builder/build.js';
import { WorkshopError } from './errors.js';
import { DEFAULT_ROOTFS } from './paths.js';

/**
 * Make sure `dir` is a usable root filesystem. The repository's own rootfs/
 * is built (offline, from the host's programs) the first time it is needed;
 * any other folder must already be one.
 */
export function ensureRootfs(dir: string): void {
  if (dir === DEFAULT_ROOTFS && !existsSync(dir)) {
    writeSync(2, chalk.dim(`rootfs/ is missing: building it now (once) with the host's programs…\n`));
    buildRootfs(dir);
  }
  const check = checkRootfs(dir);
  if (!check.ok) throw new WorkshopError(`the root filesystem ${dir} is not usable: ${check.problem}`, check.fix);
}
