// The libc layer: every kernel call of the workshop goes through here.
//
// ffi-rs opens the C library and calls its functions by name. Each wrapper
// below does the same three things:
//   1. call the C function, asking ffi-rs for errno (`errno: true`),
//   2. trace it (--trace) with its arguments decoded into names,
//   3. on -1, throw a LibcError naming the call, the errno and a hint.
import {
  AT_FDCWD,
  CLONE_FLAGS,
  CLOSE_RANGE_CLOEXEC,
  F_GETFD,
  F_GETFL,
  F_SETFD,
  F_SETFL,
  FD_CLOEXEC,
  IOCTL_REQUESTS,
  MKNODAT_SYSCALL,
  MOUNT_FLAGS,
  O_NONBLOCK,
  SOCKET_DOMAINS,
  SIG_DFL,
  SIG_SETMASK,
  SOCKET_TYPES,
  TCSADRAIN,
  UMOUNT_FLAGS,
  decodeFlags,
  syscallNumber,
} from './constants.js';
import { contextualHint, remember } from './diagnose.js';
import { LibcError, noteFilterLoaded } from './errors.js';
import { DataType, LIBC_PATH, define, load, open } from './ffi.js';
import { existsSync, readdirSync } from 'node:fs';
import { constants } from 'node:os';
import { showArg, traceCall, traceFailure, traceNoReturn } from './trace.js';
import { SECCOMP_SET_MODE_FILTER, SOCK_FILTER_SIZE, syscallNumberOn } from './constants.js';

open({ library: 'libc', path: LIBC_PATH });

