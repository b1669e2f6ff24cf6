// The numbers the kernel expects, named as in the C headers (see the man page
// named next to each group), plus the tables that turn them back into names
// for --trace and error messages.

// unshare(2) / clone(2): which namespaces to create.
export const CLONE_NEWNS = 0x00020000; // mount points
export const CLONE_NEWCGROUP = 0x02000000; // cgroup root
export const CLONE_NEWUTS = 0x04000000; // hostname and domain name
export const CLONE_NEWIPC = 0x08000000; // System V IPC, POSIX message queues
export const CLONE_NEWUSER = 0x10000000; // user and group ids
export const CLONE_NEWPID = 0x20000000; // process ids
export const CLONE_NEWNET = 0x40000000; // network devices, addresses, ports

// mount(2): how to mount.
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;

// umount2(2): how to unmount.
export const MNT_FORCE = 0x1;
export const MNT_DETACH = 0x2;

// fcntl(2): file descriptor and file status flags.
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;
export const O_NONBLOCK = 0o4000;

// close_range(2): mark the descriptors close-on-exec instead of closing them now.
export const CLOSE_RANGE_CLOEXEC = 0x4;

// signal(7), sigprocmask(2): the default action, and "replace the mask".
export const SIG_DFL = 0;
export const SIG_SETMASK = 2;

// Terminals: tcsetattr(3)'s "when", and ioctl requests (ioctl_tty(2), pty(7)),
// the same numbers on x86_64 and arm64.
export const TCSADRAIN = 1;
export const TIOCSCTTY = 0x540e; // make this terminal the caller's controlling terminal
export const TIOCGPGRP = 0x540f; // the terminal's foreground process group
export const TIOCGWINSZ = 0x5413; // get the window size (struct winsize)
export const TIOCSWINSZ = 0x5414; // set it: the foreground process group gets SIGWINCH
export const TIOCGPTN = 0x80045430; // a pty master's number: its slave is /dev/pts/<N>
export const TIOCSPTLCK = 0x40045431; // lock (1) or unlock (0) the slave: unlockpt(3)

// struct termios (termios(3)): where c_lflag and c_cc are, and the bits we look at.
export const TERMIOS_LFLAG_OFFSET = 12;
export const TERMIOS_CC_OFFSET = 17;
export const ISIG = 0x1; // c_lflag: the INTR and QUIT characters send signals
export const VINTR = 0; // c_cc: the character that sends SIGINT (Ctrl-C)
export const VQUIT = 1; // c_cc: the character that sends SIGQUIT (Ctrl-\)

// prctl(2): process controls.
export const PR_SET_PDEATHSIG = 1;
export const PR_CAPBSET_READ = 23;
export const PR_CAPBSET_DROP = 24;

// socket(2): address family and type. Any socket will do to ask the kernel
// about network interfaces; a UDP one (AF_INET, SOCK_DGRAM) is the usual choice.
export const AF_INET = 2;
export const SOCK_DGRAM = 2;

// ioctl(2) requests on a network interface (netdevice(7)), named by a struct ifreq.
export const SIOCGIFFLAGS = 0x8913; // get the interface's flags
export const SIOCSIFFLAGS = 0x8914; // set them

// Interface flags, in struct ifreq's ifr_flags (net/if.h).
export const IFF_UP = 0x1; // administratively up: the one flag we set
export const IFF_BROADCAST = 0x2;
export const IFF_LOOPBACK = 0x8;
export const IFF_POINTOPOINT = 0x10;
export const IFF_RUNNING = 0x40; // the kernel says it works (read-only)
export const IFF_NOARP = 0x80;
export const IFF_PROMISC = 0x100;
export const IFF_MULTICAST = 0x1000;

// Capabilities (capabilities(7), linux/capability.h): root's powers, one bit each.
// The full list, so --trace and /proc/self/status can be read by name.
export const CAPABILITY_NAMES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', // 0-5
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', // 6-10
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', // 11-15
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', // 16-20
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', // 21-25
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', // 26-30
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', // 31-35
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE', // 36-40
];

