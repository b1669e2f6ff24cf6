/**
 * Step 6 — overlay filesystem: a writable layer over a read-only rootfs.
 *
 *   parent: check the rootfs, create the cgroup (limits) and the container's layer
 *           folders (upper, work, merged), unshare(CLONE_NEWUTS | CLONE_NEWPID),
 *           re-spawn this file as `child <cmd>`, wait for it; remove the layers and the
 *           cgroup, whatever happened
 *   child:  join the cgroup, unshare(CLONE_NEWNS), make / private, sethostname,
 *           mount an overlay (rootfs below, the container's upper layer on top) on merged,
 *           mount /proc and /dev in it, pivot_root into it, execvp(<cmd>)
 *
 * rootfs/ is never written again: every container writes to its own upper layer,
 * which is thrown away when it exits. A real image is several read-only layers,
 * stacked the same way (npm run rootfs -- --image alpine:3.20, then --image alpine:3.20).
 * Try: npm run step 6 -- sh -c 'echo hi > /new; ls /new; rm /etc/hostname'   (then: ls rootfs/)
 */
// Your exercise: do the step 6 TODOs below, then `npm run check 6`.
// Stuck? `npm run hint 6`. Start over: `npm run reset 6`.
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
import { createCgroup, existingCgroup, parseSize, removeStaleCgroups } from '../lib/container/cgroups.js';
import { mountMinimalDev } from '../lib/container/devices.js';
import { mountHostnameFiles } from '../lib/container/hostname-files.js';
import { chdir, execvp, mount, pivotRoot, sethostname, umount2, unshare } from '../lib/kernel/libc.js';
import { createLayers, ensureLowerLayers, layersOf, overlayOptions, removeLayers, removeStaleLayers } from '../lib/container/overlay.js';
import { runtime, spawnChild } from '../lib/container/runtime.js';

runtime({
  // The parent runs on the host: it starts the child and waits for it.
  async parent(container) {
    // The read-only layers: rootfs/, or the image's layers (--image), must be there before anything is created.
    ensureLowerLayers(container);
    // Leftovers of killed runs first: their runtime's pid (in the id) is gone.
    await removeStaleCgroups();
    // One cgroup per container, named after its id: concurrent containers never share limits.
    const cgroup = createCgroup(container.id);
    // From here on, whatever happens (a failed setup call, the container's exit), the cgroup goes: try/finally.
    try {
      // At most this many processes (and threads) at once: a fork bomb stops there.
      cgroup.limitPids(container.pidsMax);
      // At most this much memory, no swap: past it, the kernel's OOM killer sends SIGKILL.
      cgroup.limitMemory(parseSize(container.memory));
      // TODO(step 6): create the folders of the container's own layer (upper, work, merged) before the child needs them; remove them, and its writes with them, once it has exited, whatever happened.
      // hint: each container writes into a layer of its own: folders the parent makes before the child needs them (leftovers of killed runs go first), and throws away with the container's writes once it has exited, on every path.
      unshare(CLONE_NEWUTS | CLONE_NEWPID);
      return await spawnChild(container);
    } finally {
      await cgroup.remove();
    }
  },

  // The child is PID 1 in the new PID namespace; execvp keeps that pid.
  child(container) {
    // Join the cgroup first: from then on, everything the child starts counts against its limits.
    existingCgroup(container.id).join();
    // A mount namespace of its own: from here on, mounts are private to the container.
    unshare(CLONE_NEWNS);
    // `/` may be a shared mount (systemd does that): make everything private so no mount leaks to the host.
    mount('none', '/', '', MS_REC | MS_PRIVATE);
    sethostname(container.hostname);
    // TODO(step 6): mount an overlay on the layers' merged folder, the rootfs read-only below and the upper layer on top, and make it the new root.
    // hint: an overlay shows the read-only rootfs (or an image's layers) with the container's own writable layer on top, in one folder (merged) that becomes the new root instead of the bind-mounted rootfs.
    const root = container.rootfs;
    // pivot_root needs the new root to be a mount point: bind-mount the rootfs onto itself.
    mount(root, root, '', MS_BIND | MS_REC);
    // The container's own /proc: `ps` now lists only the processes of its PID namespace.
    mount('proc', `${root}/proc`, 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC);
    // A minimal /dev (null, zero, random, tty, ...) on a tmpfs.
    mountMinimalDev(root);
    // /etc/hostname and /etc/hosts name the container: its own copies, bind-mounted (rootfs/ is never written).
    mountHostnameFiles(root, container.hostname);
    // Swap roots: pivot_root(".", ".") puts the old root on top of the new one...
    chdir(root);
    pivotRoot('.', '.');
    // ...and detaching it leaves no way back to the host's files.
    umount2('.', MNT_DETACH);
    chdir('/');
    execvp(container.command[0], container.command);
  },
});
