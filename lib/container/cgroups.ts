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
import chalk from 'chalk';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EXIT, WorkshopError, warn } from '../kernel/errors.js';
import { LIMIT_CONTROLLERS, detectCgroups, inInitialUserNamespace } from '../host/machine.js';
import { shown, sizeInBytes } from './options.js';
import { FOREIGN_LEFTOVER_AGE_MS, isStale, ownerOf } from './stale.js';
import { traceNote } from '../kernel/trace.js';

/** The folder, in each hierarchy, that holds the containers' cgroups. */
export const CGROUP_PARENT = 'containers-from-scratch';

/** Where the cgroups go: one v2 tree, or the v1 trees of the pids and memory controllers. */
export type CgroupLayout = { version: 2; mountPoint: string } | { version: 1; pids: string; memory: string };

/**
 * Pick the layout: cgroup v2 when its tree offers both the pids and the memory
 * controllers, else the v1 trees that have them. (A controller is attached to
 * one hierarchy at a time: on "hybrid" machines v2 is mounted too, but empty.)
 */
export function cgroupLayout(): CgroupLayout {
  const cgroups = detectCgroups();
  const pids = cgroups.controllers.pids;
  const memory = cgroups.controllers.memory;
  if (pids?.version === 2 && memory?.version === 2) return { version: 2, mountPoint: pids.mountPoint };
  if (pids?.version === 1 && memory?.version === 1) return { version: 1, pids: pids.mountPoint, memory: memory.mountPoint };
  const missing = LIMIT_CONTROLLERS.filter((name) => !cgroups.controllers[name]);
  throw new WorkshopError(
    missing.length > 0
      ? `no mounted cgroup hierarchy offers the ${missing.join(' and ')} controller${missing.length > 1 ? 's' : ''} (cgroups: ${cgroups.description})`
      : `the pids and memory controllers are split between cgroup v1 and v2 (${cgroups.description}); this runtime needs both in the same version`,
    'Mount cgroup v2 (`sudo mount -t cgroup2 none /sys/fs/cgroup`) or boot with `systemd.unified_cgroup_hierarchy=1`; ' +
      'inside Docker, start the container with --privileged --cgroupns=host. `npm run doctor` shows what this machine has.',
  );
}