// The C signatures (see each function's man page). `errno: true` makes ffi-rs
// return { value, errnoCode, errnoMessage } read right after the call.
const c = define({
  unshare: { library: 'libc', retType: DataType.I32, paramsType: [DataType.I32], errno: true },
  sethostname: { library: 'libc', retType: DataType.I32, paramsType: [DataType.String, DataType.U64], errno: true },
  mount: {
    library: 'libc',
    retType: DataType.I32,
    paramsType: [DataType.String, DataType.String, DataType.String, DataType.U64, DataType.String],
    errno: true,
  },
  umount2: { library: 'libc', retType: DataType.I32, paramsType: [DataType.String, DataType.I32], errno: true },
  // long syscall(long number, ...): used for pivot_root, which glibc does not wrap.
  syscall: { library: 'libc', retType: DataType.I64, paramsType: [DataType.I64, DataType.String, DataType.String], errno: true },
  chdir: { library: 'libc', retType: DataType.I32, paramsType: [DataType.String], errno: true },
  fcntl: { library: 'libc', retType: DataType.I32, paramsType: [DataType.I32, DataType.I32, DataType.I32], errno: true },
  prctl: {
    library: 'libc',
    retType: DataType.I32,
    paramsType: [DataType.I32, DataType.U64, DataType.U64, DataType.U64, DataType.U64],
    errno: true,
  },
  // char *strdup(const char *): copies a NUL-terminated string (given as bytes) into C memory and returns its address.
  strdup: { library: 'libc', retType: DataType.BigInt, paramsType: [DataType.U8Array] },
  // int execvp(const char *file, char *const argv[]), and execvpe with the environment: everything passed as raw bytes (see execvp below).
  execvp: { library: 'libc', retType: DataType.I32, paramsType: [DataType.U8Array, DataType.U8Array], errno: true },
  // int execvpe(const char *file, char *const argv[], char *const envp[]): everything passed as raw bytes (see execvp below).
  execvpe: { library: 'libc', retType: DataType.I32, paramsType: [DataType.U8Array, DataType.U8Array, DataType.U8Array], errno: true },
  // int setenv(const char *name, const char *value, int overwrite), with bytes: a value need not be UTF-8.
  setenv: { library: 'libc', retType: DataType.I32, paramsType: [DataType.U8Array, DataType.U8Array, DataType.I32], errno: true },
  setsid: { library: 'libc', retType: DataType.I32, paramsType: [], errno: true },
  dup2: { library: 'libc', retType: DataType.I32, paramsType: [DataType.I32, DataType.I32], errno: true },
  // sighandler_t signal(int signum, sighandler_t handler): SIG_DFL is the handler 0.
  signal: { library: 'libc', retType: DataType.I64, paramsType: [DataType.I32, DataType.U64], errno: true },
  // int pthread_sigmask(int how, const sigset_t *set, sigset_t *oldset): returns the error number itself.
  pthread_sigmask: { library: 'libc', retType: DataType.I32, paramsType: [DataType.I32, DataType.U8Array, DataType.U64] },
  // int tcgetattr(int fd, struct termios *), int tcsetattr(int fd, int when, const struct termios *), void cfmakeraw(struct termios *).
  tcgetattr: { library: 'libc', retType: DataType.I32, paramsType: [DataType.I32, DataType.U8Array], errno: true },
  tcsetattr: { library: 'libc', retType: DataType.I32, paramsType: [DataType.I32, DataType.I32, DataType.U8Array], errno: true },
  cfmakeraw: { library: 'libc', retType: DataType.Void, paramsType: [DataType.U8Array] },
  socket: { library: 'libc', retType: DataType.I32, paramsType: [DataType.I32, DataType.I32, DataType.I32], errno: true },
  // int ioctl(int fd, unsigned long request, void *arg): arg is a struct, passed as a Buffer
  // (ffi-rs passes a Buffer's own memory, not a copy: what the kernel writes there stays in it).
  ioctl: { library: 'libc', retType: DataType.I32, paramsType: [DataType.I32, DataType.U64, DataType.U8Array], errno: true },
  close: { library: 'libc', retType: DataType.I32, paramsType: [DataType.I32], errno: true },
  // Extended attributes of a file (not following a symlink): name, value bytes, size, flags.
  lsetxattr: {
    library: 'libc',
    retType: DataType.I32,
    paramsType: [DataType.String, DataType.String, DataType.U8Array, DataType.U64, DataType.I32],
    errno: true,
  },
  lgetxattr: { library: 'libc', retType: DataType.I64, paramsType: [DataType.String, DataType.String, DataType.U8Array, DataType.U64], errno: true },
  // Becoming another user (an image's User): supplementary groups (an array of gid_t), then the group, then the user.
  setgroups: { library: 'libc', retType: DataType.I32, paramsType: [DataType.U64, DataType.U8Array], errno: true },
  setgid: { library: 'libc', retType: DataType.I32, paramsType: [DataType.U32], errno: true },
  setuid: { library: 'libc', retType: DataType.I32, paramsType: [DataType.U32], errno: true },
});

type Result = { value: number | bigint; errnoCode: number; errnoMessage: string };

/**
 * Trace a call's result, and turn -1 into a LibcError. `raw` are the arguments
 * as passed: remembered when the call works, so that a later failure's hint
 * can fit what already happened (diagnose.ts).
 */
function check(call: string, args: string, result: Result, raw: readonly unknown[] = []): number {
  const value = Number(result.value);
  if (value === -1) {
    const errnoMessage = result.errnoMessage.replace(/ \(os error \d+\)$/, '');
    const error = new LibcError(call, args, result.errnoCode, errnoMessage);
    const hint = contextualHint(call, error.errnoName, raw);
    const explained = hint === undefined ? error : new LibcError(call, args, result.errnoCode, errnoMessage, hint);
    traceFailure(call, args, explained.errnoName, explained.errnoMessage);
    throw explained;
  }
  remember(call, raw);
  traceCall(call, args, String(value));
  return value;
}

/** unshare(2): move this process into new namespaces (PID: its future children). */
export function unshare(flags: number): void {
  check('unshare', decodeFlags(flags, CLONE_FLAGS), c.unshare([flags]), [flags]);
}