/** "CAP_SYS_ADMIN" → 21. */
export function capabilityNumber(name: string): number {
  const number = CAPABILITY_NAMES.indexOf(name);
  if (number === -1) throw new Error(`unknown capability ${name}`);
  return number;
}

// pivot_root has no glibc wrapper: we call syscall(2) with its number,
// which differs between architectures (asm/unistd.h).
// (close_range is one of the newer syscalls, numbered the same on every architecture.)
const SYSCALL_NUMBERS: Record<string, { pivot_root: number; close_range: number }> = {
  x64: { pivot_root: 155, close_range: 436 },
  arm64: { pivot_root: 41, close_range: 436 },
};

/** mknodat(2), which image layers need for whiteouts (older glibc has no mknod symbol to call). */
export const MKNODAT_SYSCALL: Record<string, number> = { x64: 259, arm64: 33 };
/** The "current folder" for the *at() calls: a relative path is taken from there. */
export const AT_FDCWD = -100;

export function syscallNumber(name: 'pivot_root' | 'close_range', arch: string = process.arch): number {
  const numbers = SYSCALL_NUMBERS[arch];
  if (!numbers) {
    throw new Error(`no syscall numbers for architecture ${arch} (supported: ${Object.keys(SYSCALL_NUMBERS).join(', ')})`);
  }
  return numbers[name];
}

// Name tables, used to print `CLONE_NEWUTS|CLONE_NEWPID` instead of 0x24000000.
export type FlagTable = ReadonlyArray<readonly [name: string, value: number]>;

export const CLONE_FLAGS: FlagTable = [
  ['CLONE_NEWNS', CLONE_NEWNS],
  ['CLONE_NEWCGROUP', CLONE_NEWCGROUP],
  ['CLONE_NEWUTS', CLONE_NEWUTS],
  ['CLONE_NEWIPC', CLONE_NEWIPC],
  ['CLONE_NEWUSER', CLONE_NEWUSER],
  ['CLONE_NEWPID', CLONE_NEWPID],
  ['CLONE_NEWNET', CLONE_NEWNET],
];

export const MOUNT_FLAGS: FlagTable = [
  ['MS_RDONLY', MS_RDONLY],
  ['MS_NOSUID', MS_NOSUID],
  ['MS_NODEV', MS_NODEV],
  ['MS_NOEXEC', MS_NOEXEC],
  ['MS_REMOUNT', MS_REMOUNT],
  ['MS_BIND', MS_BIND],
  ['MS_MOVE', MS_MOVE],
  ['MS_REC', MS_REC],
  ['MS_PRIVATE', MS_PRIVATE],
  ['MS_SLAVE', MS_SLAVE],
  ['MS_SHARED', MS_SHARED],
];

export const UMOUNT_FLAGS: FlagTable = [
  ['MNT_FORCE', MNT_FORCE],
  ['MNT_DETACH', MNT_DETACH],
];

export const IFF_FLAGS: FlagTable = [
  ['IFF_UP', IFF_UP],
  ['IFF_BROADCAST', IFF_BROADCAST],
  ['IFF_LOOPBACK', IFF_LOOPBACK],
  ['IFF_POINTOPOINT', IFF_POINTOPOINT],
  ['IFF_RUNNING', IFF_RUNNING],
  ['IFF_NOARP', IFF_NOARP],
  ['IFF_PROMISC', IFF_PROMISC],
  ['IFF_MULTICAST', IFF_MULTICAST],
];

export const IOCTL_REQUESTS: Record<number, string> = {
  [SIOCGIFFLAGS]: 'SIOCGIFFLAGS',
  [SIOCSIFFLAGS]: 'SIOCSIFFLAGS',
  [TIOCSCTTY]: 'TIOCSCTTY',
  [TIOCGPGRP]: 'TIOCGPGRP',
  [TIOCGWINSZ]: 'TIOCGWINSZ',
  [TIOCSWINSZ]: 'TIOCSWINSZ',
  [TIOCGPTN]: 'TIOCGPTN',
  [TIOCSPTLCK]: 'TIOCSPTLCK',
};

