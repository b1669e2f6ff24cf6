// Exercise integrity, part 1: the exercises committed in steps/ are exactly
// what the solutions generate. (Part 2, that each pristine exercise N runs like
// step N-1, is in each step's suite: tests/suite.ts.)
//
// It compares with what git has committed, not with the files on disk: in a
// participant's checkout, steps/ holds their work, and `npm test` must mean
// the same there as anywhere else.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { REPO_ROOT } from '../lib/paths.js';
import { exerciseSource, pristineExercise, todosOf } from '../workshop/exercises.js';
import { STEPS, exerciseFile, solutionFile } from '../workshop/steps.js';

/** The file as committed in git (HEAD), or undefined outside a git checkout. */
function committed(path: string): string | undefined {
  const inside = spawnSync('git', ['-C', REPO_ROOT, 'rev-parse', '--is-inside-work-tree'], { encoding: 'utf8' });
  if (inside.status !== 0 || inside.stdout.trim() !== 'true') return undefined;
  const shown = spawnSync('git', ['-C', REPO_ROOT, 'show', `HEAD:${path}`], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (shown.status !== 0) throw new Error(`${path} is not committed: ${shown.stderr.trim()}`);
  return shown.stdout;
}

describe('exercises are generated from the solutions', () => {
  for (const step of STEPS) {
    test(`steps/${step.stem}.ts is what solutions/${step.stem}.ts generates (on disk, or as committed)`, (t) => {
      const generated = pristineExercise(step);
      const onDisk = readFileSync(exerciseFile(step), 'utf8');
      // Regenerated (committed or not): fine. Else the committed one must be it: steps/ on disk may be a participant's work.
      if (onDisk === generated) return;
      const exercise = committed(`steps/${step.stem}.ts`);
      if (exercise === undefined) {
        t.skip('steps/ differs from the generated exercise, and this is not a git checkout: nothing committed to tell a participant’s edit from a stale exercise');
        return;
      }
      assert.ok(exercise === generated, `steps/${step.stem}.ts is out of date: run \`npm run exercises\` (and commit it)`);
    });
    test(`solutions/${step.stem}.ts marks what step ${step.number} adds, with hints`, () => {
      const todos = todosOf(step);
      assert.ok(todos.length > 0, 'a step needs at least one TODO(step N) region');
      for (const todo of todos) assert.ok(todo.hints.length >= 2, `TODO at line ${todo.line} needs a hint in the exercise and at least one more (the call, the code)`);
    });
  }
  test('a solution changed without regenerating is caught', () => {
    const [step] = STEPS;
    assert.ok(step);
    const edited = readFileSync(solutionFile(step), 'utf8').replace('runtime({', '// a line added to the solution\nruntime({');
    assert.notEqual(exerciseSource(edited, step), pristineExercise(step));
  });
});
