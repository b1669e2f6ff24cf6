// Files of the host's kernel that a container's root must not read or write.
//
// /proc and /sys are windows on the one kernel every container shares. Most of
// what they show is namespaced (the container's processes, its network), but
// some files show or change the whole machine, and only check file
// permissions, which uid 0 passes without any capability: /proc/sys (kernel
// settings: kernel.core_pattern names a program the host runs as root),
// /proc/sysrq-trigger (reboots the host), /proc/irq/*/smp_affinity, /proc/keys,
// /proc/timer_list, /proc/kcore…
//
// The lists are runc's defaults (`runc spec`, libcontainer/specconv/example.go:
// MaskedPaths, ReadonlyPaths), plus /sys/devices/virtual/powercap, which
// Docker masks too (power readings leak secrets: CVE-2020-8694, "Platypus").
// Call these after pivot_root, on the container's own /proc and /sys.
import { lstatSync } from 'node:fs';
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY } from '../kernel/constants.js';
import { mount } from '../kernel/libc.js';

/** Hidden: an empty file (/dev/null) or an empty read-only folder is mounted on top. */
export const MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore', // the host's memory, as a core file
  '/proc/keys', // the kernel's keyrings, machine-wide
  '/proc/latency_stats',
  '/proc/timer_list', // timers of every process on the machine
  '/proc/timer_stats',
  '/proc/sched_debug', // the scheduler's view of every process on the machine
  '/proc/scsi',
  '/sys/firmware', // ACPI tables, EFI variables
  '/sys/devices/virtual/powercap', // energy counters (Platypus)
];

/** Visible, but read-only: kernel settings and triggers. */
export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/**
 * Hide `path` the way runc does: a file gets /dev/null bind-mounted on top (it
 * reads as empty), a folder an empty read-only tmpfs. A path this kernel does
 * not have is left alone.
 */
export function maskPath(path: string): void {
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (!stat) return;
  if (stat.isDirectory()) mount('tmpfs', path, 'tmpfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 'nr_blocks=1,nr_inodes=2');
  else mount('/dev/null', path, '', MS_BIND);
}
