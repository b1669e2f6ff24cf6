// Running a step's checks and showing the result the workshop way: one line
// per check, expected vs actual, the hint, the command to reproduce it, and
// the progress bar. Used by `npm run check` and `npm run watch`.
import chalk from 'chalk';
import { relative } from 'node:path';
import { CheckFailure, checksUpTo, makeContext, type Check } from './checks.js';
import { runtimeFile, type Target } from './harness.js';
import { REPO_ROOT } from '../lib/paths.js';
import { readState, updateState } from './progress.js';
import { STEPS, type Step } from './steps.js';
import { reportToRoom } from './room/client.js';

interface Outcome {
  check: Check;
  error?: unknown;
}

/** Run `checks` two at a time (two cores), keeping their order for printing. */
async function runAll(checks: Check[], step: Step, target: Target): Promise<Outcome[]> {
  const context = makeContext(step, target);
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < checks.length) {
      const index = next++;
      const check = checks[index]!;
      try {
        await check.run(context);
        outcomes[index] = { check };
      } catch (error) {
        outcomes[index] = { check, error };
      }
    }
  };
  await Promise.all([worker(), worker()]);
  return outcomes;
}

export function progressBar(): string {
  const state = readState();
  const done = STEPS.filter((step) => state.checks[step.number]?.status === 'done').length;
  const width = 24;
  const filled = Math.round((done / STEPS.length) * width);
  return `${chalk.green('█'.repeat(filled))}${chalk.dim('░'.repeat(width - filled))} ${done}/${STEPS.length} steps done`;
}

function indent(text: string, prefix: string): string {
  return text.split('\n').map((line) => prefix + line).join('\n');
}

/** Check `step` (and the steps before it); print the report; true when everything passed. */
export async function checkStep(step: Step, target: Target = 'steps'): Promise<boolean> {
  const file = relative(REPO_ROOT, runtimeFile(step, target));
  console.log(chalk.bold(`Checking step ${step.number} — ${step.title}`) + chalk.dim(` (${file})`));
  const outcomes = await runAll(checksUpTo(step.number), step, target);
  for (const { check, error } of outcomes) {
    const label = `${chalk.dim(`[step ${check.step}]`)} ${check.name}`;
    if (error === undefined) {
      console.log(`  ${chalk.green('✓')} ${label}`);
      continue;
    }
    console.log(`  ${chalk.red('✗')} ${label}`);
    const message = error instanceof CheckFailure ? error.message : `the check itself failed: ${error instanceof Error ? error.message : String(error)}`;
    console.log(indent(message, '      '));
    console.log(chalk.yellow(indent(`hint: ${check.hint}`, '      ')));
  }
  const failed = outcomes.filter((outcome) => outcome.error !== undefined).length;
  if (target === 'steps') {
    updateState((state) => {
      state.checks[step.number] = { status: failed === 0 ? 'done' : 'failing', when: new Date().toISOString() };
    });
  }
  console.log();
  if (failed === 0) {
    const following = STEPS.find((s) => s.number === step.number + 1);
    console.log(chalk.green.bold(`✓ Step ${step.number} done!`) + ` The reference is solutions/${step.stem}.ts (\`npm run diff ${step.number} -- --mine\` compares it with yours).`);
    console.log(following ? `Next: step ${following.number}, ${following.title}: edit steps/${following.stem}.ts, then \`npm run check ${following.number}\`.` : 'That was the last step: you built a container runtime!');
  } else {
    console.log(chalk.red.bold(`✗ ${failed} of ${outcomes.length} checks failed.`) + ` Fix ${file}, then run \`npm run check ${step.number}\` again (\`npm run hint ${step.number}\` helps).`);
  }
  console.log(progressBar());
  // The instructor's room, if this checkout joined one (npm run join): at most 300 ms, never an error.
  if (target === 'steps') await reportToRoom({ step: step.number, checks: outcomes.map(({ check, error }) => ({ step: check.step, name: check.name, passed: error === undefined, error })) });
  return failed === 0;
}
