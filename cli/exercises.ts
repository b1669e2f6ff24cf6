// npm run exercises [-- --check]
//
// Regenerates steps/0N-*.ts from solutions/0N-*.ts (see workshop/exercises.ts).
// With --check, only reports which exercises are out of date (exit 1 if any).
import chalk from 'chalk';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { pristineExercise } from '../workshop/exercises.js';
import { REPO_ROOT } from '../lib/paths.js';
import { STEPS, exerciseFile } from '../workshop/steps.js';
import { main } from './common.js';

main(() => {
  const checkOnly = process.argv.includes('--check');
  let stale = 0;
  for (const step of STEPS) {
    const file = exerciseFile(step);
    const name = relative(REPO_ROOT, file);
    const pristine = pristineExercise(step);
    if (existsSync(file) && readFileSync(file, 'utf8') === pristine) {
      console.log(chalk.dim(`  ${name} up to date`));
    } else if (checkOnly) {
      stale++;
      console.log(chalk.red(`✗ ${name} differs from what solutions/${step.stem}.ts generates`));
    } else {
      writeFileSync(file, pristine);
      console.log(chalk.green(`✓ ${name} regenerated`));
    }
  }
  if (stale > 0) console.log(`Run \`npm run exercises\` to regenerate.`);
  return stale > 0 ? 1 : 0;
});
