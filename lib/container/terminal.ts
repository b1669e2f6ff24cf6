// A terminal of its own for the container, as `docker run -it` gives one,
// when the runtime's stdin is a terminal.
//
//   your terminal ⇄ parent (raw mode, relays bytes) ⇄ pty master │ pty slave = /dev/pts/0 ⇄ the command
//
// The pty pair (pty(7)) comes from the container's own /dev/pts (a private
// devpts instance, see devices.ts): the parent opens its /dev/ptmx through
// /proc/<child>/root, the child opens the slave and makes it its controlling
// terminal and its stdin, stdout and stderr. Your terminal never reaches the
// container: /dev/tty inside is the container's own terminal, so typed-in
// characters (TIOCSTI) can't land in your shell, and `tty` says /dev/pts/0.
// Steps 1–3 have no /dev of their own: their pty comes from the host's /dev/pts.
//
// The parent puts your terminal in raw mode (every key passes as typed: Ctrl-C
// and Ctrl-Z are bytes for the container's terminal to act on), passes window
// size changes on (SIGWINCH), and restores your terminal however it ends.
import { closeSync, constants as fs, fstatSync, openSync } from 'node:fs';
import tty from 'node:tty';
import {
  ISIG,
  TERMIOS_CC_OFFSET,
  TERMIOS_LFLAG_OFFSET,
  TIOCGPGRP,
  TIOCGPTN,
  TIOCGWINSZ,
  TIOCSCTTY,
  TIOCSPTLCK,
  TIOCSWINSZ,
  VINTR,
  VQUIT,
} from '../kernel/constants.js';
import { WorkshopError } from '../kernel/errors.js';
import { dup2, ioctl, ioctlValue, rawTermios, tcgetattr, tcsetattr } from '../kernel/libc.js';
import { traceNote } from '../kernel/trace.js';

/** /dev/ptmx is character device 5:2, whichever devpts instance it opens. */
const PTMX_DEVICE = (5 << 8) | 2;

/** Parent: open a new pty in the container's /dev/pts; returns the master and the slave's number. */
export function openContainerTerminal(childPid: number): { master: number; number: number } {
  const path = `/proc/${childPid}/root/dev/ptmx`;
  let master: number;
  try {
    // O_NONBLOCK: a hostile /dev/ptmx that is a FIFO can't block us.
    master = openSync(path, fs.O_RDWR | fs.O_NOCTTY | fs.O_NONBLOCK);
  } catch (error) {
    throw new WorkshopError(
      `could not give the container a terminal: opening its /dev/ptmx failed (${(error as NodeJS.ErrnoException).code ?? error}).`,
      'From step 4 on, mountMinimalDev() mounts /dev/pts and /dev/ptmx inside. Without a terminal on stdin ' +
        '(e.g. `… < /dev/null`), the container gets plain pipes instead.',
    );
  }
  const stat = fstatSync(master);
  if (!stat.isCharacterDevice() || stat.rdev !== PTMX_DEVICE) {
    closeSync(master);
    throw new WorkshopError('could not give the container a terminal: its /dev/ptmx is not the pty multiplexer.', 'Let mountMinimalDev() make /dev.');
  }
  ioctl(master, TIOCSPTLCK, Buffer.alloc(4), '&0'); // unlockpt(3)
  const number = Buffer.alloc(4);
  ioctl(master, TIOCGPTN, number, '&n');
  copyWindowSize(master);
  traceNote(`${path} → the container's terminal is /dev/pts/${number.readUInt32LE()}`);
  return { master, number: number.readUInt32LE() };
}

/** Our terminal's window size onto the container's (whose foreground processes then get SIGWINCH). */
function copyWindowSize(master: number): void {
  const size = Buffer.alloc(8); // struct winsize: rows, columns, and two unused
  try {
    ioctl(0, TIOCGWINSZ, size, '&size');
  } catch {
    return; // stdin is no longer a terminal
  }
  ioctl(master, TIOCSWINSZ, size, `{rows=${size.readUInt16LE(0)}, cols=${size.readUInt16LE(2)}}`);
}

