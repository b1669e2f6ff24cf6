// Errors are part of the product: every failure a participant can cause is
// reported as one coloured paragraph saying what failed and how to fix it,
// with the right exit code. The stack trace only shows with --debug.
import { constants } from 'node:os';
import { writeSync } from 'node:fs';
import { relative } from 'node:path';
import chalk from 'chalk';
import { isStepFile, mappedStack, stackFrames } from './source-map.js';

/** Exit codes, as shells and container runtimes use them. */
export const EXIT = {
  /** The runtime itself failed (setup, bad input): docker uses 125 too. */
  runtimeFailed: 125,
  /** The command exists but cannot be executed. */
  notExecutable: 126,
  /** The command was not found. */
  notFound: 127,
  /** Bad usage of a workshop command (unknown step, ...). */
  usage: 2,
} as const;

/** A failure we can explain: what went wrong, and what to do about it. */
export class WorkshopError extends Error {
  constructor(
    message: string,
    readonly fix: string,
    readonly exitCode: number = EXIT.runtimeFailed,
  ) {
    super(message);
    this.name = 'WorkshopError';
  }
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, code]) => [code, name]));

/** 1 → "EPERM". */
export function errnoName(code: number): string {
  return ERRNO_NAMES.get(code) ?? `errno ${code}`;
}

const PRIVILEGES =
  'Namespaces and mounts need CAP_SYS_ADMIN. Not root? Use `npm run step N`, which enters a user namespace ' +
  'for you, or run with sudo. Root already? Then this process lacks the capability (a container started ' +
  'without --privileged?). `npm run doctor` shows what this machine allows.';

/** The hint for a failed call: what this errno usually means for this call. */
const HINTS: Record<string, string> = {
  'unshare EPERM': PRIVILEGES,
  'unshare EINVAL':
    'The kernel refused these namespace flags. CLONE_NEWUSER cannot be unshared by a multi-threaded ' +
    'process such as Node: the user namespace has to be entered before Node starts (npm run step does that).',
  'unshare ENOSPC':
    'The limit on namespaces was reached (see /proc/sys/user/max_*_namespaces); a value of 0 disables that namespace type.',
  'sethostname EPERM':
    'Changing the hostname needs CAP_SYS_ADMIN in the UTS namespace. Did the parent unshare(CLONE_NEWUTS) ' +
    'before spawning the child?',
  'sethostname EINVAL': 'Hostnames are at most 64 characters.',
  'mount EPERM': PRIVILEGES + ' Inside a user namespace, some file systems (and some flag changes) cannot be mounted.',
  'mount ENOENT':
    'The mount point (or the source) does not exist. Before pivot_root, paths are the host\'s: mount onto ' +
    '`${rootfs}/proc`, not `/proc`. The rootfs needs empty /proc and /dev folders (`npm run rootfs` makes them).',
  'mount EINVAL':
    'The kernel rejected this mount: the source may not be a mount point, the flags may not fit together, ' +
    'or the file system type is wrong. For an overlay: upperdir and workdir must be on the same file system, ' +
    'and not on an overlay themselves (`dmesg` names the reason).',
  'mount ENODEV': 'This file system type is not supported by the kernel (see /proc/filesystems).',
  'umount2 EINVAL': 'The target is not a mount point.',
  'pivot_root EINVAL':
    'pivot_root needs the new root to be a mount point (bind-mount the rootfs onto itself first) and the ' +
    'current root must not be a shared mount: make `/` private first with mount(NULL, "/", NULL, MS_REC|MS_PRIVATE, NULL).',
  'pivot_root EPERM': PRIVILEGES,
  'pivot_root EBUSY':
    'The new root is not a mount point of its own: bind-mount the rootfs onto itself first ' +
    '(mount(rootfs, rootfs, "", MS_BIND | MS_REC)), then chdir(rootfs) and pivotRoot(".", ".").',
  'chdir ENOENT': 'That folder does not exist.',
  'execvp ENOENT':
    'The command was not found in the container. From step 4 on, the container only sees its own root ' +
    'filesystem: check that the program is in rootfs/ (e.g. `ls rootfs/bin`), or add it to rootfs-builder.',
  'execvp EACCES': 'The file exists but is not executable (check its mode, and that it is a regular file).',
  'execvp ENOEXEC': 'The file is not a program the kernel can run (wrong architecture, or a script without #!).',
  'prctl EINVAL': 'The kernel does not know this capability or option.',
  'prctl EPERM': 'Dropping capabilities needs CAP_SETPCAP.',
  'ioctl EPERM': 'Changing network interfaces needs CAP_NET_ADMIN in the network namespace.',
  'seccomp EACCES': 'Loading a filter needs no_new_privs or CAP_SYS_ADMIN: call prctl(PR_SET_NO_NEW_PRIVS, 1, …) first.',
  'seccomp EINVAL':
    'The kernel refused the filter: a jump past its end, a way through it without a verdict (the last rule must be ' +
    'allowTheRest()), or more than 4096 instructions. Under qemu-user emulation, seccomp cannot work at all.',
  'seccomp EFAULT': "The kernel could not read the filter: struct sock_fprog must hold its length and its address (lib/kernel/libc.ts builds it).",
  'seccomp ENOSYS': 'This kernel has no seccomp filters, or this runs under an emulator (qemu-user) that cannot filter syscalls: `npm run doctor` tells.',
};

