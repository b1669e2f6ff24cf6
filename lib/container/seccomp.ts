// The syscall filter of step 9 (seccomp(2), and the kernel's
// Documentation/userspace-api/seccomp_filter.rst).
//
// Capabilities (step 8) take powers away from root, but every syscall is still
// there to be called, and some need no capability at all: keyctl, bpf,
// perf_event_open, userfaultfd, unshare(CLONE_NEWUSER)… Each is a large piece
// of kernel code with a history of bugs a container could use to escape.
//
// A seccomp filter closes them. It is a small program in classic BPF that the
// kernel runs before every syscall of the thread that loaded it, and of
// everything that thread execs or forks, for good. It reads a struct
// seccomp_data (the syscall's number, the ABI it came through, its arguments)
// and returns a verdict: ALLOW, ERRNO(n) (the syscall fails with errno n
// without running), or KILL_PROCESS.
//
// The filter built here says no, with EPERM, to what Docker's default profile
// refuses a container without CAP_SYS_ADMIN & co (github.com/moby/profiles,
// seccomp/default.json). Docker lists the ~370 syscalls it allows; this lists
// the ones it does not, which is short enough to read:
//
//   A = seccomp_data.arch    not this machine's ABI? ───────────→ KILL_PROCESS
//   A = seccomp_data.nr      x32 syscall (x86_64 only)? ────────→ KILL_PROCESS
//                            clone3? ───────────────────────────→ ERRNO(ENOSYS)
//                            clone?  A = flags: a CLONE_NEW*? ──→ ERRNO(EPERM)
//                                                       none? ──→ ALLOW
//                            socket? A = domain: AF_VSOCK? ─────→ ERRNO(EPERM)
//                            keyctl? bpf? mount? … (one test each) → ERRNO(EPERM)
//                            anything else ─────────────────────→ ALLOW
import { constants } from 'node:os';
import {
  AUDIT_ARCH_AARCH64,
  AUDIT_ARCH_X86_64,
  BPF_ABS,
  BPF_JEQ,
  BPF_JGE,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_RET,
  BPF_W,
  CLONE_FLAGS,
  CLONE_NAMESPACE_FLAGS,
  SECCOMP_DATA_ARCH,
  SECCOMP_DATA_NR,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_DATA,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SOCK_FILTER_SIZE,
  X32_SYSCALL_BIT,
  decodeFlags,
  seccompDataArgLow,
  syscallNumberOn,
} from '../kernel/constants.js';
import { traceNote } from '../kernel/trace.js';

/** One classic-BPF instruction: struct sock_filter. */
export interface Instruction {
  code: number;
  /** Instructions to skip when a jump's test is true / false. */
  jt: number;
  jf: number;
  k: number;
}

/** A few instructions that make one decision, and that decision in words (one line of --trace). */
export interface Rule {
  text: string;
  instructions: Instruction[];
}

const { EPERM, ENOSYS } = constants.errno;
const AF_VSOCK = 40;

/**
 * The syscalls a container is refused, and why. Those an architecture does not
 * have (arm64 never had iopl or _sysctl) are left out of its filter.
 */
