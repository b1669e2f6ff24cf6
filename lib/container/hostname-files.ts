// /etc/hostname and /etc/hosts inside name the container, as Docker's do:
// the runtime writes a copy of each for this container and bind-mounts it
// over the rootfs's file. The rootfs folder itself is never written (other
// containers share it, and it is the participant's).
import { statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { MS_BIND } from '../kernel/constants.js';
import { WorkshopError } from '../kernel/errors.js';
import { mount } from '../kernel/libc.js';
import { lstatIfExists } from './rootfs.js';

/** statfs(2)'s f_type of a tmpfs (linux/magic.h). */
const TMPFS_MAGIC = 0x01021994;

/** The container's /etc/hosts: localhost, and its own name (on 127.0.1.1, as Debian names a machine). */
function hostsFile(hostname: string): string {
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`;
}

/**
 * Bind-mount this container's /etc/hostname and /etc/hosts over the rootfs's
 * (where it has them: the rootfs is never written). Call after
 * mountMinimalDev(root), before pivot_root: each copy is written in the
 * container's /dev tmpfs, mounted, then unlinked — only the mount keeps it.
 */
export function mountHostnameFiles(root: string, hostname: string): void {
  if (statfsSync(`${root}/dev`).type !== TMPFS_MAGIC) {
    throw new WorkshopError(`${root}/dev is not the container's own tmpfs`, 'Call mountMinimalDev(root) before mountHostnameFiles(root, hostname).');
  }
  const files: Record<string, string> = { hostname: `${hostname}\n`, hosts: hostsFile(hostname) };
  for (const [name, content] of Object.entries(files)) {
    const target = `${root}/etc/${name}`;
    if (!lstatIfExists(target)?.isFile()) continue; // a mount point must exist, and a symlink could lead out of the rootfs
    const copy = `${root}/dev/.${name}`;
    writeFileSync(copy, content, { mode: 0o644 });
    mount(copy, target, '', MS_BIND);
    unlinkSync(copy);
  }
}
