// The plumbing every step shares: reading the command line, re-spawning this
// file as the child, passing signals on, and turning the child's end into
// our exit status. The step files only say what happens in the kernel.
//
//   tsx steps/04-mount.ts run [options] [--] <cmd> [args...]
//        → parent()  → spawns: <same file> child   (the container arrives on fd 3)
//                                → child()  → execvp(<cmd>)
//
// What it also does at every step, so that the command runs like in a real
// container (WORKSHOP.md, "What the runtime does for you"): the child leads a
// session of its own (setsid), gets a terminal of its own when stdin is one
// (terminal.ts), is killed with its parent (PR_SET_PDEATHSIG), and execs the
// command with the container's environment, default signals and fds 0–2 only
// (execvp in lib/kernel/libc.ts); arguments pass as the exact bytes typed.
import { spawn, type ChildProcess } from 'node:child_process';
import { fstatSync, readFileSync, readSync, writeSync } from 'node:fs';
import { constants, hostname } from 'node:os';
import { isAbsolute, relative } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { isatty } from 'node:tty';
import { PR_SET_PDEATHSIG } from '../kernel/constants.js';
import { EXIT, WorkshopError, reportError } from '../kernel/errors.js';
import { prctl, prepareEveryExec, setsid, withBytes } from '../kernel/libc.js';
import { REPO_ROOT } from '../paths.js';
import { traceNote } from '../kernel/trace.js';
import { argumentBytes, containerEnvironment, requestedVariables } from './environment.js';
import { openContainerTerminal, relayTerminal, takeTerminal, type Relay } from './terminal.js';
import { enterImageConfig, userNote } from './image.js';
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

/**
 * Run this same file again as `child`, with our stdin/stdout/stderr, and a
 * channel on fd 3 through which the child asks for the container (and, with
 * a terminal, for its pty). Namespaces the parent unshared just before are
 * inherited: the child is born in them.
 * Resolves with the exit status: the command's own, or 128+N if killed by signal N.
 */
export function spawnChild(container: Container): Promise<number> {
  const self = process.argv[1];
  if (self === undefined || !isAbsolute(self)) throw new Error('cannot find the runtime file to re-spawn');
  const child = spawn(process.execPath, [...process.execArgv, self, 'child'], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
  });
  traceNote(`spawn(node, [${JSON.stringify(sourceOf(self))}, "child"]) → pid ${child.pid ?? '?'}`);
  const terminal = isatty(0); // a terminal on stdin: the container gets one of its own
  const supervision = supervise(child);
  answerChild(child, container, terminal, supervision);
  return supervision.status;
}

/** What the child is told: the container, its command and --env variables as bytes (base64). */
interface Start {
  container: Container;
  command: string[];
  environment: string[];
  terminal: boolean;
}

const toBase64 = (bytes: readonly Buffer[]): string[] => bytes.map((arg) => arg.toString('base64'));
const fromBase64 = (texts: readonly string[]): Buffer[] => texts.map((text) => Buffer.from(text, 'base64'));

/** The bytes a list of strings remembers (see withBytes), or their UTF-8. */
function bytesOf(strings: readonly string[] & { bytes?: readonly Buffer[] }): Buffer[] {
  return strings.bytes?.length === strings.length ? [...strings.bytes] : strings.map((text) => Buffer.from(text));
}

/** Parent: answer the child's questions on fd 3, one JSON line each. */
function answerChild(child: ChildProcess, container: Container, terminal: boolean, supervision: Supervision): void {
  const channel = child.stdio[3] as (Readable & Writable) | null | undefined;
  if (!channel) return;
  const answer = (message: object): void => {
    channel.write(`${JSON.stringify(message)}\n`);
  };
  let pending = '';
  channel.on('error', () => {}); // the child may be gone
  channel.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n')) {
      const question = JSON.parse(pending.slice(0, end)) as { ask: string };
      pending = pending.slice(end + 1);
      if (question.ask === 'start') {
        const start: Start = {
          container,
          command: toBase64(bytesOf(container.command)),
          environment: toBase64(requestedVariables(bytesOf(container.env))),
          terminal,
        };
        answer(start);
      } else if (question.ask === 'terminal' && child.pid !== undefined) {
        try {
          const { master, number } = openContainerTerminal(child.pid);
          supervision.relay(relayTerminal(master, supervision.interruptKey));
          answer({ pts: number });
        } catch (error) {
          answer({ error: error instanceof Error ? error.message : String(error) });
        }
      }
    }
  });
}

/**
 * Child: ask the parent, and wait for its answer (synchronously: nothing else
 * runs in the child). No answer means the parent is gone.
 */