/** sethostname(2): set the hostname of this UTS namespace. */
export function sethostname(name: string): void {
  const length = Buffer.byteLength(name);
  check('sethostname', `${showArg(name)}, ${length}`, c.sethostname([name, length]), [name]);
}

/** mount(2). `source` and `fstype` are ignored by the kernel for bind mounts and propagation changes. */
export function mount(source: string, target: string, fstype: string, flags: number, data = ''): void {
  const args = [showArg(source), showArg(target), showArg(fstype), decodeFlags(flags, MOUNT_FLAGS), showArg(data)].join(', ');
  check('mount', args, c.mount([source, target, fstype, flags, data]), [source, target, fstype, flags, data]);
}

/** umount2(2): unmount; MNT_DETACH unmounts lazily, once nothing uses it. */
export function umount2(target: string, flags: number): void {
  check('umount2', `${showArg(target)}, ${decodeFlags(flags, UMOUNT_FLAGS)}`, c.umount2([target, flags]), [target, flags]);
}

/** pivot_root(2): make new_root the root of this mount namespace and put the old root at put_old. */
export function pivotRoot(newRoot: string, putOld: string): void {
  const number = syscallNumber('pivot_root');
  check('pivot_root', `${showArg(newRoot)}, ${showArg(putOld)}`, c.syscall([number, newRoot, putOld]), [newRoot, putOld]);
}

/** chdir(2). */
export function chdir(path: string): void {
  check('chdir', showArg(path), c.chdir([path]), [path]);
}

/** fcntl(2) with an integer argument. */
export function fcntl(fd: number, command: number, argument = 0): number {
  return check('fcntl', `${fd}, ${FCNTL_COMMANDS[command] ?? command}, ${argument}`, c.fcntl([fd, command, argument]));
}
const FCNTL_COMMANDS: Record<number, string> = { [F_GETFD]: 'F_GETFD', [F_SETFD]: 'F_SETFD', [F_GETFL]: 'F_GETFL', [F_SETFL]: 'F_SETFL' };

/** prctl(2) with one integer argument; `label` shows both by name for --trace, e.g. "PR_SET_PDEATHSIG, SIGKILL". */
export function prctl(option: number, argument: number, label: string): number {
  return check('prctl', label, c.prctl([option, argument, 0, 0, 0]));
}

/** socket(2): returns the new file descriptor. */
export function socket(domain: number, type: number, protocol: number): number {
  const args = `${SOCKET_DOMAINS[domain] ?? domain}, ${SOCKET_TYPES[type] ?? type}, ${protocol}`;
  return check('socket', args, c.socket([domain, type, protocol]));
}

/**
 * ioctl(2) whose argument is a struct: `struct` is a Buffer laid out like the
 * C struct, and `shown` how --trace shows it, e.g. `{ifr_name="lo"}`.
 * ffi-rs hands C the Buffer's own memory (no copy), so when the request
 * reads something (SIOCGIFFLAGS), the kernel's answer is in the Buffer afterwards.
 */
export function ioctl(fd: number, request: number, struct: Buffer, shown: string): void {
  check('ioctl', `${fd}, ${IOCTL_REQUESTS[request] ?? `0x${request.toString(16)}`}, ${shown}`, c.ioctl([fd, request, struct]));
}

/** close(2). */
export function close(fd: number): void {
  check('close', String(fd), c.close([fd]));
}

/** setsid(2): start a new session (and process group) led by this process, with no controlling terminal; returns its id. */
export function setsid(): number {
  return check('setsid', '', c.setsid([]));
}

/** dup2(2): make `newFd` another descriptor of what `oldFd` refers to (closing what `newFd` was). */
export function dup2(oldFd: number, newFd: number): void {
  check('dup2', `${oldFd}, ${newFd}`, c.dup2([oldFd, newFd]));
}

