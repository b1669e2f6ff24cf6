// npm run diff N [-- --mine] [--compact]
//
// What the solution of step N adds over step N-1, as a coloured diff: the
// instructor's slide. With --mine: your steps/ file against the solution.
// With --compact: only the code lines the step adds or changes (no comments,
// new imports as one list), cut to 100 columns: one projector screen.
import chalk from 'chalk';
import { structuredPatch } from 'diff';
import { existsSync, readFileSync } from 'node:fs';
import { STEPS, exerciseFile } from '../workshop/steps.js';
import { compactDiff, plainSolutionOf, renderCompact } from '../workshop/step-diff.js';
import { EXIT, WorkshopError } from '../lib/kernel/errors.js';
import { main, requireStep } from './common.js';

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
  const args = process.argv.slice(2);
  const step = requireStep(args[0], 'diff');
  const compact = args.includes('--compact');
  const unknown = args.slice(1).find((arg) => arg !== '--mine' && arg !== '--compact');
  if (unknown !== undefined) throw new WorkshopError(`unknown option ${unknown}`, 'Usage: npm run diff N [-- --mine] [--compact]', EXIT.usage);
  const solution = plainSolutionOf(step.number);
  if (args.includes('--mine')) {
    const mine = exerciseFile(step);
    if (!existsSync(mine)) throw new WorkshopError(`steps/${step.stem}.ts is missing.`, `Restore it with \`npm run reset ${step.number}\`.`, EXIT.usage);
    const yours = readFileSync(mine, 'utf8');
    const title = `What solutions/${step.stem}.ts has that your steps/${step.stem}.ts does not (code only)`;
    console.log(compact ? renderCompact(title, compactDiff(yours, solution)) : renderDiff(`steps/${step.stem}.ts (yours)`, `solutions/${step.stem}.ts`, yours, solution));
    return 0;
  }
  const previous = STEPS.find((s) => s.number === step.number - 1);
  const previousName = previous ? `solutions/${previous.stem}.ts` : '(nothing)';
  if (compact) {
    const title = `Step ${step.number} — ${step.title}: the code it adds over ${previous ? `step ${previous.number}` : 'nothing'}`;
    console.log(renderCompact(title, compactDiff(plainSolutionOf(step.number - 1), solution)));
    return 0;
  }
  console.log(renderDiff(previousName, `solutions/${step.stem}.ts`, plainSolutionOf(step.number - 1), solution));
  return 0;
});
