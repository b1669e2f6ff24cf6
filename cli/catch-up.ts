// npm run catch-up N — for a participant who fell behind: the reference
// solution of every step up to N goes into steps/ (their own files are backed
// up first, in .workshop/backups/), then `check N` runs, so that progress shows
// what the checks say about the files now in steps/.
import chalk from 'chalk';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { relative } from 'node:path';
import { backUp, plainSolution, pristineExercise } from '../workshop/exercises.js';
import { checkStep } from '../workshop/check-runner.js';
import { STEPS, exerciseFile, solutionFile } from '../workshop/steps.js';
import { main, requireStep } from './common.js';

main(async () => {
  const target = requireStep(process.argv[2], 'catch-up');
  for (const step of STEPS.filter((s) => s.number <= target.number)) {
    const file = exerciseFile(step);
    const reference = plainSolution(readFileSync(solutionFile(step), 'utf8'));
    const current = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    if (current === reference) continue;
    // The pristine exercise is not worth a backup: `npm run reset N` brings it back.
    const backup = current !== undefined && current !== pristineExercise(step) ? backUp(file, step.stem) : undefined;
    writeFileSync(file, reference);
    console.log(`${chalk.green('✓')} steps/${step.stem}.ts is the reference now${backup ? chalk.dim(` (yours: ${relative(process.cwd(), backup)})`) : ''}`);
  }
  console.log();
  return (await checkStep(target)) ? 0 : 1;
});
