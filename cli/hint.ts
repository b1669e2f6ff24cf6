// npm run hint N — the next hint for step N, each more specific than the last.
// The hints live next to the TODOs in solutions/0N-*.ts (see workshop/exercises.ts).
import chalk from 'chalk';
import { todosOf } from '../workshop/exercises.js';
import { readState, updateState } from '../workshop/progress.js';
import { main, requireStep } from './common.js';

main(() => {
  const step = requireStep(process.argv[2], 'hint');
  const todos = todosOf(step);
  // Gentle hints of every TODO first, then the more specific ones.
  const depth = Math.max(...todos.map((todo) => todo.hints.length));
  const hints: { task: string; hint: string }[] = [];
  for (let level = 0; level < depth; level++) {
    for (const todo of todos) {
      const hint = todo.hints[level];
      if (hint) hints.push({ task: todo.task, hint });
    }
  }
  const shown = readState().hintsShown[step.number] ?? 0;
  if (shown >= hints.length) {
    console.log(`That was the last hint for step ${step.number}. The TODOs:`);
    for (const todo of todos) console.log(`  • ${todo.task}`);
    console.log(`See exactly what to add: ${chalk.bold(`npm run diff ${step.number}`)} (or run the reference: \`npm run step ${step.number} -- --solution\`).`);
    updateState((state) => void (state.hintsShown[step.number] = 0));
    console.log(chalk.dim('(The next `npm run hint` starts from the first hint again.)'));
    return 0;
  }
  const { task, hint } = hints[shown]!;
  console.log(chalk.bold(`Hint ${shown + 1}/${hints.length} for step ${step.number}`) + chalk.dim(` — ${task}`));
  console.log(`  ${chalk.yellow(hint)}`);
  if (shown + 1 < hints.length) console.log(chalk.dim(`  (run it again for a more specific hint)`));
  updateState((state) => void (state.hintsShown[step.number] = shown + 1));
  return 0;
});
