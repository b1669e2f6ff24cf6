// The plumbing every step shares: reading the command line, re-spawning this
// file as the child, passing signals on, and turning the child's end into
// our exit status. The step files only say what happens in the kernel.
//
//   tsx steps/04-mount.ts run [options] [--] <cmd> [args...]
//        → parent()  → spawns: <same file> child [options] -- <cmd> [args...]
//                                → child()  → execvp(<cmd>)
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { isAbsolute, relative } from 'node:path';
import { PR_SET_PDEATHSIG } from '../kernel/constants.js';
import { EXIT, WorkshopError, reportError } from '../kernel/errors.js';
import { beforeExec, prctl } from '../kernel/libc.js';
import { REPO_ROOT } from '../paths.js';
import { traceNote } from '../kernel/trace.js';
import { applyImageConfig, userNote } from './image.js';
import { inInitialUserNamespace } from '../host/machine.js';
import { USAGE, parseContainer, type Container } from './options.js';

// Reading and checking the options is lib/container/options.ts.
export { INTERACTIVE_SHELL, parseContainer, type Container } from './options.js';

export interface Runtime {
  /** Runs on the host: prepares, spawns the child, waits for it; returns the exit status. */
  parent(container: Container): Promise<number>;
  /** Runs in the new namespaces: sets them up and execs the command. Never returns. */
  child(container: Container): never;
}

/** The child's command line: the resolved container, so both sides agree. */
function childArguments(container: Container): string[] {
  return [
    '--id', container.id,
    '--hostname', container.hostname,
    // An image is found again by name in the child; its command is already complete (no Entrypoint to add again).
    ...(container.image ? ['--image', container.image.ref, '--entrypoint', ''] : ['--rootfs', container.rootfs]),
    ...(container.user ? ['--user', container.user] : []),
    '--pids-max', String(container.pidsMax),
    '--memory', container.memory,
    '--', ...container.command,
  ];
}

/**
 * Run this same file again as `child ...`, with our stdin/stdout/stderr.
 * Namespaces the parent unshared just before are inherited: the child is born in them.
 * Resolves with the exit status: the command's own, or 128+N if killed by signal N.
 */
export function spawnChild(container: Container): Promise<number> {
  const self = process.argv[1];
  if (self === undefined || !isAbsolute(self)) throw new Error('cannot find the runtime file to re-spawn');
  const child = spawn(process.execPath, [...process.execArgv, self, 'child', ...childArguments(container)], {
    stdio: 'inherit',
  });
  traceNote(`spawn(node, [${JSON.stringify(sourceOf(self))}, "child", …]) → pid ${child.pid ?? '?'}`);
  return supervise(child);
}

// Set by workshop/compile.mjs in a compiled bundle: the .ts file it was built from.
declare const BUNDLED_ENTRY: string | undefined;

/** The runtime's source file, as the participant knows it (not the compiled bundle's name). */
function sourceOf(self: string): string {
  return typeof BUNDLED_ENTRY === 'string' ? BUNDLED_ENTRY : relative(REPO_ROOT, self);
}

/** How long a container may take to act on SIGTERM/SIGINT before it is killed. */
const GRACE_MS = 1500;

/** Does the process have a handler for this signal? (bit N-1 of SigCgt in /proc/PID/status) */
function catchesSignal(pid: number, signal: NodeJS.Signals): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const mask = BigInt(`0x${/^SigCgt:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);
    return ((mask >> BigInt(constants.signals[signal] - 1)) & 1n) === 1n;
  } catch {
    return false; // already gone
  }
}

/**
 * Wait for the child, passing Ctrl-C and SIGTERM on. A PID 1 ignores every
 * signal it has no handler for, so when the command cannot act on the signal
 * (or does not exit within GRACE_MS) the container is killed with SIGKILL.
 */
function supervise(child: ChildProcess): Promise<number> {
  return new Promise((resolveStatus, reject) => {
    const forwarded: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
    const onSignal = (signal: NodeJS.Signals): void => {
      const pid = child.pid;
      if (pid === undefined) return;
      // Ctrl-C on a terminal already reached the child: it is in our foreground process group.
      const fromTerminal = (signal === 'SIGINT' || signal === 'SIGQUIT') && process.stdin.isTTY === true;
      if (!fromTerminal) child.kill(signal);
      if (!catchesSignal(pid, signal)) child.kill('SIGKILL');
      else if (!fromTerminal) setTimeout(() => child.kill('SIGKILL'), GRACE_MS).unref();
    };
    for (const signal of forwarded) process.on(signal, onSignal);
    child.on('error', (error) => reject(new WorkshopError(`could not start the child: ${error.message}`, 'Is Node installed correctly? Run `npm run doctor`.')));
    child.on('exit', (code, signal) => {
      for (const s of forwarded) process.off(s, onSignal);
      resolveStatus(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}

/**
 * The entry point of every step file: `run` is the parent, `child` the child.
 * Errors become a one-paragraph explanation and an exit code (stack with --debug).
 */
export function runtime(steps: Runtime): void {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'child') {
    try {
      // If the parent dies (even by SIGKILL), the kernel kills the container too.
      prctl(PR_SET_PDEATHSIG, constants.signals.SIGKILL, 'PR_SET_PDEATHSIG, SIGKILL');
      const container = parseContainer(args);
      // An image's Env, User and WorkingDir (or --user) apply to its command: set just before the exec, inside the container.
      const { image, user } = container;
      if (image || user) beforeExec(() => applyImageConfig(image, user, !inInitialUserNamespace()));
      steps.child(container);
    } catch (error) {
      process.exit(reportError(error));
    }
  } else if (mode === 'run') {
    let container: Container;
    try {
      container = parseContainer(args);
    } catch (error) {
      process.exit(reportError(error));
    }
    const note = userNote(container.user, !inInitialUserNamespace(), container.image);
    if (note) process.stderr.write(`note: ${note}\n`);
    steps.parent(container).then(
      (status) => process.exit(status),
      (error: unknown) => process.exit(reportError(error)),
    );
  } else {
    process.exit(reportError(new WorkshopError(`expected "run" or "child", got ${JSON.stringify(mode ?? '')}`, USAGE, EXIT.usage)));
  }
}
