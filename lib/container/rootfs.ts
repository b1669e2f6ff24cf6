// The container's root filesystem: is this folder one a container can start in?
//
// The runtime only checks; building rootfs/ is rootfs-builder's job, which
// `npm run step` and `npm run check` run the first time it is missing.
import { lstatSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { WorkshopError } from '../kernel/errors.js';
import { DEFAULT_ROOTFS } from '../paths.js';

/**
 * Make sure `dir` is a usable root filesystem before the child needs it:
 * a clear explanation (and exit 125) instead of a failing mount later.
 */
export function ensureRootfs(dir: string): void {
  const check = checkRootfs(dir);
  if (!check.ok) throw new WorkshopError(`the root filesystem ${dir} is not usable: ${check.problem}`, check.fix);
}

/** lstat, or undefined when the path (or one of its folders) does not exist. */
export function lstatIfExists(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if (['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw error;
  }
}

export type RootfsCheck = { ok: true } | { ok: false; problem: string; fix: string };

/** The command a participant types to run rootfs-builder/cli.ts on `dir` (see "rootfs" in package.json). */
export function rootfsCommand(dir: string, ...flags: string[]): string {
  const args = resolve(dir) === DEFAULT_ROOTFS ? flags : ['--target', dir, ...flags];
  return args.length === 0 ? 'npm run rootfs' : `npm run rootfs -- ${args.join(' ')}`;
}

/** The symlinks followed in one path before giving up, as Linux does (ELOOP). */
const MAX_SYMLINKS = 40;

/** The folders the runtime mounts onto: /proc (step 4), /dev (step 4), /sys (step 7). */
const MOUNT_POINTS = ['proc', 'dev', 'sys'];

/** Checks that `dir` has an executable /bin/sh and the /proc, /dev and /sys folders the runtime mounts onto. */
export function checkRootfs(dir: string): RootfsCheck {
  try {
    return checkReadableRootfs(dir);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'EACCES' ? 'this user may not read it' : String(error);
    return { ok: false, problem: reason, fix: 'Check the permissions of the folder and its parents (ls -ld), or choose another --rootfs.' };
  }
}

function checkReadableRootfs(dir: string): RootfsCheck {
  const rebuild = `Rebuild it: ${rootfsCommand(dir, '--force')}`;
  const stat = statSync(dir, { throwIfNoEntry: false });
  if (!stat) return { ok: false, problem: 'it does not exist', fix: `Build it: ${rootfsCommand(dir)}` };
  if (!stat.isDirectory()) return { ok: false, problem: 'it is a file, not a folder', fix: 'Point to a folder.' };

  const shell = resolveInRootfs(dir, '/bin/sh');
  if (!shell) return { ok: false, problem: 'it has no /bin/sh', fix: rebuild };
  const shellStat = statSync(shell);
  if (!shellStat.isFile() || (shellStat.mode & 0o111) === 0) {
    return { ok: false, problem: '/bin/sh is not an executable file', fix: rebuild };
  }

  // A real folder each, not a symlink: mounting onto a symlink would follow it on the host.
  const missing = MOUNT_POINTS.filter((name) => !lstatIfExists(join(dir, name))?.isDirectory());
  if (missing.length > 0) {
    const folders = missing.map((name) => `/${name}`).join(', ');
    return {
      ok: false,
      problem: `it has no ${folders} folder${missing.length > 1 ? 's' : ''} to mount onto (the runtime mounts /proc, /dev and /sys)`,
      fix: `mkdir ${missing.map((name) => join(dir, name)).join(' ')}, or: ${rebuild}`,
    };
  }
  return { ok: true };
}

/**
 * Where `path` leads inside the root filesystem `root`, as a host path, following
 * symlinks the way the kernel will once `root` is the container's `/`: an
 * absolute target starts again from `root` (not from the host's `/`), and `..`
 * never climbs above it. undefined if something on the way is missing.
 */
export function resolveInRootfs(root: string, path: string): string | undefined {
  let pending = path.split('/'); // names still to walk
  let walked: string[] = []; // names walked so far: real folders (or the final file)
  let symlinks = 0;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === '' || name === '.') continue;
    if (name === '..') {
      walked.pop();
      continue;
    }
    const hostPath = join(root, ...walked, name);
    const stat = lstatIfExists(hostPath);
    if (!stat) return undefined;
    if (stat.isSymbolicLink()) {
      if (++symlinks > MAX_SYMLINKS) return undefined;
      const target = readlinkSync(hostPath);
      if (target.startsWith('/')) walked = [];
      pending = [...target.split('/'), ...pending];
    } else {
      walked.push(name);
    }
  }
  return join(root, ...walked);
}