/** Child: make /dev/pts/<number> the controlling terminal of this (new) session, and stdin, stdout, stderr. */
export function takeTerminal(number: number): void {
  const slave = openSync(`/dev/pts/${number}`, fs.O_RDWR | fs.O_NOCTTY);
  ioctlValue(slave, TIOCSCTTY, 0);
  for (const fd of [0, 1, 2]) dup2(slave, fd);
  closeSync(slave);
}

export interface Relay {
  /** Once the container has exited: the rest of its output, then your terminal as it was. */
  finish(): Promise<void>;
}

/** How long the relay waits for more output from a container that has exited, when none comes. */
const QUIET_MS = 250;

/**
 * Parent: your terminal in raw mode, bytes both ways, window size passed on.
 * `onInterruptKey` is called when Ctrl-C (or Ctrl-\) was typed while the
 * container's terminal turns it into a signal for `foreground`'s group.
 */
export function relayTerminal(master: number, onInterruptKey: (signal: 'SIGINT' | 'SIGQUIT', foreground: number) => void): Relay {
  const saved = tcgetattr(0);
  const restore = (): void => {
    try {
      tcsetattr(0, saved, '{as it was}');
    } catch {
      // the terminal is gone
    }
  };
  tcsetattr(0, rawTermios(saved), '{raw: cfmakeraw}');
  process.on('exit', restore); // any other way out
  const onContinue = (): void => tcsetattr(0, rawTermios(saved), '{raw again}'); // after being stopped, the shell restored it
  const onResize = (): void => copyWindowSize(master);
  process.on('SIGCONT', onContinue);
  process.on('SIGWINCH', onResize);

  const pty = new tty.ReadStream(master); // both ways: a stream on the master
  const dropOutput = (): void => {}; // our stdout is gone (a closed pipe): keep reading, so the container never blocks
  process.stdout.on('error', dropOutput);
  let lastOutput = Date.now();
  const closed = new Promise<void>((resolve) => {
    pty.on('data', (chunk: Buffer) => {
      lastOutput = Date.now();
      process.stdout.write(chunk);
    });
    pty.on('error', () => resolve()); // EIO: every slave descriptor is closed
    pty.on('close', () => resolve());
  });
  const onInput = (chunk: Buffer): void => {
    pty.write(chunk);
    const signal = interruptIn(master, chunk);
    if (signal) onInterruptKey(signal, foregroundGroup(master));
  };
  process.stdin.on('data', onInput);

  return {
    async finish() {
      // The container's processes are gone (or, without a PID namespace, may live on): read what is left.
      while (Date.now() - lastOutput < QUIET_MS) {
        const timeout = new Promise((resolve) => setTimeout(resolve, QUIET_MS).unref());
        if ((await Promise.race([closed.then(() => 'closed'), timeout])) === 'closed') break;
      }
      process.stdin.off('data', onInput);
      process.stdin.pause();
      process.off('SIGCONT', onContinue);
      process.off('SIGWINCH', onResize);
      process.stdout.off('error', dropOutput);
      pty.destroy();
      restore();
      process.off('exit', restore);
    },
  };
}

const CTRL_C = 0x03;
const CTRL_BACKSLASH = 0x1c;

/** The signal the container's terminal sends for these keys (termios(3): ISIG, VINTR, VQUIT), if any. */
function interruptIn(master: number, keys: Buffer): 'SIGINT' | 'SIGQUIT' | undefined {
  if (!keys.includes(CTRL_C) && !keys.includes(CTRL_BACKSLASH)) return undefined; // the usual INTR and QUIT keys
  let termios: Buffer;
  try {
    termios = tcgetattr(master);
  } catch {
    return undefined;
  }
  if (!(termios.readUInt32LE(TERMIOS_LFLAG_OFFSET) & ISIG)) return undefined; // raw mode inside: keys are just bytes
  if (keys.includes(termios[TERMIOS_CC_OFFSET + VINTR]!)) return 'SIGINT';
  if (keys.includes(termios[TERMIOS_CC_OFFSET + VQUIT]!)) return 'SIGQUIT';
  return undefined;
}

/** The container terminal's foreground process group (a host pid: we are in the host's PID namespace). */
function foregroundGroup(master: number): number {
  const group = Buffer.alloc(4);
  try {
    ioctl(master, TIOCGPGRP, group, '&pgrp');
  } catch {
    return 0;
  }
  return group.readInt32LE();
}