export const SOCKET_DOMAINS: Record<number, string> = { [AF_INET]: 'AF_INET' };
export const SOCKET_TYPES: Record<number, string> = { [SOCK_DGRAM]: 'SOCK_DGRAM' };

/** 0x24000000 with CLONE_FLAGS → "CLONE_NEWUTS|CLONE_NEWPID"; unknown bits stay as hex. */
export function decodeFlags(value: number, table: FlagTable): string {
  if (value === 0) return '0';
  const names: string[] = [];
  let rest = value;
  for (const [name, bit] of table) {
    if ((rest & bit) === bit) {
      names.push(name);
      rest &= ~bit;
    }
  }
  if (rest !== 0) names.push(`0x${(rest >>> 0).toString(16)}`);
  return names.join('|');
}

// ── Step 9: no_new_privs and seccomp ────────────────────────────────────────

// prctl(2): once set, execve() can never grant privileges again (setuid/setgid
// bits and file capabilities are ignored); inherited by children, never unset.
export const PR_SET_NO_NEW_PRIVS = 38;

// seccomp(2): load a syscall filter.
export const SECCOMP_SET_MODE_FILTER = 1;

// A filter reads struct seccomp_data (linux/seccomp.h), in the machine's byte order:
//   int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];
export const SECCOMP_DATA_NR = 0; // offset of the syscall number
export const SECCOMP_DATA_ARCH = 4; // offset of the caller's ABI (AUDIT_ARCH_*)
/** Offset of the low 32 bits of argument `index` (little-endian: x86_64 and arm64). */
export function seccompDataArgLow(index: number): number {
  return 16 + 8 * index;
}

// Classic BPF (linux/filter.h, linux/bpf_common.h): one instruction is
// struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; }, 8 bytes.
// A filter has one register, A, and jumps only forward.
export const BPF_LD = 0x00; // A = ...
export const BPF_JMP = 0x05; // if (A op k) skip jt instructions, else skip jf
export const BPF_RET = 0x06; // return k: the verdict
export const BPF_W = 0x00; // a 32-bit word
export const BPF_ABS = 0x20; // at a fixed offset in seccomp_data
export const BPF_JEQ = 0x10; // A == k
export const BPF_JGE = 0x30; // A >= k
export const BPF_JSET = 0x40; // A & k != 0
export const BPF_K = 0x00; // the operand is the constant k
export const SOCK_FILTER_SIZE = 8;

// What a filter returns (linux/seccomp.h): an action, plus 16 bits of data (the errno for ERRNO).
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const SECCOMP_RET_DATA = 0x0000ffff;

// The ABI a syscall was made through (linux/audit.h): ELF machine | 64-bit | little-endian.
export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_AARCH64 = 0xc00000b7;
export const AUDIT_ARCH_I386 = 0x40000003; // 32-bit x86 (int 0x80), possible on any x86_64 machine
export const AUDIT_ARCH_ARM = 0x40000028; // 32-bit arm, possible on many arm64 machines
/** x86_64's x32 ABI: the same AUDIT_ARCH_X86_64, syscall numbers with this bit set. */
export const X32_SYSCALL_BIT = 0x40000000;

/**
 * Syscall numbers on x86_64 (asm/unistd_64.h) and arm64 (asm-generic/unistd.h),
 * for the seccomp filter and the calls glibc does not wrap. A missing entry: the
 * architecture has no such syscall (arm64 never had the legacy ones).
 * Checked with libseccomp's `scmp_sys_resolver -a x86_64|aarch64 NAME`, except the lsm_* calls
 * (Linux 6.8) and open_tree_attr (6.15), newer than libseccomp 2.5: from the kernel's syscall tables.
 */
