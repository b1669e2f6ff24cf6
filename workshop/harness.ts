// The check harness: running a step's runtime in a container the way a
// participant would (npm run check and npm test both use it).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureDefaultRootfs } from '../rootfs-builder/build.js';
import { ensureFlatImage } from '../rootfs-builder/image-store.js';
import { compile } from './compile.mjs';
import { IMAGES_DIR, REPO_ROOT } from '../lib/paths.js';
import { inUserNamespace } from '../lib/host/privileges.js';
import { STEPS, exerciseFile, solutionFile, type Step } from './steps.js';

/** Which runtime files the checks run against: the reference, or the participant's. */
export type Target = 'solutions' | 'steps';

export function targetFromEnv(): Target {
  return process.env.CFS_TARGET === 'steps' ? 'steps' : 'solutions';
}

export function stepNumbered(number: number): Step {
  const step = STEPS.find((s) => s.number === number);
  if (!step) throw new Error(`no step ${number} in this checkout`);
  return step;
}

export function runtimeFile(step: Step, target: Target): string {
  return target === 'steps' ? exerciseFile(step) : solutionFile(step);
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The command a person would type to see the same thing. */
  reproduce: string;
}

export interface RunOptions {
  input?: string;
  /** Keep stdin open until this settles (a container that waits with `read`). */
  holdStdinUntil?: Promise<unknown>;
  /** Runtime options before the command (--hostname, --rootfs, ...). */
  options?: string[];
  /** Pass the options and the command as they are, without `--` between them (to test the runtime's own parsing). */
  omitSeparator?: boolean;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Run as this user (numeric uid:gid) through setpriv, for the rootless tests. */
  asUser?: { uid: number; gid: number };
}

/** Quote an argument for the copy-paste command line shown on failure. */
function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function reproduceCommand(step: Step, target: Target, args: readonly string[]): string {
  const solution = target === 'solutions' ? ['--solution'] : [];
  return ['npm run step', String(step.number), '--', ...solution, ...args].map((word, i) => (i < 3 ? word : shellQuote(word))).join(' ');
}

/**
 * Run `command` in a container of `step` (the runtime file of `target`):
 * node <compiled step> run [options] -- command...
 */
export async function runContainer(step: Step, target: Target, command: string[], options: RunOptions = {}): Promise<RunResult> {
  ensureDefaultRootfs();
  // An image at steps 4-5 runs from its layers merged into one folder, as with npm run step.
  const image = options.options?.[options.options.indexOf('--image') + 1];
  if (options.options?.includes('--image') && image && step.number <= 5) await ensureFlatImage(image, options.env?.CFS_IMAGES ?? IMAGES_DIR);
  const bundle = await compile(runtimeFile(step, target));
  const args = [...(options.options ?? []), ...(options.omitSeparator ? [] : ['--']), ...command];
  let invocation = [process.execPath, bundle, 'run', ...args];
  // Without root, the runtime needs a user namespace, as with `npm run step`.
  if (options.asUser || process.getuid?.() !== 0) invocation = inUserNamespace(invocation);
  if (options.asUser) {
    const { uid, gid } = options.asUser;
    invocation = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', ...invocation];
  }
  const [program, ...argv] = invocation;
  return new Promise((resolve, reject) => {
    const child = spawn(program!, argv, {
      cwd: REPO_ROOT,
      env: { ...process.env, TRACE: '', FORCE_COLOR: '0', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 30_000,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    if (options.holdStdinUntil) {
      child.stdin.write(options.input ?? '');
      void options.holdStdinUntil.finally(() => child.stdin.end());
    } else {
      child.stdin.end(options.input ?? '');
    }
    child.on('error', reject);
    child.on('close', (status, signal) =>
      resolve({ status, signal, stdout, stderr, reproduce: reproduceCommand(step, target, [...(options.options ?? []), ...command]) }),
    );
  });
}

/** Lines of output, without the trailing empty one. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line, index, all) => !(index === all.length - 1 && line === ''));
}

/** Host pids of the processes whose command line is exactly `argv`. */
export function hostProcesses(argv: string[]): number[] {
  const wanted = argv.join('\0') + '\0';
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === wanted;
      } catch {
        return false; // exited meanwhile
      }
    })
    .map(Number);
}

/** Poll `condition` every 20 ms; false if it is still false after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  for (const start = Date.now(); Date.now() - start < timeoutMs; await sleep(20)) if (condition()) return true;
  return condition();
}
