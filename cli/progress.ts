// npm run progress — every step with its status, as `npm run check` last found it.
import chalk from 'chalk';
import { existsSync, readFileSync } from 'node:fs';
import { pristineExercise } from '../workshop/exercises.js';
import { readState } from '../workshop/progress.js';
import { STEPS, exerciseFile } from '../workshop/steps.js';
import { progressBar } from '../workshop/check-runner.js';
import { main } from './common.js';

main(() => {
  const state = readState();
  console.log(chalk.bold('Your progress'));
  for (const step of STEPS) {
    const result = state.checks[step.number];
    const file = exerciseFile(step);
    const edited = existsSync(file) && readFileSync(file, 'utf8') !== pristineExercise(step);
    const mark = result?.status === 'done' ? chalk.green('✓ done   ') : result?.status === 'failing' ? chalk.red('✗ failing') : chalk.dim('○ todo   ');
    const note = result === undefined ? (edited ? chalk.dim('edited, not checked yet') : '') : chalk.dim(`checked ${new Date(result.when).toLocaleString()}`);
    console.log(`  ${mark}  ${String(step.number).padStart(2)}  ${step.title.padEnd(30)} ${note}`);
  }
  console.log(progressBar());
  const next = STEPS.find((step) => state.checks[step.number]?.status !== 'done');
  if (next) console.log(`Next: edit steps/${next.stem}.ts, then \`npm run check ${next.number}\`.`);
  return 0;
});
