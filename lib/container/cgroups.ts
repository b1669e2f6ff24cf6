// cgroups (control groups): what a container may use.
//
// A cgroup is a folder in the cgroup file system. The kernel counts every
// process listed in its `cgroup.procs` against the limits written in its other
// files, and children a process forks stay in its cgroup. Machines have one
// of two layouts:
//
//   cgroup v2 (most machines today): a single tree, every controller in it
//     /sys/fs/cgroup/containers-from-scratch/<id>/
//         pids.max  memory.max  memory.swap.max  cgroup.procs
//
//   cgroup v1 (older machines): one tree per controller
//     /sys/fs/cgroup/pids/containers-from-scratch/<id>/    pids.max  cgroup.procs
//     /sys/fs/cgroup/memory/containers-from-scratch/<id>/  memory.limit_in_bytes  memory.memsw.limit_in_bytes  cgroup.procs
//
// Each container gets a cgroup named after its id, under a folder of our own;
// the next run removes the cgroups of runs that were killed (lib/container/stale.ts).
//
// Without root (cgroup v2 only), the tree is root's, except a cgroup systemd
// delegated to the user (Delegate=yes; see lib/host/privileges.ts). Ours goes
// below it. cgroup v2 lets a cgroup hold processes, or children with
// controllers, not both ("no internal processes"; only the tree's root is
// exempt): so the processes already in the delegated cgroup — this runtime,
// the shell that started it — first move into a leaf of their own.
//
//     <delegated cgroup>/                 cgroup.subtree_control: +pids +memory
//         containers-from-scratch.leaf/   the processes that were in it
//         containers-from-scratch/<id>/   the container: pids.max  memory.max  …
//
// After the last container, it is put back as it was: the processes move back
// up, the controllers are switched off, the two folders removed.
import chalk from 'chalk';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EXIT, WorkshopError, warn } from '../kernel/errors.js';
import { CGROUP_LEAF, LIMIT_CONTROLLERS, detectCgroups, inInitialUserNamespace } from '../host/machine.js';
import { cgroupDelegation, type CgroupDelegation } from '../host/privileges.js';
import { shown, sizeInBytes } from './options.js';
import { FOREIGN_LEFTOVER_AGE_MS, isStale, ownerOf } from './stale.js';
import { traceNote, traceShortName } from '../kernel/trace.js';

/** The folder, in each hierarchy, that holds the containers' cgroups. */
export const CGROUP_PARENT = 'containers-from-scratch';

/**
 * Where the cgroups go: one v2 tree, or the v1 trees of the pids and memory
 * controllers. On v2, `base` is the cgroup that holds our folder: the tree's
 * root (when absent), or a cgroup delegated to this user.
 */
export type CgroupLayout = { version: 2; mountPoint: string; base?: string } | { version: 1; pids: string; memory: string };

/** True when this process is root on the host (not only inside a user namespace). */
function hostRoot(): boolean {
  return process.getuid?.() === 0 && inInitialUserNamespace();
}

/**
 * Pick the layout: cgroup v2 when its tree offers both the pids and the memory
 * controllers, else the v1 trees that have them. (A controller is attached to
 * one hierarchy at a time: on "hybrid" machines v2 is mounted too, but empty.)
 * Without root, only a cgroup v2 subtree delegated to this user will do.
 */
export function cgroupLayout(): CgroupLayout {
  const cgroups = detectCgroups();
  const pids = cgroups.controllers.pids;
  const memory = cgroups.controllers.memory;
  if (pids?.version === 2 && memory?.version === 2) {
    const mountPoint = pids.mountPoint;
    if (hostRoot() || pids.base === mountPoint) return { version: 2, mountPoint };
    const delegation = cgroupDelegation(cgroups);
    if (delegation.kind === 'ready') return { version: 2, mountPoint, base: delegation.base };
    throw noCgroupForYou(delegation);
  }
  if (pids?.version === 1 && memory?.version === 1) {
    const delegation = hostRoot() ? undefined : cgroupDelegation(cgroups);
    if (delegation && delegation.kind !== 'ready') throw noCgroupForYou(delegation);
    return { version: 1, pids: pids.mountPoint, memory: memory.mountPoint };
  }
  const missing = LIMIT_CONTROLLERS.filter((name) => !cgroups.controllers[name]);
  throw new WorkshopError(
    missing.length > 0
      ? `no mounted cgroup hierarchy offers the ${missing.join(' and ')} controller${missing.length > 1 ? 's' : ''} (cgroups: ${cgroups.description})`
      : `the pids and memory controllers are split between cgroup v1 and v2 (${cgroups.description}); this runtime needs both in the same version`,
    'Mount cgroup v2 (`sudo mount -t cgroup2 none /sys/fs/cgroup`) or boot with `systemd.unified_cgroup_hierarchy=1`; ' +
      'inside Docker, start the container with --privileged --cgroupns=host. `npm run doctor` shows what this machine has.',
  );
}

