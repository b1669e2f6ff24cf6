// npm run hint N — the next hint for step N, about what the last `npm run check N`
// found: the first failing check's concept, then the call, then the code.
import chalk from 'chalk';
import { checkNamed, ladderForCheck, ladderForStep, type Hint } from '../workshop/hints.js';
import { readState, updateState } from '../workshop/progress.js';
import { main, requireStep } from './common.js';

main(() => {
  const step = requireStep(process.argv[2], 'hint');
  const record = readState().checks[step.number];
  if (record?.kind === 'compile') {
    console.log(`${chalk.bold(`steps/${step.stem}.ts does not compile`)} (at ${record.where ?? 'the line `npm run check` showed'}): fix that first — \`npm run check ${step.number}\` shows the error with a caret under it.`);
    return 0;
  }
  if (record?.status === 'done') {
    console.log(`Step ${step.number} passes all its checks. Compare yours with the reference: \`npm run diff ${step.number} -- --mine\`.`);
    return 0;
  }
  const failing = record?.failing?.[0];
  const check = failing ? checkNamed(failing.name) : undefined;
  const hints: Hint[] = check ? ladderForCheck(check) : ladderForStep(step);
  const key = check?.name ?? '';
  const previous = readState().hints[step.number];
  const shown = previous?.check === key ? previous.shown : 0;
  if (!check) {
    console.log(chalk.dim(`(No failing check to start from: \`npm run check ${step.number}\` first, and the hints follow what it finds.)`));
  }
  if (shown >= hints.length) {
    console.log(`That was the last hint${check ? ` for "${check.name}"` : ''}. See exactly what step ${step.number} adds: ${chalk.bold(`npm run diff ${step.number}`)}, or yours against the reference: ${chalk.bold(`npm run diff ${step.number} -- --mine`)}.`);
    updateState((state) => void (state.hints[step.number] = { check: key, shown: 0 }));
    console.log(chalk.dim('(The next `npm run hint` starts from the first hint again.)'));
    return 0;
  }
  const hint = hints[shown]!;
  const about = check ? `${chalk.dim(`[step ${check.step}]`)} ${check.name}` : hint.about;
  console.log(chalk.bold(`Hint ${shown + 1}/${hints.length} for step ${step.number} (${hint.level})`) + chalk.dim(' — ') + about);
  console.log(`  ${chalk.yellow(hint.text)}`);
  if (shown + 1 < hints.length) console.log(chalk.dim(`  (run it again for a more specific hint)`));
  updateState((state) => void (state.hints[step.number] = { check: key, shown: shown + 1 }));
  return 0;
});