/** ioctl(2) whose argument is a plain integer, not a struct (TIOCSCTTY). */
export function ioctlValue(fd: number, request: number, value: number): void {
  const result = load({
    library: 'libc',
    funcName: 'ioctl',
    retType: DataType.I32,
    paramsType: [DataType.I32, DataType.U64, DataType.U64],
    paramsValue: [fd, request, value],
    errno: true,
  }) as Result;
  check('ioctl', `${fd}, ${IOCTL_REQUESTS[request] ?? `0x${request.toString(16)}`}, ${value}`, result);
}

/** Room for a struct termios (60 bytes with glibc and musl, on x86_64 and arm64). */
const TERMIOS_SIZE = 64;

/** tcgetattr(3): a terminal's settings, as the bytes of a struct termios. */
export function tcgetattr(fd: number): Buffer {
  const termios = Buffer.alloc(TERMIOS_SIZE);
  check('tcgetattr', `${fd}, {…}`, c.tcgetattr([fd, termios]));
  return termios;
}

/** tcsetattr(3) with TCSADRAIN: change a terminal's settings once what was written to it is out. */
export function tcsetattr(fd: number, termios: Buffer, shown: string): void {
  check('tcsetattr', `${fd}, TCSADRAIN, ${shown}`, c.tcsetattr([fd, TCSADRAIN, termios]));
}

/** cfmakeraw(3) on a copy: no echo, no line editing, no Ctrl-C → SIGINT; every byte passes as typed. */
export function rawTermios(termios: Buffer): Buffer {
  const raw = Buffer.from(termios);
  c.cfmakeraw([raw]);
  return raw;
}

/**
 * lsetxattr(2): set an extended attribute, e.g. "security.capability" (a
 * program's file capabilities, what `setcap` writes). Node has no API for it.
 */
export function lsetxattr(path: string, name: string, value: Buffer): void {
  check('lsetxattr', `${showArg(path)}, ${showArg(name)}, <${value.length} bytes>, ${value.length}, 0`, c.lsetxattr([path, name, value, value.length, 0]));
}

/**
 * mknod(2), as mknodat(AT_FDCWD, path, mode, device) through syscall(): glibc
 * before 2.33 exports no mknod symbol. An image layer's whiteout is a
 * character device 0/0 (which Linux 5.8+ lets any user create).
 */
export function mknod(path: string, mode: number, device: number): void {
  const number = MKNODAT_SYSCALL[process.arch];
  if (number === undefined) throw new Error(`no mknodat syscall number for ${process.arch}`);
  const result = load({
    library: 'libc',
    funcName: 'syscall',
    retType: DataType.I64,
    paramsType: [DataType.I64, DataType.I64, DataType.String, DataType.I64, DataType.I64],
    paramsValue: [number, AT_FDCWD, path, mode, device],
    errno: true,
  }) as unknown as Result;
  check('mknod', `${showArg(path)}, 0${mode.toString(8)}, ${device}`, result);
}

/**
 * setgroups(2), setgid(2), setuid(2): become `uid`, with group `gid` and the
 * supplementary `groups`, in that order (after setuid, no privilege is left to
 * change groups). glibc applies them to every thread of the process.
 */
export function becomeUser(uid: number, gid: number, groups: readonly number[]): void {
  const list = Buffer.alloc(4 * Math.max(groups.length, 1));
  groups.forEach((group, index) => list.writeUInt32LE(group, 4 * index));
  check('setgroups', `${groups.length}, [${groups.join(', ')}]`, c.setgroups([groups.length, list]));
  check('setgid', String(gid), c.setgid([gid]));
  check('setuid', String(uid), c.setuid([uid]));
}

/** lgetxattr(2): an extended attribute's value, or undefined when the file has none by that name (ENODATA). */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const value = Buffer.alloc(64 * 1024); // XATTR_SIZE_MAX
  const result = c.lgetxattr([path, name, value, value.length]);
  if (Number(result.value) === -1 && result.errnoCode === constants.errno.ENODATA) return undefined;
  const size = check('lgetxattr', `${showArg(path)}, ${showArg(name)}`, result);
  return value.subarray(0, size);
}