/** The folders that make up one container's cgroup: one (v2), or one per controller (v1). */
function cgroupFolders(layout: CgroupLayout, name: string): string[] {
  return layout.version === 2
    ? [join(layout.mountPoint, CGROUP_PARENT, name)]
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

function mkdirCgroup(path: string): void {
  traceNote(`mkdir ${path}`);
  try {
    mkdirSync(join(path, '..'), { recursive: true }); // containers-from-scratch/ (v1: created on first use)
    mkdirSync(path);
  } catch (error) {
    throw cgroupError(`creating the cgroup ${path}`, error);
  }
}

/** What a failed cgroup operation most likely means, and what to do. */
function cgroupError(what: string, error: unknown): WorkshopError {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const message = `${what} failed: ${code || (error as Error).message}`;
  if ((code === 'EACCES' || code === 'EPERM') && !inInitialUserNamespace()) {
    return new WorkshopError(
      `${message}: cgroups need root`,
      'You are running rootless (in a user namespace): the cgroup file system belongs to the real root, and this ' +
        'runtime does not use systemd cgroup delegation. Run steps 5 and later as root: `sudo npm run step N` ' +
        '(with nvm: `sudo env "PATH=$PATH" npm run step N`). ' +
        'Steps 1–4 work without root.',
    );
  }
  if (code === 'EACCES' || code === 'EPERM') return new WorkshopError(message, 'Creating cgroups needs root: `sudo npm run step N`.');
  if (code === 'EROFS') {
    return new WorkshopError(`${message}: the cgroup file system is mounted read-only`, 'Inside a container? Start it with --privileged (a writable /sys/fs/cgroup), or use a Linux VM.');
  }
  if (code === 'EBUSY') {
    return new WorkshopError(message, 'cgroup v2 only enables controllers for a cgroup that has no processes of its own ("no internal processes"): inside a container, start it with --cgroupns=host.');
  }
  return new WorkshopError(message, '`npm run doctor` checks what this machine offers for cgroups.');
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
   * Remove the cgroup once it is empty. After the container's PID 1 exits, the
   * kernel kills the rest of its PID namespace, which takes a moment: rmdir
   * fails with EBUSY until then, so retry; past `patienceMs`, kill what is left.
   * Never throws: a cgroup that cannot be removed is reported (unless `quiet`)
   * and left for removeStaleCgroups.
   */
  async remove(patienceMs = 1000, quiet = false): Promise<void> {
    // Last chance to say why a command died with exit status 137 (SIGKILL).
    const kills = quiet ? 0 : this.oomKills();
    if (kills > 0) {
      writeSync(2, chalk.yellow(`● out of memory: the kernel's OOM killer ended ${kills} process${kills > 1 ? 'es' : ''} of the container (its memory limit is ${this.memoryLimit()}).\n`));
    }
    const start = Date.now();
    let remaining = [...this.folders];
    for (;;) {
      const failures = remaining.map((folder) => [folder, rmdirCgroup(folder)] as const).filter(([, outcome]) => outcome !== 'gone');
      remaining = failures.map(([folder]) => folder);
      if (remaining.length === 0) return;
      const waited = Date.now() - start;
      const busy = failures.every(([, outcome]) => outcome === 'EBUSY');
      if (!busy || waited > patienceMs * 3) {
        if (!quiet) warn(`could not remove the cgroup ${failures.map(([folder, outcome]) => `${folder} (${outcome})`).join(', ')}`);
        return;
      }
      if (waited > patienceMs) for (const pid of this.processes()) killQuietly(pid);
      await sleep(10);
    }
  }
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
 * cgroup.subtree_control: enable pids and memory in the root (if needed) and
 * in our containers-from-scratch folder.
 */
export function createCgroup(name: string): Cgroup {
  const cgroup = new Cgroup(cgroupLayout(), name);
  if (cgroup.layout.version === 2) enableControllers(cgroup.layout.mountPoint);
  const created: string[] = [];
  try {
    for (const folder of cgroup.folders) {
      if (existsSync(folder)) {
        // A container with this --id is running: two containers must never share (and remove) one cgroup.
        if (cgroup.processes().length > 0) {
          throw new WorkshopError(
            `a container with the id "${name}" is already running (its cgroup ${folder} has processes)`,
            'Give this one another --id, or leave --id out: each run then gets a unique one.',
          );
        }
        continue; // an empty leftover of a killed run with this --id: reuse it
      }
      mkdirCgroup(folder);
      created.push(folder);
    }
  } catch (error) {
    for (const folder of created.reverse()) rmdirCgroup(folder); // all or nothing
    throw error;
  }
  return cgroup;
}

/** The cgroup of container `name`, created by the parent (child side). */
export function existingCgroup(name: string): Cgroup {
  return new Cgroup(cgroupLayout(), name);
}

/** v2: make pids and memory available to the cgroups under <mountPoint>/containers-from-scratch. */
export function enableControllers(mountPoint: string, controllers: readonly string[] = LIMIT_CONTROLLERS): void {
  const parent = join(mountPoint, CGROUP_PARENT);
  for (const folder of [mountPoint, parent]) {
    if (!existsSync(folder)) mkdirCgroup(folder);
    const enabled = readFileSync(join(folder, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/);
    const missing = controllers.filter((controller) => !enabled.includes(controller));
    if (missing.length > 0) writeCgroupFile(join(folder, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
  }
}

/**
 * Remove the cgroups of runs that were killed before they could clean up: their
 * runtime is gone (cfs-<pid>-…), or the checker that started them (cfs-check-<pid>-…).
 * One made in another PID namespace (whose pid cannot be checked from here) goes
 * only once it has been empty and untouched for FOREIGN_LEFTOVER_AGE_MS.
 */
export async function removeStaleCgroups(layout: CgroupLayout = cgroupLayout()): Promise<void> {
  const parents = layout.version === 2 ? [layout.mountPoint] : [layout.pids, layout.memory];
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
      await cgroup.remove(100, true); // quietly: it may be another user's
    } else if (ownerOf(name) === 'another' && cgroup.processes().length === 0 && cgroup.folders.every(untouchedForLong)) {
      traceNote(`stale cgroup ${name}: made in another PID namespace, empty and untouched for long`);
      await cgroup.remove(0, true);
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
