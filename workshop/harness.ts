// The check harness: running a step's runtime in a container the way a
// participant would (npm run check and npm test both use it), without ever
// letting it change the host.
//
// Every container run:
//   - gets a container id of this harness process, cfs-<harness pid>-<hex>,
//     so that whatever it leaves behind is found by name (and, should this
//     process be killed, removed by the next run like any killed run's);
//   - runs inside a throwaway sandbox (sandbox.ts) whose hostname and mount
//     table are compared before and after;
//   - leaves a record of the runtime's kernel calls (CFS_CALL_LOG), from which
//     a finding is explained;
//   - is followed by a scoped inventory — the cgroup and layer folders of its
//     id, processes still carrying its id — and whatever is found is removed.
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureDefaultRootfs } from '../rootfs-builder/build.js';
import { compile, compileSource } from './compile.mjs';
import { IMAGES_DIR, REPO_ROOT } from '../lib/paths.js';
import { inDelegatedScope, inUserNamespace, needsDelegatedScope } from '../lib/host/privileges.js';
import { Cgroup, cgroupLayout } from '../lib/container/cgroups.js';
import { layersOf } from '../lib/container/overlay.js';
import { generatedId, isStale } from '../lib/container/stale.js';
import { threadsOfOneThreadedProgram } from '../lib/host/machine.js';
import { exerciseSource } from './exercises.js';
import { mountChanges, parseReport, sandboxAvailable, sandboxed, type MountChanges, type SandboxReport } from './sandbox.js';
import { STEPS, exerciseFile, solutionFile, usesCgroups, type Step } from './steps.js';
import { ensureFlatImage } from '../rootfs-builder/image-store.js';

/**
 * Which runtime files the checks run against: the reference, the participant's
 * file in steps/, or the pristine exercise generated from the solution (what
 * exercise integrity checks, whatever a participant's steps/ holds).
 */
export type Target = 'solutions' | 'steps' | 'pristine';

export function targetFromEnv(): Target {
  return process.env.CFS_TARGET === 'steps' ? 'steps' : 'solutions';
}

export function stepNumbered(number: number): Step {
  const step = STEPS.find((s) => s.number === number);
  if (!step) throw new Error(`no step ${number} in this checkout`);
  return step;
}

export function runtimeFile(step: Step, target: Target): string {
  return target === 'solutions' ? solutionFile(step) : exerciseFile(step);
}

/** The compiled runtime of `step` for `target` (from the compile cache). */
export async function runtimeBundle(step: Step, target: Target): Promise<string> {
  if (target !== 'pristine') return compile(runtimeFile(step, target));
  return compileSource(exerciseSource(readFileSync(solutionFile(step), 'utf8'), step), exerciseFile(step));
}

/** What a run left on the host, found by the scoped inventory after it (and removed). */
export interface Leftover {
  kind: 'cgroup' | 'layers' | 'process';
  /** The folder, or "pid 123: node … run …". */
  what: string;
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The command a person would type to see the same thing. */
  reproduce: string;
  /** The container id this run was given. */
  id: string;
  /** The sandbox's readings (undefined when the run was not sandboxed). */
  sandbox?: SandboxReport;
  /** What the runtime changed in the sandbox's mount table. */
  mounts: MountChanges;
  /** The runtime's kernel calls: "parent 4242 unshare(CLONE_NEWUTS) = 0", … */
  calls: string[];
  /** Cgroup and layer folders and processes of this run's id found after it (already removed). */
  leftovers: Leftover[];
}

/** While a container runs: the sandbox's shell (host pid), to find the runtime under it. */
export interface Running {
  sandboxPid: number;
}

export interface RunOptions {
  input?: string;
  /** Keep stdin open until this settles (a container that waits with `read`). */
  holdStdinUntil?: Promise<unknown>;
  /** When stdout first contains `marker`, run `action` (the container is still running), then close stdin. */
  whenOutput?: { marker: string; action: (running: Running) => Promise<void> };
  /** Called with everything the command printed so far, each time it prints. */
  onOutput?: (stdout: string) => void;
  /** Runtime options before the command (--hostname, --rootfs, ...). */
  options?: string[];
  /** Another run still uses this run's --id: leave what it has alone (no leftover search for this run). */
  idInUse?: boolean;
  /** Pass the options and the command as they are, without `--` between them (to test the runtime's own parsing). */
  omitSeparator?: boolean;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Run as this user (numeric uid:gid) through setpriv, for the rootless tests. */
  asUser?: { uid: number; gid: number };
  /** false: run the runtime directly, without a sandbox (tests of signals and the like). */
  sandbox?: boolean;
}