/**
 * Node opens stdin, stdout and stderr close-on-exec (and may make them
 * non-blocking). Undo both, or the command we exec would start without them.
 */
export function keepStdioAcrossExec(): void {
  for (const fd of [0, 1, 2]) {
    const fdFlags = c.fcntl([fd, F_GETFD, 0]);
    if (fdFlags.value === -1) continue; // not open: nothing to keep
    if (fdFlags.value & FD_CLOEXEC) fcntl(fd, F_SETFD, fdFlags.value & ~FD_CLOEXEC);
    const statusFlags = c.fcntl([fd, F_GETFL, 0]).value;
    if (statusFlags & O_NONBLOCK) fcntl(fd, F_SETFL, statusFlags & ~O_NONBLOCK);
  }
}

/**
 * close_range(2) with CLOSE_RANGE_CLOEXEC: every descriptor from 3 up is
 * closed by the exec, so the command starts with 0, 1 and 2 only — not the
 * runtime's own, nor any its caller left open. (Marked, not closed yet: Node
 * still uses its own until the exec, and must be able to report a failed one.)
 * Older kernels (before 5.11) don't know the flag: then each open descriptor
 * listed in /proc/self/fd gets FD_CLOEXEC through fcntl(2).
 */
export function closeOnExecFrom(first: number): void {
  const args = `${first}, ~0U, CLOSE_RANGE_CLOEXEC`;
  const result = load({
    library: 'libc',
    funcName: 'syscall',
    retType: DataType.I64,
    paramsType: [DataType.I64, DataType.U64, DataType.U64, DataType.U64],
    paramsValue: [syscallNumber('close_range'), first, 0xffffffff, CLOSE_RANGE_CLOEXEC],
    errno: true,
  }) as Result;
  const { EINVAL, ENOSYS } = constants.errno;
  if (Number(result.value) !== -1 || ![EINVAL, ENOSYS].includes(result.errnoCode)) {
    check('close_range', args, result);
    return;
  }
  traceFailure('close_range', args, result.errnoCode === ENOSYS ? 'ENOSYS' : 'EINVAL', 'this kernel is older: FD_CLOEXEC one by one');
  closeOnExecOneByOne(first);
}

/** close_range's fallback: FD_CLOEXEC on each open descriptor from `first` up, as /proc/self/fd lists them. */
export function closeOnExecOneByOne(first: number): void {
  let open: number[];
  try {
    open = readdirSync('/proc/self/fd').map(Number);
  } catch {
    open = Array.from({ length: 1024 }, (_, fd) => fd); // no /proc: every usual descriptor number
  }
  for (const fd of open.filter((fd) => fd >= first)) {
    const flags = c.fcntl([fd, F_GETFD, 0]).value;
    if (flags !== -1 && !(flags & FD_CLOEXEC)) c.fcntl([fd, F_SETFD, flags | FD_CLOEXEC]);
  }
}

/**
 * Every signal back to its default action, none blocked (signal(7)). A
 * handler is reset by execve anyway, but an *ignored* signal stays ignored,
 * and Node ignores SIGPIPE and SIGXFSZ: `seq 1000000 | head -1` would then
 * make seq fail with "Broken pipe" instead of ending quietly. The signal
 * mask, too, is inherited across execve.
 */
