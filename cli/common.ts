// What the workshop commands (npm run step/check/hint/...) share.
import chalk from 'chalk';
import { EXIT, WorkshopError, reportError } from '../lib/kernel/errors.js';
import { STEPS, findStep, type Step } from '../workshop/steps.js';

/** The list of steps, for usage messages. */
export function stepList(): string {
  return STEPS.map((step) => `    ${chalk.bold(step.number)}  ${step.stem.padEnd(11)} ${chalk.dim(step.adds)}`).join('\n');
}

/** The step named by `text`, or a usage error listing the steps (exit 2). */
export function requireStep(text: string | undefined, command: string): Step {
  const step = findStep(text);
  if (step) return step;
  const what = text === undefined ? 'which step?' : `there is no step ${JSON.stringify(text)}`;
  throw new WorkshopError(`${what} Usage: npm run ${command} N`, `The steps are:\n${stepList()}`, EXIT.usage);
}

/** Run a command's main function: errors become a paragraph and an exit code. */
export function main(run: () => Promise<number> | number): void {
  Promise.resolve()
    .then(run)
    .then(
      (code) => process.exit(code),
      (error: unknown) => process.exit(reportError(error)),
    );
}
