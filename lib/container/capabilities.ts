// The capabilities a container's root should not have.
//
// Root's powers are split into capabilities (capabilities(7)), one bit each.
// A process's bounding set caps what it can ever gain: when root execs a
// program, the kernel gives the program the bounding set as its permitted and
// effective capabilities (P' = P(inheritable) | bounding; root's inheritable
// set is normally empty). So removing a capability from the bounding set
// just before execvp(), with prctl(PR_CAPBSET_DROP, cap), takes it away from
// the command and from everything it starts, for good.
//
// The list is close to what Docker drops by default (it keeps a small allow-list
// instead: chown, kill, setuid, net_bind_service, ...).
import { readFileSync } from 'node:fs';
import { CAPABILITY_NAMES, capabilityNumber } from '../kernel/constants.js';

export interface Capability {
  /** As in linux/capability.h, e.g. "CAP_SYS_ADMIN". */
  name: string;
  number: number;
  /** Why a container must not have it, in one line. */
  why: string;
}

const DANGEROUS: ReadonlyArray<readonly [name: string, why: string]> = [
  ['CAP_SYS_ADMIN', 'mount, sethostname, pivot_root, setns, ...: "the new root", enough to escape'],
  ['CAP_NET_ADMIN', 'reconfigure interfaces, routes and firewall rules'],
  ['CAP_SYS_MODULE', "load kernel modules: run any code in the host's kernel"],
  ['CAP_SYS_RAWIO', 'raw I/O: /dev/mem, I/O ports, raw disk commands'],
  ['CAP_SYS_PTRACE', "trace any process it can see and read or change its memory"],
  ['CAP_SYS_TIME', "set the clock, which is the host's: there is no time namespace here"],
  ['CAP_SYS_BOOT', 'reboot, or load a new kernel with kexec'],
  ['CAP_MKNOD', "create device files, e.g. for the host's disks (there is no device cgroup here)"],
  ['CAP_DAC_READ_SEARCH', 'open files by handle (open_by_handle_at): the "shocker" escape from Docker 0.x'],
  ['CAP_LINUX_IMMUTABLE', 'change the append-only and immutable file attributes'],
  ['CAP_IPC_LOCK', 'lock memory without limit'],
  ['CAP_SYS_RESOURCE', 'raise resource limits and override quotas'],
  ['CAP_SYS_NICE', 'raise priorities and real-time scheduling over the host'],
  ['CAP_SYS_PACCT', 'turn process accounting on and off'],
  ['CAP_SYS_TTY_CONFIG', 'reconfigure terminals (vhangup)'],
  ['CAP_LEASE', 'take leases on files it does not own'],
  ['CAP_AUDIT_CONTROL', "change the kernel's audit rules"],
  ['CAP_AUDIT_READ', 'read the audit log'],
  ['CAP_MAC_ADMIN', 'configure the security module (AppArmor, SELinux, Smack)'],
  ['CAP_MAC_OVERRIDE', 'bypass the security module'],
  ['CAP_SYSLOG', "read and clear the kernel's log, which shows kernel addresses"],
  ['CAP_WAKE_ALARM', 'wake the machine up'],
  ['CAP_BLOCK_SUSPEND', 'keep the machine from suspending'],
  ['CAP_PERFMON', 'performance monitoring of the whole machine'],
  ['CAP_BPF', 'load BPF programs into the kernel'],
  ['CAP_CHECKPOINT_RESTORE', 'checkpoint/restore other processes'],
];

/** The highest capability number this kernel knows (older kernels lack the newest ones). */
function lastCapability(): number {
  try {
    return Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
  } catch {
    return CAPABILITY_NAMES.length - 1;
  }
}

/** The capabilities to drop, those this kernel knows (dropping an unknown one fails with EINVAL). */
export function dangerousCapabilities(): Capability[] {
  const last = lastCapability();
  return DANGEROUS.map(([name, why]) => ({ name, number: capabilityNumber(name), why })).filter((capability) => capability.number <= last);
}

/** The capabilities in a mask from /proc/<pid>/status (CapBnd, CapEff, ...): "000001ffffffffff" → names. */
export function capabilitiesIn(hexMask: string): string[] {
  const mask = BigInt(`0x${hexMask}`);
  return CAPABILITY_NAMES.filter((_, number) => ((mask >> BigInt(number)) & 1n) === 1n);
}