/** Set once this process has loaded a seccomp filter (step 9): from then on, an EPERM may be the filter's. */
let filterLoaded = false;
export function noteFilterLoaded(): void {
  filterLoaded = true;
}
const FILTERED =
  'This process loaded a seccomp filter earlier (see --trace), and the filter answers EPERM to this call. ' +
  'Load it in the child, last thing before execvp, after the runtime\'s own setup.';

/** A libc call that returned -1: carries the call, its arguments and the errno name. */
export class LibcError extends WorkshopError {
  constructor(
    readonly call: string,
    readonly args: string,
    readonly errno: number,
    readonly errnoMessage: string,
    /** A hint that fits this moment (lib/kernel/diagnose.ts), instead of the general one for the errno. */
    hint?: string,
  ) {
    const name = errnoName(errno);
    super(
      `${call}(${args}) failed: ${name} (${errnoMessage})`,
      (filterLoaded && name === 'EPERM' ? FILTERED : undefined) ?? hint ?? HINTS[`${call} ${name}`] ?? `See \`man 2 ${call}\` for what ${name} means here.`,
      LibcError.exitCodeFor(call, name),
    );
    this.name = 'LibcError';
  }

  get errnoName(): string {
    return errnoName(this.errno);
  }

  private static exitCodeFor(call: string, name: string): number {
    if (call !== 'execvp') return EXIT.runtimeFailed;
    if (name === 'ENOENT' || name === 'ENOTDIR') return EXIT.notFound;
    return EXIT.notExecutable;
  }
}

export function debugging(): boolean {
  return process.env.CFS_DEBUG === '1' || process.argv.includes('--debug');
}

/** Print an error as one coloured paragraph (stack only with --debug); returns the exit code to use. */
export function reportError(error: unknown): number {
  const lines: string[] = [];
  let exitCode: number = EXIT.runtimeFailed;
  if (error instanceof WorkshopError) {
    lines.push(chalk.red.bold('✗ ') + chalk.bold(error.message));
    lines.push('  ' + error.fix);
    exitCode = error.exitCode;
  } else {
    lines.push(...describeUnexpected(error));
  }
  if (debugging() && error instanceof Error && error.stack) {
    lines.push(chalk.dim(mappedStack(error)));
  } else {
    lines.push(chalk.dim('  (add --debug to see the stack trace)'));
  }
  writeSync(2, lines.join('\n') + '\n');
  return exitCode;
}

/** An error's own words, never empty: `TypeError: argv is not iterable`. */
function errorText(error: unknown): string {
  if (!(error instanceof Error)) return `${typeof error === 'object' ? JSON.stringify(error) : String(error)} (thrown as a value, not an Error)`;
  const message = error.message.trim();
  return message ? `${error.name}: ${message}` : `${error.name} (without a message)`;
}

/**
 * An error nobody explained. When the stack passes through a step file
 * (steps/ or solutions/), it is the participant's code that failed: say
 * where, with the line and a caret, and do not blame the workshop.
 */
function describeUnexpected(error: unknown): string[] {
  const frames = error instanceof Error ? stackFrames(error) : [];
  const own = frames.find((frame) => isStepFile(frame.file));
  if (!own) {
    return [
      chalk.red.bold('✗ ') + chalk.bold(`unexpected error: ${errorText(error)}`),
      '  This looks like a bug in the workshop code or an unusual machine. `npm run doctor` checks the machine.',
    ];
  }
  const where = `${relative(process.cwd(), own.file) || own.file}:${own.line}:${own.column}`;
  const inside = frames[0] && frames[0] !== own && !isStepFile(frames[0].file) ? ` (inside ${relative(process.cwd(), frames[0].file)}, called from there)` : '';
  const lines = [chalk.red.bold('✗ ') + chalk.bold(`${where}: your code threw ${errorText(error)}`) + inside];
  if (own.sourceLine !== undefined) {
    const number = String(own.line);
    lines.push(chalk.dim(`  ${number} │ `) + own.sourceLine);
    lines.push(chalk.dim(`  ${' '.repeat(number.length)} │ `) + ' '.repeat(Math.max(0, own.column - 1)) + chalk.red('^'));
  }
  lines.push('  This is a mistake in the step file, not in the workshop: fix that line (`npm run check N` type-checks the file first and names such mistakes).');
  return lines;
}

/**
 * A warning that must not get lost: written to stderr at once. (process.emitWarning
 * prints on a later tick, after a process.exit() that follows has already ended the process.)
 */
export function warn(message: string): void {
  writeSync(2, chalk.yellow(`● ${message}\n`));
}
