// What the workshop commands (npm run step/check/hint/...) share.
import chalk from 'chalk';
import { EXIT, WorkshopError, reportError } from '../lib/kernel/errors.js';
import { shellQuote } from '../workshop/harness.js';
import { STEPS, findStep, usesCgroups, type Step } from '../workshop/steps.js';
import { inDelegatedScope, needsDelegatedScope } from '../lib/host/privileges.js';

/** The list of steps, for usage messages. */
export function stepList(): string {
  return STEPS.map((step) => `    ${chalk.bold(step.number)}  ${step.stem.padEnd(11)} ${chalk.dim(step.adds)}`).join('\n');
}

/**
 * The workshop's own flags, as npm stores them when they come before `--`:
 * `npm run step 3 --solution` sets npm_config_solution=true (npm only warns
 * "Unknown cli config") and never passes the flag on.
 */
const FLAGS = ['solution', 'trace', 'debug', 'rootfs', 'hostname', 'pids_max', 'memory', 'id', 'mine', 'poll', 'check', 'env'];

/** Stop when npm took some of our flags for itself: say where they go instead (exit 2). */
export function rejectFlagsTakenByNpm(command: string, args: readonly string[] = process.argv.slice(2)): void {
  const taken = FLAGS.filter((flag) => process.env[`npm_config_${flag}`] !== undefined).map((flag) => `--${flag.replace(/_/g, '-')}`);
  // `-c 'echo hi'` before `--` is npm's --call: `npm run step 4 --trace sh -c 'echo hi'` would run a bare `sh`.
  const call = process.env.npm_config_call;
  if (taken.length === 0 && call === undefined) return;
  const [first, ...rest] = args;
  const words = ['npm run', command, ...(first ? [first] : []), '--', ...taken, ...rest, ...(call === undefined ? [] : ['-c', call])];
  const example = words.map((word, index) => (index < 2 ? word : shellQuote(word))).join(' ');
  const what = [...taken, ...(call === undefined ? [] : ['-c'])].join(', ');
  throw new WorkshopError(
    `npm took ${what} for itself: flags before \`--\` are npm's own, and it never passes them on.`,
    `Put flags after \`--\`: \`${example}\``,
    EXIT.usage,
  );
}

/** The step named by `text`, or a usage error listing the steps (exit 2). */
export function requireStep(text: string | undefined, command: string): Step {
  rejectFlagsTakenByNpm(command);
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
