// What this machine can do for containers: probes used by `npm run doctor`,
// and reusable by the runtime (detectCgroups() for step 5).
//
// Everything here only looks: it reads /proc and /sys, or runs a short-lived
// child process in its own namespaces, which vanish when it exits.
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** The contents of a /proc or /sys file, or undefined when it cannot be read. */
export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

// ── The kernel ───────────────────────────────────────────────────────────────

export interface KernelVersion {
  /** As `uname -r` prints it, e.g. "6.8.0-45-generic". */
  release: string;
  major: number;
  minor: number;
}

export function kernelVersion(): KernelVersion {
  const text = release();
  const [, major = '0', minor = '0'] = /^(\d+)\.(\d+)/.exec(text) ?? [];
  return { release: text, major: Number(major), minor: Number(minor) };
}

/** True when the kernel is at least major.minor. */
export function kernelAtLeast(version: KernelVersion, major: number, minor: number): boolean {
  return version.major > major || (version.major === major && version.minor >= minor);
}

/**
 * Which WSL this is, if any. WSL1 is not a Linux kernel but a translation
 * layer without namespaces or cgroups; WSL2 is a real Linux kernel in a VM.
 * WSL1 kernels call themselves "…-Microsoft", WSL2 ones "…-microsoft-standard-WSL2".
 */
export function detectWsl(): 'wsl1' | 'wsl2' | undefined {
  const text = `${readIfExists('/proc/sys/kernel/osrelease') ?? ''} ${readIfExists('/proc/version') ?? ''}`;
  if (/WSL2/i.test(text)) return 'wsl2';
  if (/Microsoft/.test(text)) return 'wsl1';
  if (/microsoft/i.test(text)) return 'wsl2';
  return undefined;
}

/** Whether the kernel knows a file system type (listed in /proc/filesystems). */
export function filesystemSupported(type: string): boolean {
  const list = readIfExists('/proc/filesystems') ?? '';
  return list.split('\n').some((line) => line.trim().split(/\s+/).pop() === type);
}

// ── Privileges ───────────────────────────────────────────────────────────────

/** Capability numbers, from linux/capability.h. */
export const CAP_SYS_ADMIN = 21;

/** Whether this process has a capability in its effective set (from /proc/self/status). */
export function hasCapability(capability: number): boolean {
  const line = /^CapEff:\s*([0-9a-f]+)$/m.exec(readIfExists('/proc/self/status') ?? '');
  if (!line?.[1]) return false;
  return ((BigInt(`0x${line[1]}`) >> BigInt(capability)) & 1n) === 1n;
}

/** True when this process runs in the machine's own user namespace (uid 0 there is the real root). */
export function inInitialUserNamespace(): boolean {
  const map = (readIfExists('/proc/self/uid_map') ?? '').trim().split(/\s+/);
  return map.join(' ') === '0 0 4294967295';
}

/**
 * This process's uid on the host: in a user namespace (rootless `npm run step`
 * runs as uid 0 of one), the uid it maps to, from /proc/self/uid_map
 * ("inside outside count" per line).
 */
export function hostUid(): number {
  const uid = process.getuid?.() ?? 0;
  for (const line of (readIfExists('/proc/self/uid_map') ?? '').trim().split('\n')) {
    const [inside, outside, count] = line.trim().split(/\s+/).map(Number);
    if (inside !== undefined && outside !== undefined && count !== undefined && uid >= inside && uid < inside + count) return outside + (uid - inside);
  }
  return uid;
}

/**
 * How many threads a single-threaded program (cat) runs with here: 1 on a real
 * machine; 2 or more under an emulator such as qemu-user, which adds a thread
 * of its own to every program it runs.
 */
export function threadsOfOneThreadedProgram(): number {
  const status = spawnSync('cat', ['/proc/self/status'], { encoding: 'utf8', timeout: 60_000 }).stdout ?? '';
  return Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 1);
}

/**
 * The kernel refuses a new user namespace to a process with more than one
 * thread (EINVAL). When even single-threaded programs have several here, that
 * is why `unshare --user` fails, whatever AppArmor, seccomp or the sysctls say.
 * Returns the explanation, or undefined when that is not the cause.
 */
export function multithreadedCause(error: string | undefined, threads: number): string | undefined {
  if (threads <= 1 || !/invalid argument|EINVAL/i.test(error ?? '')) return undefined;
  return (
    `every program here runs with ${threads} threads (an emulator such as qemu-user adds its own), and the kernel ` +
    'refuses a new user namespace to a multithreaded process (EINVAL): a limit of emulation, not of this machine\'s settings. ' +
    'Run as root here, or on a machine of this architecture.'
  );
}

