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
  SOCKET_TYPES,
  UMOUNT_FLAGS,
  decodeFlags,
  syscallNumber,
} from './constants.js';
import { LibcError } from './errors.js';
import { DataType, LIBC_PATH, define, load, open } from './ffi.js';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { showArg, traceCall, traceFailure, traceNoReturn } from './trace.js';

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
  // char *strdup(const char *): copies a JS string into C memory and returns its address.
  strdup: { library: 'libc', retType: DataType.BigInt, paramsType: [DataType.String] },
  // int execvp(const char *file, char *const argv[]): argv is passed as raw bytes (see execvp below).
  execvp: { library: 'libc', retType: DataType.I32, paramsType: [DataType.String, DataType.U8Array], errno: true },
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

/** Trace a call's result, and turn -1 into a LibcError. */
function check(call: string, args: string, result: Result): number {
  const value = Number(result.value);
  if (value === -1) {
    const error = new LibcError(call, args, result.errnoCode, result.errnoMessage.replace(/ \(os error \d+\)$/, ''));
    traceFailure(call, args, error.errnoName, error.errnoMessage);
    throw error;
  }
  traceCall(call, args, String(value));
  return value;
}

/** unshare(2): move this process into new namespaces (PID: its future children). */
export function unshare(flags: number): void {
  check('unshare', decodeFlags(flags, CLONE_FLAGS), c.unshare([flags]));
}

/** sethostname(2): set the hostname of this UTS namespace. */
export function sethostname(name: string): void {
  const length = Buffer.byteLength(name);
  check('sethostname', `${showArg(name)}, ${length}`, c.sethostname([name, length]));
}

/** mount(2). `source` and `fstype` are ignored by the kernel for bind mounts and propagation changes. */
export function mount(source: string, target: string, fstype: string, flags: number, data = ''): void {
  const args = [showArg(source), showArg(target), showArg(fstype), decodeFlags(flags, MOUNT_FLAGS), showArg(data)].join(', ');
  check('mount', args, c.mount([source, target, fstype, flags, data]));
}

/** umount2(2): unmount; MNT_DETACH unmounts lazily, once nothing uses it. */
export function umount2(target: string, flags: number): void {
  check('umount2', `${showArg(target)}, ${decodeFlags(flags, UMOUNT_FLAGS)}`, c.umount2([target, flags]));
}

/** pivot_root(2): make new_root the root of this mount namespace and put the old root at put_old. */
export function pivotRoot(newRoot: string, putOld: string): void {
  const number = syscallNumber('pivot_root');
  check('pivot_root', `${showArg(newRoot)}, ${showArg(putOld)}`, c.syscall([number, newRoot, putOld]));
}

/** chdir(2). */
export function chdir(path: string): void {
  check('chdir', showArg(path), c.chdir([path]));
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
 * Build a C `char *argv[]`: an array of pointers to strings, ending with NULL.
 * Each string is copied into C memory with strdup(); the array itself is a
 * Buffer of 8-byte addresses (64-bit machines: x86_64 and arm64).
 * It is never freed: a successful execvp replaces this whole process.
 */
export function cStringArray(strings: readonly string[]): Buffer {
  const pointers = Buffer.alloc(8 * (strings.length + 1)); // zero-filled: the last one is NULL
  strings.forEach((text, index) => pointers.writeBigUInt64LE(c.strdup([text]) as bigint, 8 * index));
  return pointers;
}

function foundInPath(file: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((folder) => existsSync(`${folder || '.'}/${file}`));
}

/** What the runtime does in the child just before every exec, after the step's own setup (e.g. an image's Env and WorkingDir). */
const execPreparations: (() => void)[] = [];

export function beforeExec(prepare: () => void): void {
  execPreparations.push(prepare);
}

/**
 * execvp(3): replace this process with `file` (searched in PATH), running with `argv`.
 * Only returns by throwing: exit code 127 when not found, 126 when not executable.
 */
export function execvp(file: string, argv: readonly string[]): never {
  for (const prepare of execPreparations) prepare();
  keepStdioAcrossExec();
  const args = `${showArg(file)}, ${showArg([...argv])}`;
  traceNoReturn('execvp', args, '→ the command replaces this process');
  const result = c.execvp([file, cStringArray(argv)]);
  // execvp says EACCES when the program is nowhere in PATH but one PATH folder was unreadable: that is "not found".
  const { EACCES, ENOENT } = constants.errno;
  if (result.errnoCode === EACCES && !file.includes('/') && !foundInPath(file)) result.errnoCode = ENOENT;
  check('execvp', args, result); // execvp only comes back on failure: this throws
  throw new Error('unreachable: execvp returned without an error');
}