function askParent<T>(question: object): T {
  try {
    writeSync(CHANNEL_FD, `${JSON.stringify(question)}\n`);
    const buffer = Buffer.alloc(64 * 1024);
    let received = '';
    for (;;) {
      const count = readSync(CHANNEL_FD, buffer);
      if (count === 0) break; // end of file: the parent has exited
      received += buffer.toString('latin1', 0, count); // JSON of base64 and names: ASCII, decoded below
      const end = received.indexOf('\n');
      if (end !== -1) return JSON.parse(Buffer.from(received.slice(0, end), 'latin1').toString()) as T;
    }
  } catch (error) {
    if (!['EPIPE', 'ECONNRESET'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
  }
  traceNote('the parent is gone: it exited before the child learnt what to run');
  process.exit(EXIT.runtimeFailed); // the parent died: nobody is waiting for this container
}

/** The child's end of the channel (the 4th entry of spawn's stdio). */
const CHANNEL_FD = 3;

function isChannel(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false; // not open
  }
}

/**
 * The child's start, at every step, before the step's own child():
 * die with the parent, get the container from it, lead a session of its own,
 * and prepare what happens just before the command is exec'd.
 */
function startChild(steps: Runtime): void {
  // If the parent dies (even by SIGKILL), the kernel kills the container too...
  prctl(PR_SET_PDEATHSIG, constants.signals.SIGKILL, 'PR_SET_PDEATHSIG, SIGKILL');
  if (!isChannel(CHANNEL_FD)) throw new WorkshopError('`child` is how the runtime starts itself, with the parent on fd 3.', USAGE, EXIT.usage);
  // ...and if it died before that, its answer never comes (askParent exits): no container outlives it.
  const start = askParent<Start>({ ask: 'start' });
  const container: Container = { ...start.container, command: withBytes(fromBase64(start.command)) };
  // A session (and process group) of its own: `kill 0` inside, or the host's terminal, can't reach past it.
  setsid();
  prepareEveryExec(() => {
    if (start.terminal) {
      const answer = askParent<{ pts?: number; error?: string }>({ ask: 'terminal' });
      if (answer.pts === undefined) throw new WorkshopError(answer.error ?? 'no terminal', 'Run it without a terminal on stdin (e.g. `… < /dev/null`).');
      takeTerminal(answer.pts);
    }
    // An image's Env, User and WorkingDir (or --user) apply to its command: set here, inside the container, just before the exec.
    const { image, user } = container;
    const imageEnvironment = image || user ? enterImageConfig(image, user, !inInitialUserNamespace()) : [];
    return containerEnvironment(fromBase64(start.environment), { hostname: hostname(), terminal: start.terminal, image: imageEnvironment });
  });
  steps.child(container);
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

interface Supervision {
  status: Promise<number>;
  /** The terminal relay, once the container has its pty: finished before the status is known. */
  relay(relay: Relay): void;
  /** Ctrl-C or Ctrl-\ typed into the container's terminal, whose foreground group is `foreground`. */
  interruptKey(signal: 'SIGINT' | 'SIGQUIT', foreground: number): void;
}

/**
 * Wait for the child, passing Ctrl-C and SIGTERM on. A PID 1 ignores every
 * signal it has no handler for, so when the command cannot act on the signal
 * (or does not exit within GRACE_MS) the container is killed with SIGKILL.
 */
function supervise(child: ChildProcess): Supervision {
  let relay: Relay | undefined;
  // The child leads its own session: signals for us no longer reach it, so every one is passed on.
  const forwarded: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  const onSignal = (signal: NodeJS.Signals): void => {
    const pid = child.pid;
    if (pid === undefined) return;
    child.kill(signal);
    if (!catchesSignal(pid, signal)) child.kill('SIGKILL');
    else setTimeout(() => child.kill('SIGKILL'), GRACE_MS).unref();
  };
  for (const signal of forwarded) process.on(signal, onSignal);
  const status = new Promise<number>((resolveStatus, reject) => {
    child.on('error', (error) => reject(new WorkshopError(`could not start the child: ${error.message}`, 'Is Node installed correctly? Run `npm run doctor`.')));
    child.on('exit', (code, signal) => {
      for (const s of forwarded) process.off(s, onSignal);
      child.stdio[3]?.destroy();
      const exitStatus = code ?? 128 + (signal ? constants.signals[signal] : 0);
      void (relay?.finish() ?? Promise.resolve()).then(() => resolveStatus(exitStatus));
    });
  });
  return {
    status,
    relay: (started) => (relay = started),
    // Typed into the container's terminal, the key already sent the signal; a PID 1 without a handler ignores it.
    interruptKey(signal, foreground) {
      if (foreground === child.pid && !catchesSignal(child.pid, signal)) child.kill('SIGKILL');
    },
  };
}

/**
 * The command and --env entries of `container`, parsed from `args`, remember
 * the exact bytes that were typed (they need not be UTF-8): see environment.ts.
 */
function withCommandLineBytes(container: Container, args: readonly string[]): Container {
  const bytes = argumentBytes(args);
  const typed = new Map(args.map((arg, index) => [arg, bytes[index]!]));
  const commandTyped = args.length >= container.command.length && container.command.every((arg, index) => args[args.length - container.command.length + index] === arg);
  return {
    ...container,
    command: commandTyped ? withBytes(bytes.slice(bytes.length - container.command.length)) : container.command,
    env: withBytes(container.env.map((entry) => typed.get(entry) ?? Buffer.from(entry))),
  };
}

/**
 * The entry point of every step file: `run` is the parent, `child` the child.
 * Errors become a one-paragraph explanation and an exit code (stack with --debug).
 */
export function runtime(steps: Runtime): void {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'child') {
    try {
      startChild(steps);
    } catch (error) {
      process.exit(reportError(error));
    }
  } else if (mode === 'run') {
    let container: Container;
    try {
      container = withCommandLineBytes(parseContainer(args), args);
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
