/**
 * Step 4 — mount namespace + pivot_root: the container gets its own root filesystem.
 *
 *   parent: check the rootfs, unshare(CLONE_NEWUTS | CLONE_NEWPID), re-spawn this file as `child <cmd>`
 *   child:  unshare(CLONE_NEWNS), make / private, sethostname,
 *           bind-mount the rootfs, mount /proc and /dev in it,
 *           pivot_root into it, detach the old root, execvp(<cmd>)
 *
 * Try: npm run step 4 -- sh -c 'ls /; ps'
 */
import {
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWUTS,
  MNT_DETACH,
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_REC,
} from '../lib/kernel/constants.js';
import { mountMinimalDev } from '../lib/container/devices.js';
import { mountHostnameFiles } from '../lib/container/hostname-files.js';
import { chdir, execvp, mount, pivotRoot, sethostname, umount2, unshare } from '../lib/kernel/libc.js';
import { ensureRootfs } from '../lib/container/rootfs.js';
import { runtime, spawnChild } from '../lib/container/runtime.js';

runtime({
  // The parent runs on the host: it starts the child and waits for it.
  async parent(container) {
    // TODO(step 4): make sure the root filesystem exists before the child needs it.
    // hint: check the root filesystem in the parent, before the child needs it: a clear message beats a failing mount later.
    // hint: ensureRootfs() from lib/container/rootfs.ts explains what is wrong with a missing or unusable --rootfs (npm run step builds rootfs/ the first time).
    // hint: ensureRootfs(container.rootfs);
    ensureRootfs(container.rootfs);
    // END TODO
    unshare(CLONE_NEWUTS | CLONE_NEWPID);
    return spawnChild(container);
  },

  // The child is PID 1 in the new PID namespace; execvp keeps that pid.
  child(container) {
    // TODO(step 4): give the child a mount namespace of its own, where no mount propagates back to the host.
    // hint: the child needs a mount namespace of its own (not the parent: pivot_root moves every process of the namespace), where no mount travels back to the host.
    // hint: unshare(CLONE_NEWNS) first thing in the child, then make `/` private, recursively (MS_REC | MS_PRIVATE): `/` is often a shared mount, and shared mounts send new mounts to the host.
    // hint: unshare(CLONE_NEWNS); mount('none', '/', '', MS_REC | MS_PRIVATE);
    const rootfs = container.rootfs;
    // A mount namespace of its own: from here on, mounts are private to the container.
    unshare(CLONE_NEWNS);
    // `/` may be a shared mount (systemd does that): make everything private so no mount leaks to the host.
    mount('none', '/', '', MS_REC | MS_PRIVATE);
    // END TODO
    sethostname(container.hostname);
    // TODO(step 4): mount the rootfs, its /proc and /dev, then pivot_root into it and drop the old root.
    // hint: pivot_root makes a mount point the new `/`: prepare it first (its own /proc, /dev and /etc/hostname, while host paths still work), pivot from inside it, then detach the old root.
    // hint: bind-mount the rootfs onto itself (MS_BIND | MS_REC), mount proc on `${rootfs}/proc`, mountMinimalDev(rootfs), mountHostnameFiles(rootfs, container.hostname); then chdir(rootfs), pivotRoot('.', '.'), umount2('.', MNT_DETACH), chdir('/').
    // hint: mount(rootfs, rootfs, '', MS_BIND | MS_REC); mount('proc', `${rootfs}/proc`, 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC); mountMinimalDev(rootfs); mountHostnameFiles(rootfs, container.hostname); chdir(rootfs); pivotRoot('.', '.'); umount2('.', MNT_DETACH); chdir('/');
    // pivot_root needs the new root to be a mount point: bind-mount the rootfs onto itself.
    mount(rootfs, rootfs, '', MS_BIND | MS_REC);
    // The container's own /proc: `ps` now lists only the processes of its PID namespace.
    mount('proc', `${rootfs}/proc`, 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC);
    // A minimal /dev (null, zero, random, tty, ...) on a tmpfs.
    mountMinimalDev(rootfs);
    // /etc/hostname and /etc/hosts name the container: its own copies, bind-mounted (rootfs/ is never written).
    mountHostnameFiles(rootfs, container.hostname);
    // Swap roots: pivot_root(".", ".") puts the old root on top of the new one...
    chdir(rootfs);
    pivotRoot('.', '.');
    // ...and detaching it leaves no way back to the host's files.
    umount2('.', MNT_DETACH);
    chdir('/');
    // END TODO
    execvp(container.command[0], container.command);
  },
});
