// Importing a root filesystem from an archive: `docker export` output or an
// Alpine minirootfs (.tar, .tar.gz, .tgz), streamed (any size, little memory).
//
// Everything that can be checked is checked before a byte is read: the
// archive exists, the target is free (or --force, and a rootfs), and it is
// not the host's root nor a folder holding the repository. The archive is
// unpacked into a private folder beside the target (staging.ts), checked to be
// a usable rootfs, and only then put in place: a broken or malicious archive
// leaves the previous rootfs untouched.
//
// Faithful where it is safe:
//   - as root, files keep the archive's numeric owners and groups, modes,
//     times and hard links (as a normal user, they all become yours: said once);
//   - setuid/setgid bits and file capabilities make a program run with more
//     privileges than its caller. In a rootfs other users of this machine can
//     reach, any of them could run those programs on the host, as root: they are
//     dropped, unless the target's folder is closed to other users, or --keep-setuid.
import { readdirSync, rmSync, statSync, statfsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { EXIT, WorkshopError } from '../lib/kernel/errors.js';
import { inInitialUserNamespace } from '../lib/host/machine.js';
import { hostFolderProblem } from '../lib/container/options.js';
import { checkRootfs } from '../lib/container/rootfs.js';
import { openArchive } from './archive.js';
import { lstatIfExists, makeDirs, RUNTIME_DIRS } from './safe-fs.js';
import { makeStaging, putInPlace, removeStaleStaging } from './staging.js';
import { formatBytes, unpackTar, type UnpackReport } from './unpack.js';

export interface ImportOptions {
  log?: (line: string) => void;
  /** Replace an existing rootfs (only once the new one is complete). */
  replace?: boolean;
  /** The most the archive may unpack to, in bytes. Default: the free space of the target's disk. */
  maxBytes?: number;
  /** Keep setuid/setgid bits and file capabilities even where other users can reach them. */
  keepSetuid?: boolean;
}

export interface ImportReport extends UnpackReport {
  target: string;
  /** The archive's owners kept (root), or every file made the caller's. */
  ownersKept: boolean;
  /** setuid/setgid bits and file capabilities kept. */
  privilegesKept: boolean;
}

/** Import the archive `file` as the root filesystem `target`. */
export async function importTarball(file: string, target: string, options: ImportOptions = {}): Promise<ImportReport> {
  const log = options.log ?? (() => {});
  target = resolve(target);
  removeStaleStaging(target, log); // first: it may put back the previous rootfs
  checkTarget(target, options.replace ? 'replace' : 'refuse');
  const archive = openArchive(file);
  const staging = makeStaging(target, 'importing');
  const ownersKept = process.getuid?.() === 0 && inInitialUserNamespace();
  const privilegesKept = options.keepSetuid === true || closedToOthers(dirname(target));
  let report: UnpackReport;
  try {
    report = await unpackTar(archive.tar, staging, {
      maxBytes: options.maxBytes ?? freeSpace(dirname(target)),
      keepOwners: ownersKept,
      keepPrivileges: privilegesKept,
      source: file,
      inputError: archive.explain,
    });
    makeDirs(staging, RUNTIME_DIRS);
    const check = checkRootfs(staging);
    if (!check.ok) {
      throw new WorkshopError(
        `the archive ${file} is not a usable root filesystem: ${check.problem.replace(/ \(the runtime mounts .*\)$/, '')}`,
        'Nothing was kept. Use a complete root filesystem: `docker export CONTAINER > rootfs.tar`, or an Alpine minirootfs.',
      );
    }
    putInPlace(staging, target, options.replace ?? false);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    if (['ENOTEMPTY', 'EEXIST'].includes((error as NodeJS.ErrnoException).code ?? '')) {
      throw new WorkshopError(`${target} was created by someone else while this import ran`, 'Nothing was changed. Run the import again with --force to replace it.');
    }
    throw error;
  }

  if (!ownersKept) log(`owners: every file is yours (uid ${process.getuid?.()}): only root can keep the archive's owners and groups (sudo npm run rootfs …)`);
  if (report.privilegesDropped.length > 0) {
    log(
      `setuid/setgid bits and capabilities dropped from ${report.privilegesDropped.length} files (${report.privilegesDropped.slice(0, 3).join(', ')}${report.privilegesDropped.length > 3 ? ', …' : ''}): ` +
        `other users can reach ${dirname(target)}, and could run them on this machine with their privileges. ` +
        'To keep them, import into a folder only you can enter (mkdir -m 700 DIR; --target DIR/rootfs), or pass --keep-setuid.',
    );
  }
  if (report.skipped.length > 0) log(`skipped ${report.skipped.length} (device nodes and FIFOs: the runtime makes /dev): ${report.skipped.slice(0, 4).join(', ')}${report.skipped.length > 4 ? ', …' : ''}`);
  log(`${target}: ${report.files} files, ${report.hardlinks} hard links, ${report.dirs} folders, ${report.symlinks} symlinks, ${formatBytes(report.bytes)}`);
  return { ...report, target, ownersKept, privilegesKept };
}

/**
 * Checks made before anything is read or written: the target is not the host's
 * root nor holds the repository; an existing one is refused, replaced (only a
 * rootfs: --force) or updated in place (a build without --force).
 */
export function checkTarget(target: string, existing: 'refuse' | 'replace' | 'update'): void {
  const problem = hostFolderProblem(target);
  if (problem) throw new WorkshopError(`--target ${target} ${problem}`, 'Choose a folder of its own, e.g. --target rootfs-alpine.', EXIT.usage);
  const stat = lstatIfExists(target);
  if (!stat) return;
  if (!stat.isDirectory()) throw new WorkshopError(`--target ${target} is a file, not a folder`, 'Choose another --target, or remove that file.', EXIT.usage);
  if (existing === 'update' || readdirSync(target).length === 0) return;
  if (existing === 'refuse') throw new WorkshopError(`${target} already exists`, 'Pass --force to replace it (the new one replaces it only once it is complete), or choose another --target.', EXIT.usage);
  if (!['proc', 'dev'].every((name) => lstatIfExists(join(target, name))?.isDirectory())) {
    throw new WorkshopError(
      `--force refuses to replace ${target}: it does not look like a root filesystem (no proc/ and dev/ folders)`,
      'Check --target. If that folder really should go, delete it yourself.',
      EXIT.usage,
    );
  }
}

/**
 * True when some folder on the way to `folder` (itself included) lets only its
 * owner (root or the caller) in: no other user can reach what is inside.
 */
export function closedToOthers(folder: string): boolean {
  for (let path = resolve(folder); ; path = dirname(path)) {
    const stat = statSync(path, { throwIfNoEntry: false });
    if (stat && (stat.mode & 0o011) === 0 && (stat.uid === 0 || stat.uid === process.getuid?.())) return true;
    if (path === '/') return false;
  }
}

/** Bytes free for this user on the disk of `folder`. */
function freeSpace(folder: string): number {
  const stat = statfsSync(folder);
  return stat.bavail * stat.bsize;
}
