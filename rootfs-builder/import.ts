// Importing a root filesystem from a tarball: `docker export` output or an
// Alpine minirootfs (.tar, .tar.gz, .tgz).
//
// An archive is untrusted input. Its paths may try to climb out of the target
// ("../../etc/cron.d/x"), or go through one of its own symlinks
// ("lib -> /usr/lib", then "lib/x" lands in the host's /usr/lib). So: every
// path is checked before anything is written, every write refuses to go
// through a symlink, and the files land in a temporary folder that is renamed
// to the target only once complete.
import { chmodSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { WorkshopError } from '../lib/kernel/errors.js';
import { checkRootfs } from '../lib/container/rootfs.js';
import { lstatIfExists, makeDirs, makeParents, RUNTIME_DIRS } from './safe-fs.js';
import { decompress, readTar, type TarEntry } from './tar.js';

export interface ImportOptions {
  log?: (line: string) => void;
}

export interface ImportReport {
  target: string;
  files: number;
  dirs: number;
  symlinks: number;
  /** Entries not extracted, e.g. "dev/null (char-device)". */
  skipped: string[];
}

/** An entry with its paths checked and made relative to the target. */
interface CheckedEntry extends TarEntry {
  relative: string;
  /** For hard links: the linked file, relative to the target. */
  linkRelative: string;
}

/**
 * Extract the tarball `file` (.tar or .tar.gz) into `target`, which must not
 * exist yet (or be empty). Device nodes and FIFOs are skipped and reported.
 */
export function importTarball(file: string, target: string, options: ImportOptions = {}): ImportReport {
  const log = options.log ?? (() => {});
  target = resolve(target);
  const entries = readTar(decompress(readArchive(file))).map(checkEntry);
  refuseExistingTarget(target);

  const report: ImportReport = { target, files: 0, dirs: 0, symlinks: 0, skipped: [] };
  mkdirSync(dirname(target), { recursive: true });
  const staging = mkdtempSync(join(dirname(target), `.${basename(target)}.importing-`));
  try {
    const dirModes = new Map<string, number>();
    for (const entry of entries) extract(staging, entry, report, dirModes);
    // Folder modes last: a read-only folder must still receive its files first.
    for (const [path, mode] of dirModes) chmodSync(path, mode);
    makeDirs(staging, RUNTIME_DIRS);

    const check = checkRootfs(staging);
    if (!check.ok) {
      throw new WorkshopError(
        `the tarball ${file} is not a usable root filesystem: ${check.problem}`,
        'Use a complete root filesystem: `docker export CONTAINER > rootfs.tar`, or an Alpine minirootfs.',
      );
    }
    chmodSync(staging, 0o755); // mkdtemp made it private (0700)
    renameSync(staging, target);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }

  for (const skipped of report.skipped) log(`skipped ${skipped}`);
  log(`${basename(target)}/: ${report.files} files, ${report.dirs} folders, ${report.symlinks} symlinks imported`);
  return report;
}

function readArchive(file: string): Buffer {
  try {
    return readFileSync(file); // whole archive in memory: fine for root filesystems of a few hundred MB
  } catch (error) {
    throw new WorkshopError(`cannot read ${file}: ${(error as Error).message}`, 'Check the path of the tarball.');
  }
}

/** Make the entry's paths relative to the target, refusing those that climb out of it. */
function checkEntry(entry: TarEntry): CheckedEntry {
  const relative = insideTarget(entry.path, entry.path);
  if (relative === '' && entry.type !== 'dir') {
    throw new WorkshopError(`refusing the archive: entry "${entry.path}" has no name`, 'The archive is broken.');
  }
  const linkRelative = entry.type === 'hardlink' ? insideTarget(entry.linkTarget, entry.path) : '';
  return { ...entry, relative, linkRelative };
}

/**
 * "./usr/../bin/sh" → "bin/sh". A leading "/" is dropped: archive paths are
 * relative to the target. A ".." that would climb above the target is refused.
 * (Symlink targets never come here: they are written as they are, and only
 * mean something inside the container.)
 */
function insideTarget(path: string, entry: string): string {
  const names: string[] = [];
  for (const name of path.split('/')) {
    if (name === '' || name === '.') continue;
    if (name !== '..') names.push(name);
    else if (names.pop() === undefined) {
      throw new WorkshopError(
        `refusing the archive: entry "${entry}" points outside the target folder ("${path}")`,
        'Nothing was written. Archives whose paths climb out with ".." are broken or malicious ' +
          '("path traversal"): do not use this one.',
      );
    }
  }
  return names.join('/');
}

/** Importing fills a new folder: mixing two root filesystems would give a confusing result. */
function refuseExistingTarget(target: string): void {
  const stat = lstatIfExists(target);
  if (stat && !(stat.isDirectory() && readdirSync(target).length === 0)) {
    throw new WorkshopError(`${target} already exists`, 'Remove it first, or pass --force to replace it.');
  }
}

function extract(root: string, entry: CheckedEntry, report: ImportReport, dirModes: Map<string, number>): void {
  switch (entry.type) {
    case 'dir': {
      if (entry.relative === '') return; // the target itself
      const path = makeParents(root, entry.relative, entry.path);
      const existing = lstatIfExists(path);
      if (existing && !existing.isDirectory()) unlinkSync(path); // an earlier entry of the same name
      if (!existing?.isDirectory()) mkdirSync(path);
      dirModes.set(path, entry.mode);
      report.dirs++;
      return;
    }
    case 'file': {
      // "wx" creates the file and fails if something is there: it never writes through a symlink.
      const path = freshPath(root, entry);
      writeFileSync(path, entry.data, { flag: 'wx' });
      chmodSync(path, entry.mode);
      report.files++;
      return;
    }
    case 'symlink':
      symlinkSync(entry.linkTarget, freshPath(root, entry));
      report.symlinks++;
      return;
    case 'hardlink': {
      // link() follows symlinks in the linked file's folders too, so they get the same check.
      const existing = makeParents(root, entry.linkRelative, entry.path);
      const stat = lstatIfExists(existing);
      if (!stat || stat.isDirectory()) {
        throw new WorkshopError(
          `hard link "${entry.path}" points to "${entry.linkTarget}", which is not a file earlier in the archive`,
          'The archive is broken.',
        );
      }
      linkSync(existing, freshPath(root, entry));
      report.files++;
      return;
    }
    default:
      // Device nodes and FIFOs: the runtime mounts its own /dev. (Creating devices from an archive is also a risk.)
      report.skipped.push(`${entry.path} (${entry.type})`);
  }
}

/** The entry's full path, with its folders created and any earlier non-folder entry of the same name removed. */
function freshPath(root: string, entry: CheckedEntry): string {
  const path = makeParents(root, entry.relative, entry.path);
  const existing = lstatIfExists(path);
  if (existing?.isDirectory()) {
    throw new WorkshopError(`entry "${entry.path}" would replace a folder`, 'The archive is broken.');
  }
  if (existing) unlinkSync(path); // a symlink is removed, not followed
  return path;
}
