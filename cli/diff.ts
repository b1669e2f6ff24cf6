// npm run diff N [-- --mine]
//
// What the solution of step N adds over step N-1, as a coloured diff: the
// instructor's slide. With --mine: your steps/ file against the solution.
import chalk from 'chalk';
import { structuredPatch } from 'diff';
import { existsSync, readFileSync } from 'node:fs';
import { plainSolution } from '../workshop/exercises.js';
import { STEPS, exerciseFile, solutionFile } from '../workshop/steps.js';
import { EXIT, WorkshopError } from '../lib/kernel/errors.js';
import { main, requireStep } from './common.js';

function readPlainSolution(stepNumber: number): string {
  const step = STEPS.find((s) => s.number === stepNumber);
  return step ? plainSolution(readFileSync(solutionFile(step), 'utf8')) : '';
}

/** A unified diff with colours and line numbers of the new file. */
export function renderDiff(oldName: string, newName: string, oldText: string, newText: string): string {
  const patch = structuredPatch(oldName, newName, oldText, newText, '', '', { context: 3 });
  if (patch.hunks.length === 0) return chalk.dim(`${oldName} and ${newName} are the same.`);
  const out = [chalk.bold(`--- ${oldName}`), chalk.bold(`+++ ${newName}`)];
  for (const hunk of patch.hunks) {
    out.push(chalk.cyan(`@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`));
    for (const line of hunk.lines) {
      if (line.startsWith('+')) out.push(chalk.green(line));
      else if (line.startsWith('-')) out.push(chalk.red(line));
      else if (line.startsWith('\\')) continue; // "\ No newline at end of file"
      else out.push(chalk.dim(line));
    }
  }
  return out.join('\n');
}

main(() => {
  const step = requireStep(process.argv[2], 'diff');
  const solution = readPlainSolution(step.number);
  if (process.argv.includes('--mine')) {
    const mine = exerciseFile(step);
    if (!existsSync(mine)) throw new WorkshopError(`steps/${step.stem}.ts is missing.`, `Restore it with \`npm run reset ${step.number}\`.`, EXIT.usage);
    console.log(renderDiff(`steps/${step.stem}.ts (yours)`, `solutions/${step.stem}.ts`, readFileSync(mine, 'utf8'), solution));
    return 0;
  }
  const previous = STEPS.find((s) => s.number === step.number - 1);
  const previousName = previous ? `solutions/${previous.stem}.ts` : '(nothing)';
  console.log(renderDiff(previousName, `solutions/${step.stem}.ts`, readPlainSolution(step.number - 1), solution));
  return 0;
});
