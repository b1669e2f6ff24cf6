// What the workshop commands (npm run step/check/hint/...) share.
import chalk from 'chalk';
import { EXIT, WorkshopError, reportError } from '../lib/kernel/errors.js';
import { STEPS, findStep, usesCgroups, type Step } from '../workshop/steps.js';
import { inDelegatedScope, needsDelegatedScope } from '../lib/host/privileges.js';

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

/**
 * `check` and `watch` without root, from step 5 on: when this process is not
 * in a cgroup delegated to the user but their systemd can give one, re-run the
 * whole command in a new systemd scope with Delegate=yes, so that its containers
 * (and the checks that look at their cgroups) all use that one. Replaces this process.
 */
export async function enterDelegatedCgroup(step: Step): Promise<void> {
  if (process.getuid?.() === 0 || !usesCgroups(step) || !needsDelegatedScope()) return;
  const { execvp } = await import('../lib/kernel/libc.js'); // loaded only here: the other commands start without ffi-rs
  const command = inDelegatedScope([process.execPath, ...process.execArgv, ...process.argv.slice(1)]);
  execvp(command[0]!, command);
}
