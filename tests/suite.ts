// One step's test suite: the checks of this step and of every step before it,
// against solutions/ (npm test) or steps/ (CFS_TARGET=steps).
//
// With npm test it also checks the exercise's integrity (rustlings' `dev
// check`): the pristine exercise — generated from solutions/0N-*.ts, never
// read from steps/, which may hold a participant's work — runs like step N-1,
// so it passes the checks of steps 1..N-1 and fails at least one of step N's.
// (That the committed exercises are the generated ones is tests/integrity.test.ts.)
//
// After all the checks of a context ran, the host must be as before: the
// `after` hook fails the suite if any run left something the checks missed.
import assert from 'node:assert/strict';
import { relative } from 'node:path';
import { after, describe, test } from 'node:test';
import { REPO_ROOT } from '../lib/paths.js';
import { CHECKS, checksUpTo, makeContext, type CheckContext } from '../workshop/checks.js';
import { runtimeFile, stepNumbered, targetFromEnv } from '../workshop/harness.js';

/** Containers per test file at once: they spend much of their time starting processes. */
const CONCURRENCY = 2;

export function stepSuite(number: number): void {
  const step = stepNumbered(number);
  const target = targetFromEnv();
  const file = relative(REPO_ROOT, runtimeFile(step, target));
  describe(`step ${number} (${file})`, { concurrency: CONCURRENCY }, () => {
    const context = makeContext(step, target);
    for (const check of checksUpTo(number)) {
      test(`[step ${check.step}] ${check.name}`, () => check.run(context));
    }
    after(() => assertNothingLeft(context));
  });
  if (target === 'solutions') exerciseIntegrity(number);
}

function exerciseIntegrity(number: number): void {
  const step = stepNumbered(number);
  describe(`exercise integrity: the pristine steps/${step.stem}.ts runs like step ${number - 1}`, { concurrency: CONCURRENCY }, () => {
    const context = makeContext(step, 'pristine');
    for (const check of CHECKS.filter((c) => c.step < number)) {
      test(`passes [step ${check.step}] ${check.name}`, () => check.run(context));
    }
    test(`fails at least one check of step ${number}`, async () => {
      const own = CHECKS.filter((c) => c.step === number);
      for (const check of own) {
        if (await check.run(context).then(() => false, () => true)) return; // one failing check is enough
      }
      assert.fail(`the pristine exercise already passes all ${own.length} checks of step ${number}: its TODOs give the answer away`);
    });
  });
}

/** Every container of the context is gone without a trace (the harness found and removed nothing). */
async function assertNothingLeft(context: CheckContext): Promise<void> {
  const left = (await context.everyRun()).flatMap((result) => result.leftovers.map((leftover) => `${leftover.kind} ${leftover.what}`));
  assert.deepEqual(left, [], 'runs of the reference left these behind');
}