/** util-linux's `unshare --version` line, or undefined when there is no `unshare` command. */
export function unshareVersion(): string | undefined {
  const result = spawnSync('unshare', ['--version'], { encoding: 'utf8', timeout: 1000 });
  if (result.error || result.status !== 0) return undefined;
  return result.stdout.trim().split('\n')[0];
}

// ── Namespaces ───────────────────────────────────────────────────────────────

/** The namespace types, by their `unshare` option name. */
export const NAMESPACE_TYPES = ['uts', 'pid', 'mount', 'net', 'ipc', 'user', 'cgroup'] as const;
export type NamespaceType = (typeof NAMESPACE_TYPES)[number];

/** The kernel's own short names: /proc/self/ns/<name> and /proc/sys/user/max_<name>_namespaces. */
export const KERNEL_NAMESPACE_NAMES: Record<NamespaceType, string> = {
  uts: 'uts',
  pid: 'pid',
  mount: 'mnt',
  net: 'net',
  ipc: 'ipc',
  user: 'user',
  cgroup: 'cgroup',
};

export interface ProbeResult {
  ok: boolean;
  /** What the probe printed on failure (first line of stderr), or why it could not run. */
  error?: string;
}

/**
 * Run `unshare <args>` and report whether it succeeded. As a non-root user,
 * `rootless` puts the command in a user namespace mapped to root first, the
 * way `npm run step` does.
 */
export function runUnshare(args: string[], options: { rootless: boolean; timeoutMs?: number }): Promise<ProbeResult> {
  const prefix = options.rootless ? ['--user', '--map-root-user'] : [];
  return new Promise((resolve) => {
    execFile('unshare', [...prefix, ...args], { timeout: options.timeoutMs ?? 1500, encoding: 'utf8' }, (error, _stdout, stderr) => {
      if (!error) return resolve({ ok: true });
      const firstLine = stderr.trim().split('\n')[0]?.replace(/^unshare: /, '');
      resolve({ ok: false, error: firstLine || (error.killed ? 'timed out' : error.message) });
    });
  });
}

/**
 * Can this user create a namespace of this type? Runs `unshare --<type> true`
 * in a child process (Node itself is multi-threaded, so it could not enter a
 * user namespace, and the other namespaces would change the caller itself).
 */
export function probeNamespace(type: NamespaceType, options: { rootless: boolean }): Promise<ProbeResult> {
  // A new PID namespace only applies to children: --fork makes `true` its PID 1.
  const args = type === 'pid' ? ['--pid', '--fork'] : [`--${type}`];
  return runUnshare([...args, 'true'], options);
}

/** Why the kernel would refuse a namespace type outright: compiled out, or limited to 0. undefined if neither. */
export function namespaceDisabledReason(type: NamespaceType): string | undefined {
  const name = KERNEL_NAMESPACE_NAMES[type];
  if (readIfExists(`/proc/sys/user/max_${name}_namespaces`)?.trim() === '0') {
    return `user.max_${name}_namespaces is 0: \`sudo sysctl -w user.max_${name}_namespaces=15000\``;
  }
  try {
    accessSync(`/proc/self/ns/${name}`);
  } catch {
    return `this kernel was built without ${name} namespaces (CONFIG_${name.toUpperCase()}_NS): use a distribution kernel or a VM`;
  }
  return undefined;
}

// ── Overlay filesystem ───────────────────────────────────────────────────────

/**
 * Why overlayfs cannot be mounted here, if that is known before trying: in a
 * user namespace (rootless), only since Linux 5.11. undefined otherwise.
 */
export function overlayBlocker(kernel: KernelVersion = kernelVersion(), rootless = !inInitialUserNamespace()): string | undefined {
  if (!rootless || kernelAtLeast(kernel, 5, 11)) return undefined;
  return `overlayfs can be mounted in a user namespace (rootless) only since Linux 5.11, and this kernel is ${kernel.release}`;
}

/**
 * Mount an overlay in a private mount namespace (it disappears when the probe
 * exits), on empty folders in a temporary directory that is removed afterwards.
 */
