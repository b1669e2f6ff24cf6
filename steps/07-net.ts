/**
 * Step 7 — network namespace: the container gets a network stack of its own.
 *
 *   parent: check the rootfs, create the cgroup and the layer folders,
 *           unshare(CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWNET), re-spawn this file
 *           as `child <cmd>`, wait for it; remove the layers and the cgroup, whatever happened
 *   child:  join the cgroup, unshare(CLONE_NEWNS), make / private, sethostname,
 *           bring the loopback interface up (socket + ioctl), mount the overlay,
 *           /proc, /sys and /dev, pivot_root, execvp(<cmd>)
 *
 * A new network namespace has a single interface, `lo`, and it starts down.
 * Connecting the container to the host (a veth pair) is a bonus: see WORKSHOP.md.
 * Try: npm run step 7 -- sh -c 'cat /proc/net/dev; ls /sys/class/net; cat /sys/class/net/lo/flags'
 */
// Your exercise: do the step 7 TODOs below, then `npm run check 7`.
// Stuck? `npm run hint 7`. Start over: `npm run reset 7`.
import {
  AF_INET,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWUTS,
  IFF_UP,
  MNT_DETACH,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  SOCK_DGRAM,
} from '../lib/kernel/constants.js';
import { createCgroup, existingCgroup, parseSize, removeStaleCgroups } from '../lib/container/cgroups.js';
import { mountMinimalDev } from '../lib/container/devices.js';
import { mountHostnameFiles } from '../lib/container/hostname-files.js';
import { chdir, close, execvp, mount, pivotRoot, sethostname, socket, umount2, unshare } from '../lib/kernel/libc.js';
import { getInterfaceFlags, setInterfaceFlags } from '../lib/container/net.js';
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
      // The container's own writable layer, in a per-run folder (killed runs' folders go first).
      removeStaleLayers();
      createLayers(container.id);
      try {
        // TODO(step 7): also create a network namespace: the child must be born in it.
        // hint: a network namespace of its own gives the container its own interfaces: like the others, the child must be born in it.
        unshare(CLONE_NEWUTS | CLONE_NEWPID);
        return await spawnChild(container);
      } finally {
        removeLayers(container.id);
      }
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
    // TODO(step 7): bring the loopback interface `lo` up: the new network namespace starts with lo down.
    // hint: interfaces are switched on through any socket: read their flags, add IFF_UP, write them back (lib/container/net.ts lays out the struct ifreq).
    // The new root is the overlay's merged view: rootfs/ (or an image's layers) read-only below, this container's upper layer on top.
    const layers = layersOf(container.id);
    const root = layers.merged;
    mount('overlay', root, 'overlay', 0, overlayOptions(container, layers));
    // The container's own /proc: `ps` now lists only the processes of its PID namespace.
    mount('proc', `${root}/proc`, 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC);
    // TODO(step 7): mount a sysfs on /sys, read-only: its /sys/class/net shows the interfaces of the container's network namespace.
    // hint: like /proc: a sysfs of the container's own, mounted in the new root before pivoting, read-only.
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