/** Without root and without a delegated cgroup: why, and the ways out. */
function noCgroupForYou(delegation: Exclude<CgroupDelegation, { kind: 'ready' }>): WorkshopError {
  if (delegation.kind === 'systemd') {
    // The runtime was started directly: `npm run step` would have entered a delegated scope first.
    return new WorkshopError(
      `cgroups need root, or a cgroup delegated to you: your cgroup (${delegation.own}) belongs to root`,
      'Start it with `npm run step N`, which asks your systemd for a delegated cgroup first, or yourself: ' +
        '`systemd-run --user --scope -p Delegate=yes -- <command>`; or run as root: `sudo npm run step N`.',
    );
  }
  return new WorkshopError(`cgroups need root, or a cgroup delegated to you: ${delegation.problem}`, delegation.fix);
}

/** The cgroup our folder goes in (v2): the tree's root, or a delegated cgroup. */
function baseOf(layout: { mountPoint: string; base?: string }): string {
  return layout.base ?? layout.mountPoint;
}

/** The folders that make up one container's cgroup: one (v2), or one per controller (v1). */
function cgroupFolders(layout: CgroupLayout, name: string): string[] {
  return layout.version === 2
    ? [join(baseOf(layout), CGROUP_PARENT, name)]
    : [join(layout.pids, CGROUP_PARENT, name), join(layout.memory, CGROUP_PARENT, name)];
}

/**
 * "64", "512K", "256M", "1G", "1T" (powers of 1024) → bytes. The runtime's
 * --memory was already checked (lib/container/options.ts): this only converts.
 */
export function parseSize(text: string): number {
  const bytes = sizeInBytes(text);
  if (bytes === undefined) {
    throw new WorkshopError(
      `--memory must be a size like 64M, 512K or 1G, not ${shown(text)}`,
      'Sizes count bytes, with an optional K, M, G or T suffix (powers of 1024).',
      EXIT.usage,
    );
  }
  return bytes;
}

/** Write one cgroup file, traced; a failure becomes an explanation. */
function writeCgroupFile(path: string, value: string): void {
  traceNote(`write ${path} ← "${value}"`);
  try {
    writeFileSync(path, value);
  } catch (error) {
    throw cgroupError(`writing "${value}" to ${path}`, error);
  }
}

/** mkdir a cgroup (and its parents, unless `parents` is false: then ENOENT when the parent is gone). One that exists is fine. */
function mkdirCgroup(path: string, parents = true): void {
  traceNote(`mkdir ${path}`);
  try {
    if (parents) mkdirSync(join(path, '..'), { recursive: true }); // containers-from-scratch/ (v1: created on first use)
    mkdirSync(path);
  } catch (error) {
    if (errorCode(error) !== 'EEXIST') throw cgroupError(`creating the cgroup ${path}`, error);
  }
}

/** The errno name of a failed cgroup operation (cgroupError keeps it). */
function errorCode(error: unknown): string {
  return (error as { code?: string }).code ?? '';
}