export const DENIED_SYSCALLS: ReadonlyArray<readonly [name: string, why: string]> = [
  // The kernel's own code and data
  ['keyctl', "the kernel's keyrings are not namespaced: keys of the host and other containers"],
  ['add_key', "the kernel's keyrings, as keyctl"],
  ['request_key', "the kernel's keyrings, as keyctl"],
  ['bpf', 'loads programs into the kernel'],
  ['perf_event_open', 'performance counters of the whole machine; a long list of kernel bugs'],
  ['userfaultfd', 'stalls the kernel on a page fault at a moment of your choosing: the core of many exploits'],
  ['io_uring_setup', "io_uring: a second way to make syscalls, out of the filter's sight; many kernel bugs"],
  ['io_uring_enter', 'io_uring, as io_uring_setup'],
  ['io_uring_register', 'io_uring, as io_uring_setup'],
  ['init_module', 'loads a kernel module'],
  ['finit_module', 'loads a kernel module'],
  ['delete_module', 'unloads a kernel module'],
  ['kexec_load', 'boots another kernel'],
  ['kexec_file_load', 'boots another kernel'],
  ['reboot', 'reboots the machine'],
  ['swapon', "changes the host's swap"],
  ['swapoff', "changes the host's swap"],
  ['syslog', "reads and clears the kernel's log, which holds kernel addresses"],
  ['acct', 'process accounting, machine-wide'],
  ['lookup_dcookie', 'a profiling interface that reads kernel paths'],
  // Mounts and namespaces: the container's view of the world stays the one the runtime made
  ['mount', 'mounts a file system'],
  ['umount2', 'unmounts one, and may uncover what a mount hid'],
  ['pivot_root', 'changes the root'],
  ['open_tree', 'the new mount API (5.2+), as mount'],
  ['move_mount', 'the new mount API, as mount'],
  ['fsopen', 'the new mount API, as mount'],
  ['fsconfig', 'the new mount API, as mount'],
  ['fsmount', 'the new mount API, as mount'],
  ['fspick', 'the new mount API, as mount'],
  ['mount_setattr', 'the new mount API, as mount'],
  ['open_tree_attr', 'the new mount API (6.15+), as mount'],
  ['unshare', 'new namespaces: a user namespace gives back every capability, inside it'],
  ['setns', "joins another process's namespaces"],
  ['open_by_handle_at', 'opens any file of a file system by its handle: the "shocker" escape'],
  ['quotactl', 'disk quotas'],
  ['quotactl_fd', 'disk quotas'],
  ['fanotify_init', 'watches file accesses, machine-wide'],
  ['lsm_get_self_attr', 'the security module (AppArmor, SELinux) attributes of the process (6.8+)'],
  ['lsm_set_self_attr', 'the security module attributes of the process'],
  ['lsm_list_modules', 'which security modules the kernel runs'],
  // Other processes and the machine
  ['kcmp', "compares other processes' kernel objects"],
  ['pidfd_getfd', "takes a file descriptor out of another process"],
  ['process_madvise', "advises the kernel on another process's memory"],
  ['get_mempolicy', 'NUMA memory policy'],
  ['set_mempolicy', 'NUMA memory policy'],
  ['set_mempolicy_home_node', 'NUMA memory policy'],
  ['mbind', 'NUMA memory policy'],
  ['migrate_pages', "moves another process's memory between NUMA nodes"],
  ['move_pages', "moves another process's memory between NUMA nodes"],
  ['settimeofday', "sets the host's clock: there is no time namespace here"],
  ['clock_settime', "sets the host's clock"],
  ['sethostname', 'the UTS namespace is set up by the runtime'],
  ['setdomainname', 'the UTS namespace is set up by the runtime'],
  ['vhangup', 'hangs up the terminal'],
  ['iopl', 'raw I/O ports (x86)'],
  ['ioperm', 'raw I/O ports (x86)'],
  ['uselib', 'an obsolete loader call (x86)'],
  ['ustat', 'obsolete file system statistics (x86)'],
  ['sysfs', 'obsolete file system listing (x86)'],
  ['_sysctl', 'obsolete kernel settings (x86)'],
];

/** The ABI each supported architecture makes its syscalls through (linux/audit.h). */
const ARCHITECTURES: Record<string, { audit: number; name: string; x32: boolean }> = {
  x64: { audit: AUDIT_ARCH_X86_64, name: 'AUDIT_ARCH_X86_64', x32: true },
  arm64: { audit: AUDIT_ARCH_AARCH64, name: 'AUDIT_ARCH_AARCH64', x32: false },
};

// The two shapes of struct sock_filter, named as in linux/filter.h.
function statement(code: number, k: number): Instruction {
  return { code, jt: 0, jf: 0, k };
}
function jump(code: number, k: number, jt: number, jf: number): Instruction {
  return { code, jt, jf, k };
}
/** A = the 32-bit word at `offset` in struct seccomp_data. */
const load = (offset: number) => statement(BPF_LD | BPF_W | BPF_ABS, offset);
/** Return a verdict. */
const verdict = (action: number) => statement(BPF_RET | BPF_K, action >>> 0);
const fail = (errno: number) => verdict(SECCOMP_RET_ERRNO | (errno & SECCOMP_RET_DATA));

function architecture(arch: string): { audit: number; name: string; x32: boolean } {
  const known = ARCHITECTURES[arch];
  if (!known) throw new Error(`no seccomp filter for architecture ${arch} (supported: ${Object.keys(ARCHITECTURES).join(', ')})`);
  return known;
}

function syscall(name: string, arch: string): number {
  const number = syscallNumberOn(name, arch);
  if (number === undefined) throw new Error(`${name} has no number on ${arch}`);
  return number;
}

function errnoText(errno: number): string {
  return `ERRNO(${errno === EPERM ? 'EPERM' : errno === ENOSYS ? 'ENOSYS' : errno})`;
}

/**
 * First, the ABI the syscall came through: the same number is another syscall
 * in another ABI (32-bit x86 through `int 0x80` on x86_64, arm32 on arm64,
 * x32 on x86_64), and would slip past every test below. Such a call kills the process.
 */
