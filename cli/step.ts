// npm run step N [-- [--solution] [--trace] [--rootfs DIR | --image REF] [cmd args...]]
//
// Runs the participant's runtime for step N (the reference with --solution).
// Default command: an interactive shell.
import chalk from 'chalk';
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { createRequire } from 'node:module';
import { EXIT, WorkshopError } from '../lib/kernel/errors.js';
import { execvp, withBytes } from '../lib/kernel/libc.js';
import { argumentBytes } from '../lib/container/environment.js';
import { REPO_ROOT } from '../lib/paths.js';
import { exerciseFile, solutionFile, usesCgroups, type Step } from '../workshop/steps.js';
import { pristineExercise } from '../workshop/exercises.js';
import { ensureDefaultRootfs } from '../rootfs-builder/build.js';
import { mistakeKind, prepareFile, renderDiagnostics } from '../workshop/source-check.js';
import { ensureFlatImage } from '../rootfs-builder/image-store.js';
import { main, requireStep } from './common.js';
import { rootlessCommand, userNamespaceBlocker } from '../lib/host/privileges.js';

/**
 * file:line of the first TODO when the participant's file is still the
 * pristine exercise (an edited file is the participant's business).
 */
export function untouchedExercise(file: string, step: Step): string | undefined {
  const source = readFileSync(file, 'utf8');
  if (source !== pristineExercise(step)) return undefined;
  const line = source.split('\n').findIndex((text) => text.includes(`TODO(step ${step.number})`)) + 1;
  return `${relative(process.cwd(), file) || file}:${line}`;
}

/**
 * Without root, namespaces need a user namespace, and Node (multi-threaded)
 * cannot unshare one itself: replace this process with util-linux's
 * `unshare --user --map-root-user`, which enters it and then starts node.
 * From step 5 on, cgroups also need a cgroup delegated to this user: when
 * this process is not in one, systemd-run asks the user's systemd for one
 * first (lib/host/privileges.ts).
 */
function reexecInUserNamespace(bundle: string, args: string[], step: Step): never {
  const blocker = userNamespaceBlocker();
  if (blocker) throw new WorkshopError('you are not root, and this machine does not allow user namespaces.', blocker);
  process.env.CFS_ROOTLESS = '1';
  const command = rootlessCommand([process.execPath, bundle, 'run'], { cgroups: usesCgroups(step) });
  // The arguments as the exact bytes typed (they need not be UTF-8), not as Node decoded them.
  return execvp(command[0]!, withBytes([...command.map((word) => Buffer.from(word)), ...argumentBytes(args)]));
}

/** Options of the runtime that take a value, to find where the command starts. */
const VALUE_OPTIONS = new Set(['--rootfs', '--hostname', '--pids-max', '--memory', '--id', '--env', '--image', '--entrypoint', '--user']);

/** The value of `--image REF` among the runtime's options (before the command), if any. */
function imageOption(args: readonly string[]): string | undefined {
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] ?? '';
    if (arg === '--image') return args[index + 1];
    if (arg === '--' || !arg.startsWith('--')) break;
    if (VALUE_OPTIONS.has(arg)) index++;
  }
  return undefined;
}

/** Take `--solution` out of the options (before the command), leaving the runtime's own. */
function takeSolutionFlag(args: string[]): { useSolution: boolean; args: string[] } {
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] ?? '';
    if (arg === '--solution') return { useSolution: true, args: args.filter((_, i) => i !== index) };
    if (arg === '--' || !arg.startsWith('--')) break;
    if (VALUE_OPTIONS.has(arg)) index++;
  }
  return { useSolution: false, args };
}

main(async () => {
  if (process.platform !== 'linux') {
    throw new WorkshopError(
      `containers need a Linux kernel, and this is ${process.platform}.`,
      'Use a Linux VM (e.g. `multipass launch`, UTM or Lima on macOS, a Hyper-V/VirtualBox VM or WSL2 — not WSL1 — on Windows), or a privileged Linux dev container.',
    );
  }
  const [stepArg, ...rest] = process.argv.slice(2);
  const step = requireStep(stepArg, 'step');
  const { useSolution, args } = takeSolutionFlag(rest);
  const file = useSolution ? solutionFile(step) : exerciseFile(step);
  if (!existsSync(file)) {
    throw new WorkshopError(`${relative(REPO_ROOT, file)} is missing.`, `Restore it with \`npm run reset ${step.number}\`.`, EXIT.usage);
  }
  const todo = useSolution ? undefined : untouchedExercise(file, step);
  if (todo) {
    const behaviour = step.number === 1 ? 'it does not run the command yet' : `it runs like step ${step.number - 1}`;
    process.stderr.write(
      chalk.yellow(`● ${todo}: step ${step.number} is still the untouched exercise, so ${behaviour}. `) +
        chalk.dim(`(npm run hint ${step.number}, or --solution for the reference)\n`),
    );
  }
  ensureDefaultRootfs(); // built once, the first time any step runs
  // The file first: a syntax or type error is shown once, as the participant's, and nothing runs.
  const prepared = await prepareFile(file);
  if (!prepared.ok) {
    const shown = relative(process.cwd(), file) || file;
    process.stderr.write([chalk.red(mistakeKind(prepared, shown)), ...renderDiagnostics(prepared.diagnostics)].join('\n') + '\n');
    return EXIT.runtimeFailed;
  }
  // An image at steps 4-5 (and in a step-6 exercise, which may still bind-mount the rootfs): its layers merged into one folder, once.
  const image = imageOption(args);
  if (image && step.number >= 4 && (step.number <= 5 || (step.number === 6 && !useSolution))) await ensureFlatImage(image);
  const bundle = prepared.bundle;
  if (process.getuid?.() !== 0) reexecInUserNamespace(bundle, args, step);
  // Become the step's runtime, in this process: `<bundle> run <args>`.
  process.argv = [process.execPath, bundle, 'run', ...args];
  createRequire(bundle)(bundle);
  return new Promise<number>(() => {}); // the runtime exits the process itself
});