/** What a failed cgroup operation most likely means, and what to do. */
function cgroupError(what: string, error: unknown): WorkshopError {
  const code = errorCode(error);
  const message = `${what} failed: ${code || (error as Error).message}`;
  const explained = (() => {
    if ((code === 'EACCES' || code === 'EPERM') && !inInitialUserNamespace()) {
      return new WorkshopError(
        `${message}: cgroups need root, or a cgroup delegated to you`,
        'You are running rootless (in a user namespace), and this cgroup is not yours. ' +
          'Get a cgroup of your own from systemd: `systemd-run --user --scope -p Delegate=yes -- npm run step 5`, ' +
          'or run as root: `sudo npm run step N` (with nvm: `sudo env "PATH=$PATH" npm run step N`). ' +
          'Steps 1–4 work without root; `npm run doctor` says what this machine offers.',
      );
    }
    if (code === 'EACCES' || code === 'EPERM') return new WorkshopError(message, 'Creating cgroups needs root: `sudo npm run step N`.');
    if (code === 'ENOENT') {
      return new WorkshopError(
        `${message}: this cgroup does not exist`,
        "The parent creates the container's cgroup (createCgroup(container.id), with its limits) before spawnChild(); the child only joins it, with existingCgroup(container.id).join().",
      );
    }
    if (code === 'EROFS') {
      return new WorkshopError(`${message}: the cgroup file system is mounted read-only`, 'Inside a container? Start it with --privileged (a writable /sys/fs/cgroup), or use a Linux VM.');
    }
    if (code === 'EBUSY') {
      return new WorkshopError(
        message,
        'cgroup v2 only enables controllers for a cgroup that has no processes of its own ("no internal processes"), and processes ' +
          'kept arriving in it while the runtime moved them to a leaf. Inside a container, start it with --cgroupns=host.',
      );
    }
    return new WorkshopError(message, '`npm run doctor` checks what this machine offers for cgroups.');
  })();
  return Object.assign(explained, { code });
}