export async function probeOverlay(options: { rootless: boolean }): Promise<ProbeResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cfs-doctor-overlay-'));
  try {
    for (const name of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(dir, name));
    const data = `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work`;
    // unshare --mount makes every mount private: nothing propagates back to the host.
    return await runUnshare(['--mount', 'mount', '-t', 'overlay', 'overlay', '-o', data, `${dir}/merged`], options);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ── Mounts and cgroups ───────────────────────────────────────────────────────

export interface MountInfo {
  /** The folder inside the file system that is mounted (not "/" for bind mounts). */
  root: string;
  mountPoint: string;
  /** Per-mount options, e.g. ["rw", "nosuid"]. */
  options: string[];
  fstype: string;
  source: string;
  /** File-system options, e.g. ["rw", "memory"] for a cgroup v1 hierarchy. */
  superOptions: string[];
}

/** Mount points escape spaces and such as \040: undo it. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Parse /proc/self/mountinfo (see `man 5 proc`):
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   id parent dev root mountpoint options [optional fields...] - fstype source superoptions
 */
export function parseMountinfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (separator < 6) continue;
    mounts.push({
      root: unescapeMountField(fields[3] ?? ''),
      mountPoint: unescapeMountField(fields[4] ?? ''),
      options: (fields[5] ?? '').split(','),
      fstype: fields[separator + 1] ?? '',
      source: fields[separator + 2] ?? '',
      superOptions: (fields[separator + 3] ?? '').split(','),
    });
  }
  return mounts;
}

export function readMounts(): MountInfo[] {
  return parseMountinfo(readIfExists('/proc/self/mountinfo') ?? '');
}

/** One mounted cgroup hierarchy. */
export interface CgroupHierarchy {
  version: 1 | 2;
  mountPoint: string;
  /** The controllers it offers (v1: those it was mounted with; v2: its root's cgroup.controllers). */
  controllers: string[];
  /** The folder of this process's own cgroup in it, e.g. /sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope. */
  ownCgroup: string;
  /**
   * Where this user may create cgroups: the hierarchy's root for root; on
   * cgroup v2, for anyone else, their own cgroup when it is delegated to them
   * (see delegatedCgroup). undefined when neither (or the file system is read-only).
   */
  base?: string;
  /** Whether there is such a place: base !== undefined. */
  writable: boolean;
}

/**
 * The leaf cgroup that lib/container/cgroups.ts moves the processes of a
 * delegated cgroup into (cgroup v2 allows processes only in leaves, once a
 * cgroup's children have controllers). A process found there belongs to the
 * delegated cgroup above it.
 */
export const CGROUP_LEAF = 'containers-from-scratch.leaf';

/**
 * Whether this user may manage the cgroup `dir`: create cgroups in it, move
 * processes in and out (cgroup.procs), enable controllers for its children
 * (cgroup.subtree_control). This is what systemd hands over with Delegate=yes:
 * it chowns the folder and those files to the user.
 */
export function cgroupWritable(dir: string): boolean {
  return [dir, join(dir, 'cgroup.procs'), join(dir, 'cgroup.subtree_control')].every(writable);
}

/**
 * The cgroup v2 folder delegated to this user, from its own cgroup: the
 * cgroup itself, or its parent when this process is in our leaf (a runtime
 * moved it there). undefined when that cgroup is not theirs to manage.
 */
export function delegatedCgroup(ownCgroup: string): string | undefined {
  const cgroup = basename(ownCgroup) === CGROUP_LEAF ? dirname(ownCgroup) : ownCgroup;
  return cgroupWritable(cgroup) ? cgroup : undefined;
}

export interface Cgroups {
  /** "hybrid": v1 hierarchies for (some) controllers, plus a v2 hierarchy next to them. */
  layout: 'v2' | 'v1' | 'hybrid' | 'none';
  /** One line for people, e.g. "hybrid (v1 for pids/memory, v2 at /sys/fs/cgroup/unified)". */
  description: string;
  v2?: CgroupHierarchy;
  v1: CgroupHierarchy[];
  /** The hierarchy each controller is in (the kernel attaches a controller to at most one). */
  controllers: Record<string, CgroupHierarchy>;
}

/** The controllers step 5 sets limits with. */
export const LIMIT_CONTROLLERS = ['pids', 'memory'] as const;

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false; // not ours, or EROFS: mounted read-only
  }
}

/**
 * This process's cgroup per hierarchy, from /proc/self/cgroup:
 *   "4:memory:/user.slice" → memory → /user.slice;   "0::/init.scope" → "" (v2) → /init.scope
 */
