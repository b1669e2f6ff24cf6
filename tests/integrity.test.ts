// Exercise integrity (rustlings' `dev check`): the exercises in steps/ are
// exactly what the solutions generate, and each pristine exercise N runs like
// step N-1: it passes the checks of steps 1..N-1 and fails step N's.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { exerciseSource, pristineExercise, todosOf } from '../lib/exercises.js';
import { STEPS, exerciseFile, solutionFile } from '../lib/steps.js';
import { CHECKS, makeContext } from './checks.js';

describe('exercises are generated from the solutions', () => {
  for (const step of STEPS) {
    test(`steps/${step.stem}.ts is what solutions/${step.stem}.ts generates`, () => {
      const committed = readFileSync(exerciseFile(step), 'utf8');
      assert.ok(committed === pristineExercise(step), `steps/${step.stem}.ts is out of date: run \`npm run exercises\``);
    });
    test(`solutions/${step.stem}.ts marks what step ${step.number} adds, with hints`, () => {
      const todos = todosOf(step);
      assert.ok(todos.length > 0, 'a step needs at least one TODO(step N) region');
      for (const todo of todos) assert.ok(todo.hints.length >= 1, `TODO at line ${todo.line} has no hint`);
    });
  }
  test('a solution changed without regenerating is caught', () => {
    const [step] = STEPS;
    assert.ok(step);
    const edited = readFileSync(solutionFile(step), 'utf8').replace('runtime({', '// a line added to the solution\nruntime({');
    assert.notEqual(exerciseSource(edited, step), pristineExercise(step));
  });
});

describe('each pristine exercise runs like the step before it', { concurrency: 2 }, () => {
  for (const step of STEPS) {
    test(step.number === 1 ? `steps/${step.stem}.ts fails step 1` : `steps/${step.stem}.ts passes steps 1..${step.number - 1} and fails step ${step.number}`, async () => {
      const context = makeContext(step, 'steps');
      for (const check of CHECKS.filter((c) => c.step < step.number)) {
        await check.run(context).catch((error: unknown) => {
          throw new Error(`the pristine exercise fails "[step ${check.step}] ${check.name}": ${error instanceof Error ? error.message : error}`);
        });
      }
      const own = CHECKS.filter((c) => c.step === step.number);
      for (const check of own) {
        if (await check.run(context).then(() => false, () => true)) return; // one failing check is enough
      }
      assert.fail(`the pristine exercise already passes all ${own.length} checks of step ${step.number}: its TODOs give the answer away`);
    });
  }
});
