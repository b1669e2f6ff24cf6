// One step's test suite: the checks of this step and of every step before it,
// against solutions/ (npm test) or steps/ (npm run check, CFS_TARGET=steps).
import { describe, test } from 'node:test';
import { checksUpTo, makeContext } from './checks.js';
import { runtimeFile, stepNumbered, targetFromEnv } from './harness.js';
import { relative } from 'node:path';
import { REPO_ROOT } from '../lib/paths.js';

export function stepSuite(number: number): void {
  const step = stepNumbered(number);
  const target = targetFromEnv();
  const file = relative(REPO_ROOT, runtimeFile(step, target));
  describe(`step ${number} (${file})`, { concurrency: 2 }, () => {
    const context = makeContext(step, target);
    for (const check of checksUpTo(number)) {
      test(`[step ${check.step}] ${check.name}`, () => check.run(context));
    }
  });
}
