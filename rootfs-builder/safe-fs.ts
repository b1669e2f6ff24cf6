// Writing into a root filesystem without ever leaving it.
//
// A symlink inside a rootfs means something inside the container: /bin/sh ->
// /bin/busybox is the rootfs's own busybox. But a path like rootfs/etc/passwd,
// opened from the host, follows rootfs/etc if it is a symlink to /etc: and
// that is the host's /etc. So every write here checks, folder by folder, that
// it does not go through a symlink.
import { chmodSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { lstatIfExists } from '../lib/container/rootfs.js';
import { join } from 'node:path';
import { WorkshopError } from '../lib/kernel/errors.js';

/** The folders every root filesystem needs: the runtime mounts /proc, /dev and /sys onto them; programs write to /tmp. */
export const RUNTIME_DIRS: Readonly<Record<string, number>> = { proc: 0o755, dev: 0o755, sys: 0o755, tmp: 0o1777 };

export { lstatIfExists } from '../lib/container/rootfs.js';

/**
 * `mkdir -p` for the folders above root/relative, refusing to go through a
 * symlink. `entry` names what is being written, for the error message.
 * `known` (optional) holds folders already checked, relative to root: they
 * are not looked at again (the caller makes sure they stay folders).
 * `replaceable` (optional) says which symlinks or files on the way may be
 * removed and replaced by a folder (an image layer's folder hides what lower layers have there).
 * Returns the full path of root/relative.
 */
export function makeParents(root: string, relative: string, entry: string, known?: Set<string>, replaceable?: (folder: string) => boolean): string {
  const parents = relative.split('/').slice(0, -1);
  if (known?.has(parents.join('/'))) return join(root, relative);
  let path = root;
  for (const [index, name] of parents.entries()) {
    path = join(path, name);
    const folder = parents.slice(0, index + 1).join('/');
    if (known?.has(folder)) continue;
    let stat = lstatIfExists(path);
    if (stat && !stat.isDirectory() && replaceable?.(folder)) {
      rmSync(path, { force: true });
      stat = undefined;
    }
    if (!stat) {
      mkdirSync(path);
      chmodSync(path, 0o755); // mkdir's mode is reduced by the umask
    } else if (stat.isSymbolicLink()) {
      throw new WorkshopError(
        `"${entry}" would be written through the symlink "${folder}"`,
        'Nothing was written through it: followed from the host, a symlink in a root filesystem can point ' +
          'anywhere on the host. Only use archives you trust.',
      );
    } else if (!stat.isDirectory()) {
      throw new WorkshopError(`"${entry}" cannot be written: "${folder}" is a file, not a folder`, 'The archive is broken.');
    }
    known?.add(folder);
  }
  return join(root, relative);
}

/** Create the folders that are missing, with these modes (existing ones are left alone). */
export function makeDirs(root: string, modes: Readonly<Record<string, number>>): void {
  for (const [name, mode] of Object.entries(modes)) {
    const path = makeParents(root, name, name);
    if (lstatIfExists(path)) continue;
    mkdirSync(path);
    chmodSync(path, mode);
  }
}

/**
 * Write a new version of `path` beside it, then rename it over the old one:
 * readers see the old file or the new one, never half of one; a symlink in
 * the way is replaced, not followed; and a program that is running in a
 * container can still be updated (writing into it fails with ETXTBSY).
 */
export function replaceFile(path: string, write: (temporary: string) => void): void {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    write(temporary);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
