// Exercise integrity, part 1: the exercises in steps/ are exactly what the
// solutions generate. (Part 2, that each pristine exercise N runs like step
// N-1, is in each step's suite: tests/suite.ts.)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { exerciseSource, pristineExercise, todosOf } from '../workshop/exercises.js';
import { STEPS, exerciseFile, solutionFile } from '../workshop/steps.js';

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
