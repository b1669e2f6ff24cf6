/**
 * Step 8 — capabilities: the container's root loses its most dangerous powers.
 *
 *   parent: check the rootfs, create the cgroup and the layer folders,
 *           unshare(CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWNET), re-spawn this file
 *           as `child <cmd>`, wait for it; remove the layers and the cgroup, whatever happened
 *   child:  join the cgroup, unshare(CLONE_NEWNS), make / private, sethostname, bring lo up,
 *           mount the overlay, /proc, /sys and /dev, pivot_root, make the rootfs's device
 *           files inert, hide and write-protect the host kernel's files in /proc and /sys,
 *           drop dangerous capabilities from the bounding set, execvp(<cmd>)
 *
 * Root inside is still uid 0, but without CAP_SYS_ADMIN & co it can no longer
 * mount, change the hostname, load kernel modules or set the clock. Some things
 * only check file permissions, which uid 0 passes anyway: device files, and some
 * files of /proc and /sys. Those are dealt with first, like runc does by default.
 * Try: npm run step 8 -- sh -c 'hostname foo; mount -t tmpfs x /tmp; grep Cap /proc/self/status'
 */
// Your exercise: do the step 8 TODOs below, then `npm run check 8`.
// Stuck? `npm run hint 8`. Start over: `npm run reset 8`.
import { existsSync } from 'node:fs';
import {
  AF_INET,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWUTS,
  IFF_UP,
  MNT_DETACH,
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_REMOUNT,
  PR_CAPBSET_DROP,
  SOCK_DGRAM,
} from '../lib/kernel/constants.js';
import { dangerousCapabilities } from '../lib/container/capabilities.js';
import { MASKED_PATHS, READONLY_PATHS, maskPath } from '../lib/container/kernel-files.js';
import { createCgroup, existingCgroup, parseSize, removeStaleCgroups } from '../lib/container/cgroups.js';
import { mountMinimalDev } from '../lib/container/devices.js';
import { mountHostnameFiles } from '../lib/container/hostname-files.js';
import { chdir, close, execvp, mount, pivotRoot, prctl, sethostname, socket, umount2, unshare } from '../lib/kernel/libc.js';
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
        unshare(CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWNET);
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
    // Any socket is a handle on the network stack of this namespace; a UDP one will do.
    const fd = socket(AF_INET, SOCK_DGRAM, 0);
    // Read lo's flags, add IFF_UP, write them back: what `ip link set lo up` does.
    setInterfaceFlags(fd, 'lo', getInterfaceFlags(fd, 'lo') | IFF_UP);
    close(fd);
    // The new root is the overlay's merged view: rootfs/ (or an image's layers) read-only below, this container's upper layer on top.
    const layers = layersOf(container.id);
    const root = layers.merged;
    mount('overlay', root, 'overlay', 0, overlayOptions(container, layers));
    // The container's own /proc: `ps` now lists only the processes of its PID namespace.
    mount('proc', `${root}/proc`, 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC);
    // A read-only /sys: /sys/class/net lists the interfaces of the container's network namespace.
    mount('sysfs', `${root}/sys`, 'sysfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
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
    // TODO(step 8): take away what uid 0 can do without any capability: open the device files of the rootfs, and read or write the host kernel's files in /proc and /sys.
    // hint: root needs no capability to open a device file or to write a file it may write: after pivot_root, make the rootfs's device files inert (nodev), hide the host kernel's files that show the whole machine, and make its settings read-only.
    // TODO(step 8): drop the dangerous capabilities from the bounding set, just before execvp, so the command starts without them.
    // hint: what a program gets at exec is capped by the bounding set: take the dangerous capabilities out of it, in the child, right before execvp.
    execvp(container.command[0], container.command);
  },
});
