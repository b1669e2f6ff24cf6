/**
 * Step 9 — seccomp: the container's syscalls go through a filter.
 *
 *   parent: check the rootfs, create the cgroup and the layer folders,
 *           unshare(CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWNET), re-spawn this file
 *           as `child <cmd>`, wait for it; remove the layers and the cgroup, whatever happened
 *   child:  join the cgroup, unshare(CLONE_NEWNS), make / private, sethostname, bring lo up,
 *           mount the overlay, /proc, /sys and /dev, pivot_root, make the rootfs's device
 *           files inert, hide and write-protect the host kernel's files in /proc and /sys,
 *           drop dangerous capabilities from the bounding set, set no_new_privs,
 *           load a seccomp filter, execvp(<cmd>)
 *
 * Without capabilities, root still has every syscall, and some need none:
 * keyctl, bpf, perf_event_open, unshare(CLONE_NEWUSER)… each a large piece of
 * kernel code a container could attack. A seccomp filter, a small program the
 * kernel runs before every syscall, answers EPERM to those, like Docker's
 * default profile. no_new_privs first: from then on, no exec can gain privileges.
 * Try: npm run step 9 -- sh -c 'unshare -U true; grep -E "NoNewPrivs|Seccomp" /proc/self/status'
 */
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
  PR_SET_NO_NEW_PRIVS,
  SECCOMP_SET_MODE_FILTER,
  SOCK_DGRAM,
} from '../lib/kernel/constants.js';
import { dangerousCapabilities } from '../lib/container/capabilities.js';
import { MASKED_PATHS, READONLY_PATHS, maskPath } from '../lib/container/kernel-files.js';
import { createCgroup, existingCgroup, parseSize, removeStaleCgroups } from '../lib/container/cgroups.js';
import { mountMinimalDev } from '../lib/container/devices.js';
import { mountHostnameFiles } from '../lib/container/hostname-files.js';
import { chdir, close, execvp, mount, pivotRoot, prctl, seccomp, sethostname, socket, umount2, unshare } from '../lib/kernel/libc.js';
import { getInterfaceFlags, setInterfaceFlags } from '../lib/container/net.js';
import { createLayers, ensureLowerLayers, layersOf, overlayOptions, removeLayers, removeStaleLayers } from '../lib/container/overlay.js';
import { allowTheRest, checkArchitecture, denyDangerousSyscalls, filterProgram } from '../lib/container/seccomp.js';
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
    // The new root is the overlay's merged view: rootfs/ read-only below, this container's upper layer on top.
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
    // Opening a device file only checks its permissions: a rootfs holding a copy of the host's disk
    // (or /dev/kmsg) node would hand root the device. nodev on the root makes every device file of the
    // rootfs inert; those the runtime put in /dev are mounts of their own, and keep working.
    mount('/', '/', '', MS_BIND | MS_REMOUNT | MS_NODEV);
    // Some files of /proc and /sys show or change the whole machine and only check permissions, which
    // uid 0 passes (lib/container/kernel-files.ts says which, and why): hide them...
    for (const path of MASKED_PATHS) maskPath(path);
    // ...and make the kernel's settings and triggers read-only: /proc/sys, /proc/sysrq-trigger, /proc/irq...
    for (const path of READONLY_PATHS.filter((path) => existsSync(path))) {
      mount(path, path, '', MS_BIND);
      mount(path, path, '', MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
    }
    // The bounding set caps what any program this process execs can have: root's
    // command gets the bounding set as its capabilities, so dropping one here removes it for good.
    for (const capability of dangerousCapabilities()) {
      prctl(PR_CAPBSET_DROP, capability.number, `PR_CAPBSET_DROP, ${capability.name}`);
    }
    // TODO(step 9): set no_new_privs, so that nothing the container execs can gain privileges (setuid bits and file capabilities are ignored from then on).
    // hint: it is a prctl(2) option, like PR_CAPBSET_DROP just above: PR_SET_NO_NEW_PRIVS, with 1.
    // hint: prctl(PR_SET_NO_NEW_PRIVS, 1, 'PR_SET_NO_NEW_PRIVS, 1');
    // A setuid-root program (su, mount, passwd…) would otherwise run as root whoever starts it. The
    // flag is inherited by every child and can never be unset.
    prctl(PR_SET_NO_NEW_PRIVS, 1, 'PR_SET_NO_NEW_PRIVS, 1');
    // END TODO
    // TODO(step 9): load a seccomp filter, last thing before execvp: check the architecture, then deny the dangerous syscalls, and allow the rest.
    // hint: lib/container/seccomp.ts writes the rules (checkArchitecture(), denyDangerousSyscalls(), allowTheRest()) and lays them out in a Buffer (filterProgram(rules)); seccomp(SECCOMP_SET_MODE_FILTER, 0, <that Buffer>) loads it.
    // hint: seccomp(SECCOMP_SET_MODE_FILTER, 0, filterProgram([...checkArchitecture(), ...denyDangerousSyscalls(), allowTheRest()]));
    // The filter is a classic-BPF program the kernel runs before every syscall of this process and of
    // everything it execs, for good. It reads the syscall's ABI, number and arguments, and returns a verdict.
    const rules = [
      // First the ABI: under another one (32-bit x86 on x86_64), the same numbers are other syscalls.
      ...checkArchitecture(),
      // Then the number (and for clone, its flags): keyctl, bpf, mount, unshare… fail with EPERM.
      ...denyDangerousSyscalls(),
      // Anything else runs.
      allowTheRest(),
    ];
    seccomp(SECCOMP_SET_MODE_FILTER, 0, filterProgram(rules));
    // END TODO
    execvp(container.command[0], container.command);
  },
});
