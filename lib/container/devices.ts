// A minimal /dev for the container: a fresh tmpfs holding only the devices a
// shell and everyday tools expect. Each device is bind-mounted from the host's
// /dev rather than created with mknod(2), so this also works in a user
// namespace (rootless), where mknod is not allowed. Then, as Docker has them:
// /dev/shm, a tmpfs of its own for shared memory, and /dev/pts, a private
// devpts instance: the container's terminals, none of the host's.
import { closeSync, mkdirSync, openSync, symlinkSync } from 'node:fs';
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID } from '../kernel/constants.js';
import { mount } from '../kernel/libc.js';

export const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'] as const;

/** The usual /dev symlinks into /proc (bash's <(...), `cat /dev/stdin`, ...), and ptmx into the container's devpts. */
const LINKS: ReadonlyArray<readonly [name: string, target: string]> = [
  ['fd', '/proc/self/fd'],
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
  ['ptmx', 'pts/ptmx'], // relative: also right when followed from the host, through /proc/<pid>/root
];

/** Mount a tmpfs on `<rootfs>/dev` and fill it; call before pivot_root, while the host's /dev is reachable. */
export function mountMinimalDev(rootfs: string): void {
  const dev = `${rootfs}/dev`;
  mount('tmpfs', dev, 'tmpfs', MS_NOSUID | MS_NOEXEC, 'mode=755,size=64k');
  for (const name of DEVICES) {
    closeSync(openSync(`${dev}/${name}`, 'w')); // an empty file to mount the device onto
    mount(`/dev/${name}`, `${dev}/${name}`, '', MS_BIND);
  }
  for (const [name, target] of LINKS) symlinkSync(target, `${dev}/${name}`);
  // Shared memory (shm_overview(7)): 64 MiB like Docker's, writable by everyone, sticky.
  mkdirSync(`${dev}/shm`);
  mount('shm', `${dev}/shm`, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=1777,size=65536k');
  // Terminals (pty(7)): a devpts instance of the container's own; its ptmx makes new ones.
  mkdirSync(`${dev}/pts`);
  mount('devpts', `${dev}/pts`, 'devpts', MS_NOSUID | MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620');
}
