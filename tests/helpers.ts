// Helpers shared by the test files (the check harness itself is workshop/harness.ts).
import { cpSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { REPO_ROOT } from '../lib/paths.js';

/**
 * A copy of the repository in a temporary folder, for tests that change files
 * or state (steps/, .workshop/, a missing rootfs/). node_modules is shared, and
 * so is rootfs/ unless `withRootfs` is false. The caller removes the folder.
 */
export function copyOfRepository({ withRootfs = true } = {}): string {
  const copy = mkdtempSync(`${tmpdir()}/cfs-repo-`);
  for (const entry of ['cli', 'lib', 'workshop', 'rootfs-builder', 'solutions', 'steps', 'tests', 'package.json', 'tsconfig.json']) {
    cpSync(`${REPO_ROOT}/${entry}`, `${copy}/${entry}`, { recursive: true });
  }
  symlinkSync(`${REPO_ROOT}/node_modules`, `${copy}/node_modules`);
  if (withRootfs) symlinkSync(`${REPO_ROOT}/rootfs`, `${copy}/rootfs`);
  return copy;
}