export function resetSignals(): void {
  const { SIGKILL, SIGSTOP } = constants.signals;
  for (let signal = 1; signal <= MAX_SIGNAL; signal++) {
    // SIGKILL and SIGSTOP can't be changed; 32 and 33 are the C library's own and refuse (EINVAL).
    if (signal !== SIGKILL && signal !== SIGSTOP) c.signal([signal, SIG_DFL]);
  }
  traceCall('signal', 'N, SIG_DFL', `0, for each signal N from 1 to ${MAX_SIGNAL} but SIGKILL and SIGSTOP`);
  const error = c.pthread_sigmask([SIG_SETMASK, Buffer.alloc(SIGSET_SIZE), 0]);
  check('pthread_sigmask', 'SIG_SETMASK, {}, NULL', { value: error === 0 ? 0 : -1, errnoCode: error, errnoMessage: `error ${error}` });
}
/** Signals 1 to 64 (SIGRTMAX on Linux). */
const MAX_SIGNAL = 64;
/** A C sigset_t: 1024 bits with glibc and musl; all zero is the empty set. */
const SIGSET_SIZE = 128;

/** Arguments for execvp: strings which may carry `bytes`, the exact bytes each one was read from (they need not be UTF-8). */
export type Argv = readonly string[] & { readonly bytes?: readonly Buffer[] };

/** Strings decoded from `bytes` (invalid UTF-8 shows as �), which remember the bytes for execvp. */
export function withBytes(bytes: readonly Buffer[]): string[] & { readonly bytes: readonly Buffer[] } {
  return Object.assign(
    bytes.map((arg) => arg.toString()),
    { bytes },
  );
}

/** The bytes to pass for `argv`: the ones it remembers, if they still match its strings. */
function argvBytes(argv: Argv): Buffer[] {
  const bytes = argv.bytes;
  if (bytes?.length === argv.length && bytes.every((arg, index) => arg.toString() === argv[index])) return [...bytes];
  return argv.map((arg) => Buffer.from(arg));
}

/**
 * Build a C `char *argv[]` (or `envp[]`): an array of pointers to strings,
 * ending with NULL. Each string is copied into C memory with strdup(); the
 * array itself is a Buffer of 8-byte addresses (64-bit machines: x86_64 and arm64).
 * It is never freed: a successful exec replaces this whole process.
 */
export function cStringArray(strings: readonly (string | Buffer)[]): Buffer {
  const pointers = Buffer.alloc(8 * (strings.length + 1)); // zero-filled: the last one is NULL
  strings.forEach((text, index) => pointers.writeBigUInt64LE(c.strdup([cString(text)]) as bigint, 8 * index));
  return pointers;
}

/** A NUL-terminated C string, from a JS string (UTF-8) or exact bytes. */
function cString(text: string | Buffer): Buffer {
  return Buffer.concat([typeof text === 'string' ? Buffer.from(text) : text, Buffer.alloc(1)]);
}

function foundInPath(file: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((folder) => existsSync(`${folder || '.'}/${file}`));
}

/**
 * The container runtime's own work before every exec (lib/container/runtime.ts
 * sets it in the child): e.g. handing the command its terminal. It returns the
 * environment the command starts with, as NAME=VALUE bytes.
 */
let preparation: (() => readonly Buffer[]) | undefined;

export function prepareEveryExec(prepare: () => readonly Buffer[]): void {
  preparation = prepare;
}

/** setenv(3) / unsetenv(3) of PATH, with bytes: execvpe searches the program in *this* process's PATH. */
function usePath(environment: readonly Buffer[]): void {
  const entry = environment.find((variable) => variable.subarray(0, 5).toString() === 'PATH=');
  const value = entry?.subarray(5) ?? Buffer.alloc(0);
  check('setenv', `"PATH", ${showArg(value.toString())}, 1`, c.setenv([cString('PATH'), cString(value), 1]));
}

/**
 * execvp(3): replace this process with `file` (searched in PATH), running with `argv`.
 * Before the exec, as real runtimes do: the runtime's preparation (above), every
 * descriptor but 0–2 closed on exec, signals back to their defaults, nothing blocked.
 * With a prepared environment it is execvpe(3), searching the container's PATH.
 * Only returns by throwing: exit code 127 when not found, 126 when not executable.
 */