export const SYSCALLS: Readonly<Record<string, { x64?: number; arm64?: number }>> = {
  seccomp: { x64: 317, arm64: 277 },
  clone: { x64: 56, arm64: 220 },
  clone3: { x64: 435, arm64: 435 },
  unshare: { x64: 272, arm64: 97 },
  setns: { x64: 308, arm64: 268 },
  keyctl: { x64: 250, arm64: 219 },
  add_key: { x64: 248, arm64: 217 },
  request_key: { x64: 249, arm64: 218 },
  bpf: { x64: 321, arm64: 280 },
  perf_event_open: { x64: 298, arm64: 241 },
  userfaultfd: { x64: 323, arm64: 282 },
  io_uring_setup: { x64: 425, arm64: 425 },
  io_uring_enter: { x64: 426, arm64: 426 },
  io_uring_register: { x64: 427, arm64: 427 },
  init_module: { x64: 175, arm64: 105 },
  finit_module: { x64: 313, arm64: 273 },
  delete_module: { x64: 176, arm64: 106 },
  kexec_load: { x64: 246, arm64: 104 },
  kexec_file_load: { x64: 320, arm64: 294 },
  reboot: { x64: 169, arm64: 142 },
  mount: { x64: 165, arm64: 40 },
  umount2: { x64: 166, arm64: 39 },
  pivot_root: { x64: 155, arm64: 41 },
  open_tree: { x64: 428, arm64: 428 },
  move_mount: { x64: 429, arm64: 429 },
  fsopen: { x64: 430, arm64: 430 },
  fsconfig: { x64: 431, arm64: 431 },
  fsmount: { x64: 432, arm64: 432 },
  fspick: { x64: 433, arm64: 433 },
  mount_setattr: { x64: 442, arm64: 442 },
  open_tree_attr: { x64: 467, arm64: 467 },
  lsm_get_self_attr: { x64: 459, arm64: 459 },
  lsm_set_self_attr: { x64: 460, arm64: 460 },
  lsm_list_modules: { x64: 461, arm64: 461 },
  swapon: { x64: 167, arm64: 224 },
  swapoff: { x64: 168, arm64: 225 },
  open_by_handle_at: { x64: 304, arm64: 265 },
  quotactl: { x64: 179, arm64: 60 },
  quotactl_fd: { x64: 443, arm64: 443 },
  fanotify_init: { x64: 300, arm64: 262 },
  lookup_dcookie: { x64: 212, arm64: 18 },
  acct: { x64: 163, arm64: 89 },
  syslog: { x64: 103, arm64: 116 },
  kcmp: { x64: 312, arm64: 272 },
  pidfd_getfd: { x64: 438, arm64: 438 },
  process_madvise: { x64: 440, arm64: 440 },
  get_mempolicy: { x64: 239, arm64: 236 },
  set_mempolicy: { x64: 238, arm64: 237 },
  set_mempolicy_home_node: { x64: 450, arm64: 450 },
  mbind: { x64: 237, arm64: 235 },
  migrate_pages: { x64: 256, arm64: 238 },
  move_pages: { x64: 279, arm64: 239 },
  settimeofday: { x64: 164, arm64: 170 },
  clock_settime: { x64: 227, arm64: 112 },
  sethostname: { x64: 170, arm64: 161 },
  setdomainname: { x64: 171, arm64: 162 },
  vhangup: { x64: 153, arm64: 58 },
  iopl: { x64: 172 },
  ioperm: { x64: 173 },
  uselib: { x64: 134 },
  ustat: { x64: 136 },
  sysfs: { x64: 139 },
  _sysctl: { x64: 156 },
  socket: { x64: 41, arm64: 198 },
  personality: { x64: 135, arm64: 92 },
  getpid: { x64: 39, arm64: 172 },
  exit_group: { x64: 231, arm64: 94 },
};

/** The number of syscall `name` on `arch` (a process.arch value); undefined when that architecture has none. */
export function syscallNumberOn(name: string, arch: string = process.arch): number | undefined {
  const numbers = SYSCALLS[name];
  if (!numbers) throw new Error(`unknown syscall ${name}`);
  return arch === 'x64' ? numbers.x64 : arch === 'arm64' ? numbers.arm64 : undefined;
}

// The flags of clone(2) that create namespaces: a filter refuses clone with any of them.
export const CLONE_NAMESPACE_FLAGS = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