/** The pids listed in a cgroup.procs file (as this process sees them); none when the cgroup is gone. */
function readProcs(folder: string): number[] {
  try {
    return readFileSync(join(folder, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Does the cgroup still hold processes? v2 says so in cgroup.events ("populated 1",
 * counting its descendants); v1 has only the list in cgroup.procs.
 */
function populated(folder: string): boolean {
  try {
    return /^populated 1$/m.test(readFileSync(join(folder, 'cgroup.events'), 'utf8'));
  } catch {
    return readProcs(folder).length > 0;
  }
}

/** True for the root of the whole cgroup v2 tree, the one cgroup exempt from "no internal processes" (it has no cgroup.events). */
function isTreeRoot(folder: string): boolean {
  return !existsSync(join(folder, 'cgroup.events'));
}

/**
 * Move every process of cgroup `from` into cgroup `to` (creating it), until
 * `from` is empty: a process may fork while we move. One that exits meanwhile
 * is skipped (ESRCH).
 */
function moveProcesses(from: string, to: string): void {
  for (let pass = 0; pass < 100; pass++) {
    const pids = readProcs(from);
    if (pids.length === 0) return;
    if (!existsSync(to)) mkdirCgroup(to);
    for (const pid of pids) {
      try {
        writeCgroupFile(join(to, 'cgroup.procs'), String(pid));
      } catch (error) {
        if (errorCode(error) !== 'ESRCH') throw error;
      }
    }
  }
}

/** Switch controllers on (`+`) or off (`-`) for a cgroup's children, those not already so. */
function setSubtreeControl(folder: string, sign: '+' | '-', controllers: readonly string[]): void {
  const file = join(folder, 'cgroup.subtree_control');
  const enabled = readFileSync(file, 'utf8').trim().split(/\s+/);
  const change = controllers.filter((controller) => enabled.includes(controller) === (sign === '-'));
  if (change.length > 0) writeCgroupFile(file, change.map((controller) => `${sign}${controller}`).join(' '));
}

/** One container's cgroup: its folder(s), and what can be done with them. */
export class Cgroup {
  /** Every folder of this cgroup: one on v2, one per controller on v1. */
  readonly folders: string[];
  private readonly pidsFolder: string;
  private readonly memoryFolder: string;

  constructor(
    readonly layout: CgroupLayout,
    readonly name: string,
  ) {
    this.folders = cgroupFolders(layout, name);
    this.pidsFolder = this.folders[0]!;
    this.memoryFolder = this.folders[this.folders.length - 1]!;
  }

  /** The cgroup's path in its hierarchy, as /proc/<pid>/cgroup shows it: /containers-from-scratch/<id>, below the delegated cgroup if any. */
  get path(): string {
    return this.layout.version === 2 ? this.folders[0]!.slice(this.layout.mountPoint.length) : `/${CGROUP_PARENT}/${this.name}`;
  }

  /** Most processes at once (threads count too): a fork bomb stops there. */
  limitPids(max: number): void {
    writeCgroupFile(join(this.pidsFolder, 'pids.max'), String(max));
  }

  /** Most memory, in bytes, with no swap on top: past the limit, the kernel's OOM killer ends a process with SIGKILL. */
  limitMemory(bytes: number): void {
    const limit = String(bytes);
    const file = (name: string): string => join(this.memoryFolder, name);
    if (this.layout.version === 2) {
      writeCgroupFile(file('memory.max'), limit);
      if (existsSync(file('memory.swap.max'))) writeCgroupFile(file('memory.swap.max'), '0'); // only there when the kernel accounts swap
    } else {
      writeCgroupFile(file('memory.limit_in_bytes'), limit);
      // memory + swap: the same limit as memory alone means no swap (only there when the kernel accounts swap).
      if (existsSync(file('memory.memsw.limit_in_bytes'))) writeCgroupFile(file('memory.memsw.limit_in_bytes'), limit);
    }
  }

  /**
   * Move a process into the cgroup: "0" means the process that writes. (In a
   * PID namespace, our own pid would also do: the kernel reads the number in
   * the writer's namespace.) cgroup.procs moves every thread of the process;
   * v1's `tasks` file would move only one.
   */
  join(pid = 0): void {
    for (const folder of this.folders) writeCgroupFile(join(folder, 'cgroup.procs'), String(pid));
  }

  /** The memory limit, for people: "32M". */
  private memoryLimit(): string {
    const file = join(this.memoryFolder, this.layout.version === 2 ? 'memory.max' : 'memory.limit_in_bytes');
    try {
      const text = readFileSync(file, 'utf8').trim();
      const bytes = Number(text);
      if (!Number.isSafeInteger(bytes)) return text; // v2's "max": no limit
      return bytes % 1024 ** 2 === 0 ? `${bytes / 1024 ** 2}M` : `${bytes} bytes`;
    } catch {
      return 'unknown';
    }
  }

  /** The pids still in the cgroup, as this process sees them. */
  processes(): number[] {
    const pids = new Set<number>();
    for (const folder of this.folders) {
      try {
        for (const line of readFileSync(join(folder, 'cgroup.procs'), 'utf8').split('\n')) if (line) pids.add(Number(line));
      } catch {
        // already removed
      }
    }
    return [...pids];
  }

  /** How many processes of this cgroup the OOM killer ended ("oom_kill N" in memory.events on v2, memory.oom_control on v1). */
  oomKills(): number {
    const file = join(this.memoryFolder, this.layout.version === 2 ? 'memory.events' : 'memory.oom_control');
    try {
      return Number(/^oom_kill (\d+)$/m.exec(readFileSync(file, 'utf8'))?.[1] ?? 0);
    } catch {
      return 0;
    }
  }

  /**
   * Remove the cgroup once it is empty, then (without root) give the delegated
   * cgroup back as it was if this was the last container. After the
   * container's PID 1 exits, the kernel kills the rest of its PID namespace:
   * rmdir fails with EBUSY until those processes are gone. What is still there
   * after `patienceMs` is killed (SIGKILL), and waited for: killed processes
   * take a moment to exit, longer on a slow or busy machine.
   * Never throws: a cgroup that cannot be removed is reported (unless `quiet`)
   * and left for removeStaleCgroups.
   */
  async remove(patienceMs = 1000, quiet = false): Promise<void> {
    // Last chance to say why a command died with exit status 137 (SIGKILL).
    const kills = quiet ? 0 : this.oomKills();
    if (kills > 0) {
      writeSync(2, chalk.yellow(`● out of memory: the kernel's OOM killer ended ${kills} process${kills > 1 ? 'es' : ''} of the container (its memory limit is ${this.memoryLimit()}).\n`));
    }
    if (await this.removeFolders(patienceMs, quiet)) releaseDelegatedCgroup(this.layout);
  }

  /** rmdir every folder of this cgroup, emptying it first (see remove); true when all are gone. */
  async removeFolders(patienceMs: number, quiet: boolean): Promise<boolean> {
    for (const folder of this.folders) {
      let outcome = rmdirCgroup(folder);
      if (outcome === 'EBUSY') {
        if (!(await waitUntilEmpty(folder, patienceMs))) {
          traceNote(`kill what is left in ${folder}`);
          this.killAll(folder);
          await waitUntilEmpty(folder, KILLED_EXIT_MS, () => this.killAll(folder));
        }
        outcome = rmdirCgroup(folder);
      }
      if (outcome !== 'gone') {
        if (!quiet) warn(`could not remove the cgroup ${folder} (${outcome})`);
        return false;
      }
    }
    return true;
  }

  /** SIGKILL every process of the cgroup: all at once through v2's cgroup.kill (Linux 5.14+), which also catches those forked meanwhile; else one by one. */
  private killAll(folder: string): void {
    try {
      writeFileSync(join(folder, 'cgroup.kill'), '1');
      return;
    } catch {
      // v1, an older kernel, or already removed
    }
    for (const pid of readProcs(folder)) killQuietly(pid);
  }
}

/**
 * How long processes killed with SIGKILL may take to be gone. They cannot
 * refuse, and usually go within milliseconds; this only bounds the wait for
 * one stuck in the kernel (e.g. on a dead network file system).
 */
const KILLED_EXIT_MS = 15_000;

/**
 * Wait until the cgroup has no process left: true when it has none (or is
 * gone), false if there still are some after `timeoutMs`. `meanwhile` runs on
 * every look (e.g. to kill processes that were forked in between).
 */
async function waitUntilEmpty(folder: string, timeoutMs: number, meanwhile?: () => void): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (populated(folder)) {
    if (Date.now() >= deadline) return false;
    meanwhile?.();
    await sleep(10);
  }
  return true;
}

/** rmdir a cgroup: "gone" (also when it was never there), or the error code (EBUSY: processes are still in it). */
function rmdirCgroup(folder: string): string {
  try {
    rmdirSync(folder);
    traceNote(`rmdir ${folder}`);
    return 'gone';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    return code === 'ENOENT' ? 'gone' : code;
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Create the cgroup of container `name` (parent side, before the child exists).
 * On cgroup v2, a cgroup only offers the controllers its parent enables in
 * cgroup.subtree_control: enable pids and memory in the base (if needed) and
 * in our containers-from-scratch folder, after moving the base's own
 * processes into a leaf when the base is not the tree's root.
 */
export function createCgroup(name: string, layout: CgroupLayout = cgroupLayout()): Cgroup {
  const cgroup = new Cgroup(layout, name);
  // --trace=compact calls the folders cgroup (v2), or cgroup-pids and cgroup-memory (v1: <mount>/<controller>/…/name).
  for (const folder of cgroup.folders) traceShortName(folder, cgroup.folders.length === 1 ? 'cgroup' : `cgroup-${basename(dirname(dirname(folder)))}`);
  // A container with this --id is running: two containers must never share (and remove) one cgroup.
  // (An empty leftover of a killed run with this --id is reused.)
  if (cgroup.folders.some((folder) => existsSync(folder)) && cgroup.processes().length > 0) {
    throw new WorkshopError(
      `a container with the id "${name}" is already running (its cgroup ${cgroup.folders.find((folder) => existsSync(folder))} has processes)`,
      'Give this one another --id, or leave --id out: each run then gets a unique one.',
    );
  }
  if (layout.version === 1) {
    const created: string[] = [];
    try {
      for (const folder of cgroup.folders.filter((folder) => !existsSync(folder))) {
        mkdirCgroup(folder);
        created.push(folder);
      }
    } catch (error) {
      for (const folder of created.reverse()) rmdirCgroup(folder); // all or nothing
      throw error;
    }
    return cgroup;
  }
  // Another runtime of this user may be giving the same delegated cgroup back
  // right now (releaseDelegatedCgroup): what it undoes makes a step here fail
  // with EBUSY or ENOENT. Start over then; once our folder exists, it stops.
  for (let attempt = 1; ; attempt++) {
    try {
      enableControllers(baseOf(layout));
      mkdirCgroup(cgroup.folders[0]!, false); // not its parent again: without the controllers enabled there, it would have no limits
      return cgroup;
    } catch (error) {
      if (attempt >= 20 || !['EBUSY', 'ENOENT'].includes(errorCode(error))) throw error;
      traceNote(`${errorCode(error)}: another runtime is changing ${baseOf(layout)}; again`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, attempt); // a pause of `attempt` ms, for the other one to finish
    }
  }
}

/** The cgroup of container `name`, created by the parent (child side). */
export function existingCgroup(name: string): Cgroup {
  return new Cgroup(cgroupLayout(), name);
}

/**
 * v2: make pids and memory available to the cgroups under <base>/containers-from-scratch.
 * A base other than the tree's root must first hand its processes to a leaf.
 */
export function enableControllers(base: string, controllers: readonly string[] = LIMIT_CONTROLLERS): void {
  if (!isTreeRoot(base)) moveProcesses(base, join(base, CGROUP_LEAF));
  const parent = join(base, CGROUP_PARENT);
  for (const folder of [base, parent]) {
    if (!existsSync(folder)) mkdirCgroup(folder);
    setSubtreeControl(folder, '+', controllers);
  }
}

/**
 * After the last container of a base other than the tree's root (a delegated
 * cgroup): put it back as it was before enableControllers. Our folder goes;
 * if we made a leaf, the controllers go off and its processes move back up.
 * While other containers run, our folder cannot be removed (EBUSY) and
 * nothing changes: the last runtime does it. Never throws.
 */
function releaseDelegatedCgroup(layout: CgroupLayout): void {
  if (layout.version !== 2) return;
  const base = baseOf(layout);
  if (isTreeRoot(base)) return; // root keeps /sys/fs/cgroup/containers-from-scratch for the next run
  if (rmdirCgroup(join(base, CGROUP_PARENT)) !== 'gone') return;
  const leaf = join(base, CGROUP_LEAF);
  if (!existsSync(leaf)) return;
  try {
    setSubtreeControl(base, '-', LIMIT_CONTROLLERS);
    moveProcesses(leaf, base);
    if (rmdirCgroup(leaf) !== 'gone') traceNote(`${leaf} stays: processes arrived in it meanwhile`);
  } catch (error) {
    // EBUSY: another runtime has just set it up again, and keeps it.
    traceNote(`${base} stays as it is: ${errorCode(error) || String(error)}`);
  }
}

/**
 * Remove the cgroups of runs that were killed before they could clean up: their
 * runtime is gone (cfs-<pid>-…), or the checker that started them (cfs-check-<pid>-…).
 * One made in another PID namespace (whose pid cannot be checked from here) goes
 * only once it has been empty and untouched for FOREIGN_LEFTOVER_AGE_MS.
 */
export async function removeStaleCgroups(layout: CgroupLayout = cgroupLayout()): Promise<void> {
  const parents = layout.version === 2 ? [baseOf(layout)] : [layout.pids, layout.memory];
  const names = new Set<string>();
  for (const parent of parents) {
    try {
      for (const name of readdirSync(join(parent, CGROUP_PARENT))) names.add(name);
    } catch {
      // no containers-from-scratch folder yet
    }
  }
  for (const name of names) {
    const cgroup = new Cgroup(layout, name);
    if (isStale(name)) {
      traceNote(`stale cgroup ${name}: the process that made it is gone`);
      await cgroup.removeFolders(100, true); // quietly: it may be another user's
    } else if (ownerOf(name) === 'another' && cgroup.processes().length === 0 && cgroup.folders.every(untouchedForLong)) {
      traceNote(`stale cgroup ${name}: made in another PID namespace, empty and untouched for long`);
      await cgroup.removeFolders(0, true);
    }
  }
}

/** A folder (that exists) last changed more than FOREIGN_LEFTOVER_AGE_MS ago. */
export function untouchedForLong(folder: string): boolean {
  try {
    return Date.now() - statSync(folder).mtimeMs > FOREIGN_LEFTOVER_AGE_MS;
  } catch {
    return true; // gone already
  }
}
