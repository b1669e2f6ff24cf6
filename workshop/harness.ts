// The check harness: running a step's runtime in a container the way a
// participant would (npm run check and npm test both use it).
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureDefaultRootfs } from '../rootfs-builder/build.js';
import { compile } from './compile.mjs';
import { REPO_ROOT } from '../lib/paths.js';
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
  const bundle = await compile(runtimeFile(step, target));
  const args = [...(options.options ?? []), '--', ...command];
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

/** Host pids of the processes whose environment contains `marker` (e.g. a runtime's child, which inherits its parent's). */
export function processesWithMarker(marker: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`).includes(marker);
      } catch {
        return false; // exited meanwhile, or not ours to read
      }
    })
    .map(Number);
}

/** The children of process `pid` (those its main thread started: Node spawns from it). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Start `step`'s runtime on a `sleep`, kill it with `signal` after `delay` ms
 * (setup takes the first ~150 ms) or the moment its child exists (while the
 * child's Node is still starting: the tightest spot), and return the pids of
 * what it left running after up to `settleMs`: the container's command, or a
 * child that had not become it yet, as "pid: command line". The right answer
 * is []. What is left is then killed.
 */
export async function killDuringSetup(step: Step, target: Target, delay: number | 'child-started', signal: NodeJS.Signals, settleMs = 10_000): Promise<string[]> {
  const bundle = await compile(runtimeFile(step, target));
  const sleeper = ['sleep', String(randomInt(1_000_000, 9_999_999))];
  const marker = `CFS_KILL_TEST=${randomBytes(6).toString('hex')}`;
  const [name, value] = marker.split('=') as [string, string];
  const runtime = spawn(process.execPath, [bundle, 'run', '--', ...sleeper], { cwd: REPO_ROOT, stdio: 'ignore', env: { ...process.env, TRACE: '', [name]: value } });
  const exited = new Promise((resolve) => runtime.on('exit', resolve));
  if (delay === 'child-started') {
    const started = Date.now();
    while (runtime.exitCode === null && childrenOf(runtime.pid!).length === 0 && Date.now() - started < 10_000) await sleep(2);
  } else {
    await sleep(delay);
  }
  runtime.kill(signal);
  await exited;
  const left = (): number[] => [...new Set([...hostProcesses(sleeper), ...processesWithMarker(marker)])];
  for (const start = Date.now(); left().length > 0 && Date.now() - start < settleMs; ) await sleep(100);
  const survivors = left().map((pid) => `${pid}: ${commandLine(pid)}`);
  for (const pid of left()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return survivors;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '(gone)';
  }
}
