// npm run reset N — put the pristine exercise back; the old file is kept in .workshop/backups/.
import chalk from 'chalk';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { backUp, pristineExercise } from '../workshop/exercises.js';
import { REPO_ROOT } from '../lib/paths.js';
import { updateState } from '../workshop/progress.js';
import { exerciseFile } from '../workshop/steps.js';
import { main, requireStep } from './common.js';

main(() => {
  const step = requireStep(process.argv[2], 'reset');
  const file = exerciseFile(step);
  const pristine = pristineExercise(step);
  if (existsSync(file) && readFileSync(file, 'utf8') === pristine) {
    console.log(`${relative(REPO_ROOT, file)} is already the pristine exercise: nothing to do.`);
    return 0;
  }
  const backup = backUp(file, step.stem);
  if (backup) console.log(`Your version is saved as ${chalk.bold(relative(process.cwd(), backup))}`);
  writeFileSync(file, pristine);
  updateState((state) => {
    delete state.checks[step.number];
    delete state.hints[step.number];
  });
  console.log(chalk.green(`✓ ${relative(REPO_ROOT, file)} is the pristine exercise again.`) + ` Next: edit it, then \`npm run check ${step.number}\`.`);
  return 0;
});