function ownCgroupPaths(): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of (readIfExists('/proc/self/cgroup') ?? '').split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, controllers = '', path = '/'] = match;
    for (const controller of controllers.split(',')) paths.set(controller, path);
  }
  return paths;
}

/** A cgroup path as a folder under a mount of its hierarchy (whose mountinfo `root` may be a sub-folder). */
function cgroupFolder(mount: MountInfo, path: string): string {
  const relative = mount.root !== '/' && path.startsWith(mount.root) ? path.slice(mount.root.length) : path;
  return join(mount.mountPoint, relative).replace(/(.)\/$/, '$1');
}

/** Controllers the kernel has and has enabled, from /proc/cgroups. */
function kernelControllers(): Set<string> {
  const names = new Set<string>();
  for (const line of (readIfExists('/proc/cgroups') ?? '').split('\n')) {
    const [name, , , enabled] = line.split(/\s+/);
    if (name && !name.startsWith('#') && enabled === '1') names.add(name);
  }
  return names;
}

/**
 * Which cgroup hierarchies are mounted, which controllers each offers, and
 * whether this user can create cgroups in them. Reads /proc/self/mountinfo
 * (file systems of type cgroup2 and cgroup), /proc/self/cgroup and cgroup.controllers.
 */
export function detectCgroups(mounts: MountInfo[] = readMounts()): Cgroups {
  const own = ownCgroupPaths();
  const known = kernelControllers();
  const seen = new Set<string>(); // a hierarchy can be mounted more than once: keep its first mount
  const v1: CgroupHierarchy[] = [];
  let v2: CgroupHierarchy | undefined;

  for (const mount of mounts) {
    if (mount.fstype === 'cgroup2' && !v2) {
      const ownCgroup = cgroupFolder(mount, own.get('') ?? '/');
      const controllers = (readIfExists(join(mount.mountPoint, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean);
      // Root writes at the top; a user (or root in a user namespace: files of the real root are not its own) only where delegated.
      const base = cgroupWritable(mount.mountPoint) ? mount.mountPoint : delegatedCgroup(ownCgroup);
      v2 = { version: 2, mountPoint: mount.mountPoint, controllers, ownCgroup, base, writable: base !== undefined };
    } else if (mount.fstype === 'cgroup') {
      // Super options name the controllers: "rw,memory"; "name=systemd" is a hierarchy without any.
      const controllers = mount.superOptions.filter((option) => known.has(option));
      const key = controllers.join(',') || mount.superOptions.find((option) => option.startsWith('name=')) || mount.mountPoint;
      if (seen.has(key)) continue;
      seen.add(key);
      const ownCgroup = cgroupFolder(mount, own.get(controllers[0] ?? key) ?? '/');
      // cgroup v1 has no safe delegation to users: only root creates cgroups, at the top.
      const base = writable(mount.mountPoint) ? mount.mountPoint : undefined;
      v1.push({ version: 1, mountPoint: mount.mountPoint, controllers, ownCgroup, base, writable: base !== undefined });
    }
  }

  const controllers: Record<string, CgroupHierarchy> = {};
  for (const hierarchy of [...v1, ...(v2 ? [v2] : [])]) {
    for (const controller of hierarchy.controllers) controllers[controller] ??= hierarchy;
  }

  const v1WithControllers = v1.filter((hierarchy) => hierarchy.controllers.length > 0);
  let layout: Cgroups['layout'];
  let description: string;
  if (v2 && v1WithControllers.length > 0) {
    layout = 'hybrid';
    const limitsOnV1 = LIMIT_CONTROLLERS.filter((name) => controllers[name]?.version === 1);
    const onV1 = limitsOnV1.length > 0 ? limitsOnV1 : v1WithControllers.flatMap((hierarchy) => hierarchy.controllers);
    description = `hybrid (v1 for ${onV1.join('/')}, v2 at ${v2.mountPoint})`;
  } else if (v2) {
    layout = 'v2';
    description = `v2 at ${v2.mountPoint}`;
  } else if (v1WithControllers.length > 0) {
    layout = 'v1';
    const parents = [...new Set(v1WithControllers.map((hierarchy) => hierarchy.mountPoint.replace(/\/[^/]*$/, '')))];
    description = `v1 at ${parents.join(', ')}`;
  } else {
    layout = 'none';
    description = 'no cgroup file system is mounted';
  }
  return { layout, description, v2, v1, controllers };
}