/** Quote an argument for the copy-paste command line shown on failure. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function reproduceCommand(step: Step, target: Target, args: readonly string[]): string {
  const solution = target === 'solutions' ? ['--solution'] : [];
  return ['npm run step', String(step.number), '--', ...solution, ...args].map((word, i) => (i < 3 ? word : shellQuote(word))).join(' ');
}

/** A container id of this harness process: cfs-<pid>-<hex>, the shape the runtime's stale-run cleanup knows. */
export function newContainerId(): string {
  return generatedId(); // cfs-<this process's pid>-…: a later run removes what a killed check left (lib/container/stale.ts)
}

/**
 * Where a run's call log goes: a file of its own in the temp folder, named
 * after the container id (so that the log of a killed harness is recognised
 * as stale, like its other leftovers), removed once read.
 */
function callLogOf(id: string): string {
  return join(tmpdir(), `cfs-calls-${id}.log`);
}

/** Remove the call logs of harness processes that are gone (killed before they could). */
function removeStaleCallLogs(): void {
  for (const name of readdirSync(tmpdir())) {
    const match = /^cfs-calls-(cfs-\d+-[0-9a-f]+)\.log$/.exec(name);
    if (match && isStale(match[1]!)) rmSync(join(tmpdir(), name), { force: true });
  }
}

/** Options the caller gave before the command, with `--id` added unless one is there. */
function withId(options: readonly string[]): { options: string[]; id: string } {
  const index = options.indexOf('--id');
  if (index !== -1 && options[index + 1]) return { options: [...options], id: options[index + 1]! };
  const id = newContainerId();
  return { options: ['--id', id, ...options], id };
}

/** Host pids of the direct children of `pid`. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The namespace a process is in, e.g. "mnt:[4026531841]"; undefined when it is gone. */
export function namespaceOf(pid: number, kind: 'mnt' | 'uts' | 'pid' | 'net'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return undefined;
  }
}

/**
 * Run `command` in a container of `step` (the runtime of `target`):
 * node <compiled step> run --id <id> [options] -- command..., in a sandbox.
 */