export function execvp(file: string, argv: Argv): never {
  const environment = preparation?.();
  closeOnExecFrom(3);
  keepStdioAcrossExec();
  resetSignals();
  const bytes = argvBytes(argv);
  const fileBytes = bytes.length > 0 && file === argv[0] ? bytes[0]! : Buffer.from(file);
  const args = `${showArg(file)}, ${showArg([...argv])}`;
  let result: Result;
  if (environment) {
    usePath(environment);
    const shownEnvironment = showArg(environment.map((variable) => variable.toString()));
    traceNoReturn('execvpe', `${args}, ${shownEnvironment}`, '→ the command replaces this process');
    result = c.execvpe([cString(fileBytes), cStringArray(bytes), cStringArray(environment)]);
  } else {
    traceNoReturn('execvp', args, '→ the command replaces this process');
    result = c.execvp([cString(fileBytes), cStringArray(bytes)]);
  }
  // execvp says EACCES when the program is nowhere in PATH but one PATH folder was unreadable: that is "not found".
  const { EACCES, ENOENT } = constants.errno;
  if (result.errnoCode === EACCES && !file.includes('/') && !foundInPath(file)) result.errnoCode = ENOENT;
  check('execvp', args, result, [file, argv]); // execvp only comes back on failure: this throws
  throw new Error('unreachable: execvp returned without an error');
}

// ── Step 9: seccomp ─────────────────────────────────────────────────────────

const seccompCalls = define({
  // void *malloc(size_t size) and void *memcpy(void *dest, const void *src, size_t n):
  // C memory whose address we know (a pointer travels as a BigInt).
  malloc: { library: 'libc', retType: DataType.BigInt, paramsType: [DataType.U64] },
  memcpy: { library: 'libc', retType: DataType.BigInt, paramsType: [DataType.BigInt, DataType.U8Array, DataType.U64] },
  // long syscall(long number, ...) again, with the arguments of seccomp(2), which glibc does not wrap:
  // unsigned int operation, unsigned int flags, void *args.
  syscall: { library: 'libc', retType: DataType.I64, paramsType: [DataType.I64, DataType.I64, DataType.I64, DataType.U8Array], errno: true },
});

const SECCOMP_OPERATIONS: Record<number, string> = { [SECCOMP_SET_MODE_FILTER]: 'SECCOMP_SET_MODE_FILTER' };

/**
 * seccomp(2) with SECCOMP_SET_MODE_FILTER: from now on the kernel runs `filter`
 * (struct sock_filter[], 8 bytes each) before every syscall of this thread and
 * of everything it execs or forks.
 *
 * The kernel takes a struct sock_fprog { unsigned short len; struct sock_filter *filter; }:
 * the filter's address goes inside a struct. ffi-rs passes a Buffer argument as a
 * pointer to the Buffer's own memory, but only for that one call, and Node may keep
 * small Buffers where the garbage collector moves them: so the filter is copied
 * into C memory (malloc + memcpy), whose address stays put, and that address goes
 * into sock_fprog. It is never freed: execvp replaces this process right after.
 */
export function seccomp(operation: number, flags: number, filter: Buffer): void {
  const instructions = filter.length / SOCK_FILTER_SIZE;
  const address = seccompCalls.malloc([filter.length]) as bigint;
  if (address === 0n) throw new Error('malloc failed: out of memory');
  seccompCalls.memcpy([address, filter, filter.length]);
  const fprog = Buffer.alloc(16); // 64-bit: len (2 bytes), 6 bytes of padding, then the 8-byte pointer
  fprog.writeUInt16LE(instructions, 0);
  fprog.writeBigUInt64LE(address, 8);
  const number = syscallNumberOn('seccomp');
  if (number === undefined) throw new Error(`no seccomp syscall number for architecture ${process.arch}`);
  const args = `${SECCOMP_OPERATIONS[operation] ?? operation}, ${flags}, {len=${instructions}, filter=<${instructions} instructions>}`;
  check('seccomp', args, seccompCalls.syscall([number, operation, flags, fprog]));
  noteFilterLoaded();
}
