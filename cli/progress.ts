// npm run progress — every step with its status, as the checks found it: a
// step is done when some `npm run check M` (M ≥ N) passed all of its checks.
import chalk from 'chalk';
import { stepProgress } from '../workshop/progress.js';
import { progressBar } from '../workshop/check-runner.js';
import { main } from './common.js';

main(() => {
  const all = stepProgress();
  console.log(chalk.bold('Your progress'));
  for (const { step, status, by, when, editedSince, editedUnchecked } of all) {
    const mark = status === 'done' ? chalk.green('✓ done   ') : status === 'failing' ? chalk.red('✗ failing') : chalk.dim('○ todo   ');
    const notes: string[] = [];
    if (when) notes.push(`checked ${new Date(when).toLocaleString()}${by !== undefined && by !== step.number ? ` (by \`npm run check ${by}\`)` : ''}`);
    if (editedSince) notes.push('edited since');
    if (editedUnchecked) notes.push('edited, not checked yet');
    console.log(`  ${mark}  ${String(step.number).padStart(2)}  ${step.title.padEnd(30)} ${chalk.dim(notes.join('; '))}`.trimEnd());
  }
  console.log(progressBar());
  const next = all.find((progress) => progress.status !== 'done');
  if (next) console.log(`Next: edit steps/${next.step.stem}.ts, then \`npm run check ${next.step.number}\`.`);
  else console.log('Every step is done.');
  return 0;
});