export async function runContainer(step: Step, target: Target, command: string[], options: RunOptions = {}): Promise<RunResult> {
  ensureDefaultRootfs();
  // An image at steps 4-5 runs from its layers merged into one folder, as with npm run step.
  const image = options.options?.[options.options.indexOf('--image') + 1];
  if (options.options?.includes('--image') && image && step.number <= 5) await ensureFlatImage(image, options.env?.CFS_IMAGES ?? IMAGES_DIR);
  const bundle = await runtimeBundle(step, target);
  const { options: runtimeOptions, id } = withId(options.options ?? []);
  const rootless = options.asUser !== undefined || process.getuid?.() !== 0;
  let invocation = [process.execPath, bundle, 'run', ...runtimeOptions, ...(options.omitSeparator ? [] : ['--']), ...command];
  const useSandbox = options.sandbox !== false && sandboxAvailable(rootless);
  // Without root, the runtime needs a user namespace, as with `npm run step`; the sandbox makes it.
  if (useSandbox) invocation = sandboxed(invocation, rootless);
  else if (rootless) invocation = inUserNamespace(invocation);
  // From step 5 on, a rootless container needs a delegated cgroup: a systemd scope when this process is not in one (as npm run step does).
  if (rootless && !options.asUser && usesCgroups(step) && needsDelegatedScope()) invocation = inDelegatedScope(invocation);
  if (options.asUser) {
    const { uid, gid } = options.asUser;
    invocation = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', ...invocation];
  }
  const callLog = callLogOf(id);
  removeStaleCallLogs();
  const [program, ...argv] = invocation;
  const reproduce = reproduceCommand(step, target, [...(options.options ?? []), ...command]);

  const outcome = await new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; report: string }>((resolve, reject) => {
    const child = spawn(program!, argv, {
      cwd: REPO_ROOT,
      env: { ...process.env, TRACE: '', FORCE_COLOR: '0', ...options.env, CFS_CALL_LOG: callLog },
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      detached: true, // a process group of its own: a timeout kills the whole run
    });
    let stdout = '';
    let stderr = '';
    let report = '';
    const timer = setTimeout(() => killGroup(child.pid), options.timeoutMs ?? 30_000 * slowness());
    let actionStarted = false;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      options.onOutput?.(stdout);
      const hook = options.whenOutput;
      if (hook && !actionStarted && stdout.includes(hook.marker)) {
        actionStarted = true;
        void hook
          .action({ sandboxPid: child.pid! })
          .catch(() => {})
          .finally(() => child.stdin!.end());
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (chunk: string) => (report += chunk));
    child.stdin!.on('error', () => {}); // the command may exit without reading its input
    if (options.whenOutput) {
      child.stdin!.write(options.input ?? '');
    } else if (options.holdStdinUntil) {
      child.stdin!.write(options.input ?? '');
      void options.holdStdinUntil.finally(() => child.stdin!.end());
    } else {
      child.stdin!.end(options.input ?? '');
    }
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, report });
    });
  });

  const sandbox = useSandbox ? parseReport(outcome.report) : undefined;
  const leftovers = options.idInUse ? [] : await removeLeftovers(id);
  let calls: string[] = [];
  try {
    calls = readFileSync(callLog, 'utf8').split('\n').filter(Boolean);
  } catch {
    // the runtime never got far enough to log anything
  }
  rmSync(callLog, { force: true });
  return {
    status: outcome.status,
    signal: outcome.signal,
    stdout: outcome.stdout,
    stderr: outcome.stderr,
    reproduce,
    id,
    sandbox,
    mounts: sandbox ? mountChanges(sandbox) : { added: [], removed: [], repropagated: [] },
    calls,
    leftovers,
  };
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Processes whose command line carries the container id `id` (the runtime's parent and child). */
function processesOf(id: string): { pid: number; commandLine: string }[] {
  const found: { pid: number; commandLine: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.includes(id)) found.push({ pid: Number(entry), commandLine: argv.join(' ').trim() });
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/**
 * The scoped inventory after a run: processes, cgroup folders and layer
 * folders of container `id`. What is found is removed, and returned.
 */
async function removeLeftovers(id: string): Promise<Leftover[]> {
  const leftovers: Leftover[] = [];
  for (const { pid, commandLine } of processesOf(id)) {
    leftovers.push({ kind: 'process', what: `pid ${pid}: ${commandLine.slice(0, 120)}` });
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  let cgroup: Cgroup | undefined;
  try {
    cgroup = new Cgroup(cgroupLayout(), id);
  } catch {
    cgroup = undefined; // no usable cgroups here: nothing can have been created
  }
  if (cgroup?.folders.some((folder) => existsSync(folder))) {
    for (const folder of cgroup.folders.filter((f) => existsSync(f))) leftovers.push({ kind: 'cgroup', what: folder });
    await cgroup.remove(200, true);
  }
  const layers = layersOf(id);
  if (existsSync(layers.dir)) {
    leftovers.push({ kind: 'layers', what: layers.dir });
    rmSync(layers.dir, { recursive: true, force: true });
  }
  return leftovers;
}

/** Lines of output, without the trailing empty one. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line, index, all) => !(index === all.length - 1 && line === ''));
}

/** Host pids of the processes whose command line is exactly `argv` (run natively or by an emulator). */
export function hostProcesses(argv: string[]): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return commandLineIs(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), argv);
      } catch {
        return false; // exited meanwhile
      }
    })
    .map(Number);
}

/**
 * Is `cmdline` (as in /proc/PID/cmdline: NUL-separated) the command `argv`? A
 * program run by an emulator through binfmt_misc (qemu-user) shows the
 * emulator and the program's path first:
 *   /usr/libexec/qemu-binfmt/aarch64-binfmt-P\0/usr/bin/sleep\0sleep\0600\0
 */
export function commandLineIs(cmdline: string, argv: readonly string[]): boolean {
  const wanted = argv.join('\0') + '\0';
  if (cmdline === wanted) return true;
  const [emulator, program, ...rest] = cmdline.split('\0');
  return /qemu|binfmt/.test(emulator ?? '') && program !== undefined && rest.join('\0') === wanted;
}

let measuredSlowness: number | undefined;

/**
 * How many times slower than a real machine this one runs programs: CFS_SLOWNESS
 * when set, 20 under an emulator (qemu-user), else 1. Waits are multiplied by it.
 */
export function slowness(): number {
  if (process.env.CFS_SLOWNESS) return Number(process.env.CFS_SLOWNESS) || 1;
  measuredSlowness ??= threadsOfOneThreadedProgram() > 1 ? 20 : 1;
  return measuredSlowness;
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