export function checkArchitecture(arch: string = process.arch): Rule[] {
  const { audit, name, x32 } = architecture(arch);
  const rules: Rule[] = [
    {
      text: `arch ≠ ${name} → KILL_PROCESS`,
      // A = arch; equal: skip the kill.
      instructions: [load(SECCOMP_DATA_ARCH), jump(BPF_JMP | BPF_JEQ | BPF_K, audit, 1, 0), verdict(SECCOMP_RET_KILL_PROCESS)],
    },
  ];
  if (x32) {
    rules.push({
      text: `nr ≥ 0x${X32_SYSCALL_BIT.toString(16)} (the x32 ABI) → KILL_PROCESS`,
      instructions: [load(SECCOMP_DATA_NR), jump(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1), verdict(SECCOMP_RET_KILL_PROCESS)],
    });
  }
  return rules;
}

/** `name` → fail with `errno`. (Each rule loads what it tests: rules work in any order.) */
export function denySyscall(name: string, errno: number, arch: string = process.arch): Rule {
  const number = syscall(name, arch);
  return {
    text: `${name} (${number}) → ${errnoText(errno)}`,
    // A = nr; not this syscall: skip the verdict.
    instructions: [load(SECCOMP_DATA_NR), jump(BPF_JMP | BPF_JEQ | BPF_K, number, 0, 1), fail(errno)],
  };
}

/**
 * `name` → fail with `errno` when its argument `index` (its low 32 bits) has
 * one of the `mask` bits set, or equals `value`; any other call of it is allowed.
 */
function denyArgument(name: string, index: number, test: { mask: number; shown: string } | { value: number; shown: string }, errno: number, arch: string): Rule {
  const number = syscall(name, arch);
  const compare = 'mask' in test ? jump(BPF_JMP | BPF_JSET | BPF_K, test.mask, 0, 1) : jump(BPF_JMP | BPF_JEQ | BPF_K, test.value, 0, 1);
  return {
    text: `${name} (${number}) with ${test.shown} → ${errnoText(errno)}, else ALLOW`,
    // A = nr; not this syscall: skip the rest of the rule. Else A = the argument: test it, fail or allow.
    instructions: [
      load(SECCOMP_DATA_NR),
      jump(BPF_JMP | BPF_JEQ | BPF_K, number, 0, 4),
      load(seccompDataArgLow(index)),
      compare,
      fail(errno),
      verdict(SECCOMP_RET_ALLOW),
    ],
  };
}

/**
 * Then the syscall number: the rules Docker's default profile applies to a
 * container without CAP_SYS_ADMIN & co. clone3 gets ENOSYS, not EPERM: its
 * flags are in memory a filter cannot read, and on ENOSYS libc falls back to
 * clone, whose flags are an argument the filter can test.
 */
export function denyDangerousSyscalls(arch: string = process.arch): Rule[] {
  return [
    denySyscall('clone3', ENOSYS, arch),
    denyArgument('clone', 0, { mask: CLONE_NAMESPACE_FLAGS, shown: `flags & ${decodeFlags(CLONE_NAMESPACE_FLAGS, CLONE_FLAGS)}` }, EPERM, arch),
    denyArgument('socket', 0, { value: AF_VSOCK, shown: 'domain = AF_VSOCK (the hypervisor)' }, EPERM, arch),
    ...DENIED_SYSCALLS.filter(([name]) => syscallNumberOn(name, arch) !== undefined).map(([name]) => denySyscall(name, EPERM, arch)),
  ];
}

/** Last: anything no rule stopped runs. */
export function allowTheRest(): Rule {
  return { text: 'any other syscall → ALLOW', instructions: [verdict(SECCOMP_RET_ALLOW)] };
}

/**
 * Lay the rules out as the kernel reads them: struct sock_filter[], 8 bytes
 * each, in the machine's byte order (little-endian on x86_64 and arm64).
 * --trace shows the rules, one line each.
 */
export function filterProgram(rules: readonly Rule[]): Buffer {
  const instructions = rules.flatMap((rule) => rule.instructions);
  const program = Buffer.alloc(instructions.length * SOCK_FILTER_SIZE);
  instructions.forEach(({ code, jt, jf, k }, index) => {
    const offset = index * SOCK_FILTER_SIZE;
    program.writeUInt16LE(code, offset); // __u16 code
    program.writeUInt8(jt, offset + 2); // __u8 jt
    program.writeUInt8(jf, offset + 3); // __u8 jf
    program.writeUInt32LE(k >>> 0, offset + 4); // __u32 k
  });
  traceNote(`seccomp filter: ${rules.length} rules, ${instructions.length} BPF instructions`);
  rules.forEach((rule, index) => traceNote(`  ${String(index + 1).padStart(2)}. ${rule.text}`));
  return program;
}

/** The whole filter of step 9, for this machine (or `arch`). */
export function containerFilter(arch: string = process.arch): Rule[] {
  return [...checkArchitecture(arch), ...denyDangerousSyscalls(arch), allowTheRest()];
}
