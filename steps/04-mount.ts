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
// Your exercise: do the step 4 TODOs below, then `npm run check 4`.
// Stuck? `npm run hint 4`. Start over: `npm run reset 4`.
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
    unshare(CLONE_NEWUTS | CLONE_NEWPID);
    return spawnChild(container);
  },

  // The child is PID 1 in the new PID namespace; execvp keeps that pid.
  child(container) {
    // TODO(step 4): give the child a mount namespace of its own, where no mount propagates back to the host.
    // hint: the child needs a mount namespace of its own (not the parent: pivot_root moves every process of the namespace), where no mount travels back to the host.
    sethostname(container.hostname);
    // TODO(step 4): mount the rootfs, its /proc and /dev, then pivot_root into it and drop the old root.
    // hint: pivot_root makes a mount point the new `/`: prepare it first (its own /proc, /dev and /etc/hostname, while host paths still work), pivot from inside it, then detach the old root.
    execvp(container.command[0], container.command);
  },
});
