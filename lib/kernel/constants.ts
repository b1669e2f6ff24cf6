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
const SYSCALL_NUMBERS: Record<string, { pivot_root: number }> = {
  x64: { pivot_root: 155 },
  arm64: { pivot_root: 41 },
};

/** mknodat(2), which image layers need for whiteouts (older glibc has no mknod symbol to call). */
export const MKNODAT_SYSCALL: Record<string, number> = { x64: 259, arm64: 33 };
/** The "current folder" for the *at() calls: a relative path is taken from there. */
export const AT_FDCWD = -100;

export function syscallNumber(name: 'pivot_root', arch: string = process.arch): number {
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
