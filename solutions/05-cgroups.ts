/**
 * Step 5 — cgroups: limits on what the container can use.
 *
 *   parent: check the rootfs, create the container's cgroup and write its limits
 *           (pids, memory), unshare(CLONE_NEWUTS | CLONE_NEWPID), re-spawn this file
 *           as `child <cmd>`, wait for it; remove the cgroup, whatever happened
 *   child:  join the cgroup, then as in step 4: unshare(CLONE_NEWNS), make / private,
 *           sethostname, mount the rootfs, /proc and /dev, pivot_root, execvp(<cmd>)
 *
 * Namespaces decide what a container can see; a cgroup decides how much it can use.
 * Try: npm run step 5 -- --pids-max 10 sh -c 'for i in $(seq 20); do sleep 5 & done'
 * and: npm run step 5 -- --memory 32M dd if=/dev/zero of=/dev/null bs=64M count=1; echo $?
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
import { createCgroup, existingCgroup, parseSize, removeStaleCgroups } from '../lib/container/cgroups.js';
import { mountMinimalDev } from '../lib/container/devices.js';
import { mountHostnameFiles } from '../lib/container/hostname-files.js';
import { chdir, execvp, mount, pivotRoot, sethostname, umount2, unshare } from '../lib/kernel/libc.js';
import { ensureRootfs } from '../lib/container/rootfs.js';
import { runtime, spawnChild } from '../lib/container/runtime.js';

runtime({
  // The parent runs on the host: it starts the child and waits for it.
  async parent(container) {
    ensureRootfs(container.rootfs);
    // TODO(step 5): create the container's cgroup and write its limits before the child exists; remove it once the container has exited, whatever happened.
    // hint: a cgroup is a folder of limits, named after the container id, that the parent makes before the child exists (leftovers of killed runs go first) and removes once the container has exited, on every path: a try/finally.
    // hint: lib/container/cgroups.ts does the file work: await removeStaleCgroups(); createCgroup(container.id) makes the folder(s); the cgroup it returns has limitPids(), limitMemory() (parseSize turns "256M" into bytes) and remove().
    // hint: await removeStaleCgroups(); const cgroup = createCgroup(container.id); try { cgroup.limitPids(container.pidsMax); cgroup.limitMemory(parseSize(container.memory)); unshare(...); return await spawnChild(container); } finally { await cgroup.remove(); }
    //>> unshare(CLONE_NEWUTS | CLONE_NEWPID);
    //>> return spawnChild(container);
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
      unshare(CLONE_NEWUTS | CLONE_NEWPID);
      return await spawnChild(container);
    } finally {
      // It retries rmdir while the container's last processes drain.
      await cgroup.remove();
    }
    // END TODO
  },

  // The child is PID 1 in the new PID namespace; execvp keeps that pid.
  child(container) {
    // TODO(step 5): join the container's cgroup first: from then on, everything the child starts counts against its limits.
    // hint: a process joins a cgroup by writing itself into the cgroup's list of processes: the child does it first, so that everything it starts is counted.
    // hint: existingCgroup(container.id) finds the cgroup the parent made; its join() writes "0" (meaning "me") to cgroup.procs.
    // hint: existingCgroup(container.id).join(); — the child is PID 1 in its namespace, and "0" needs no pid at all.
    // Join the cgroup first: from then on, everything the child starts counts against its limits.
    existingCgroup(container.id).join();
    // END TODO
    const rootfs = container.rootfs;
    // A mount namespace of its own: from here on, mounts are private to the container.
    unshare(CLONE_NEWNS);
    // `/` may be a shared mount (systemd does that): make everything private so no mount leaks to the host.
    mount('none', '/', '', MS_REC | MS_PRIVATE);
    sethostname(container.hostname);
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
    execvp(container.command[0], container.command);
  },
});
