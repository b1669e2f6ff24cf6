// The plumbing of steps 5–8 on its own: cgroup files (v1 and v2 layouts),
// overlay folders, struct ifreq and ffi-rs Buffers, the capability table.
// The steps' behaviour inside containers is in checks.ts (tests/step-N.test.ts).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { capabilitiesIn, dangerousCapabilities } from '../lib/container/capabilities.js';
import { CGROUP_PARENT, Cgroup, cgroupLayout, enableControllers, parseSize, removeStaleCgroups } from '../lib/container/cgroups.js';
import { AF_INET, CAPABILITY_NAMES, IFF_LOOPBACK, IFF_UP, SOCK_DGRAM, capabilityNumber } from '../lib/kernel/constants.js';
import { close, socket } from '../lib/kernel/libc.js';
import { CGROUP_LEAF, LIMIT_CONTROLLERS, detectCgroups, overlayBlocker } from '../lib/host/machine.js';
import { getInterfaceFlags, ifreq } from '../lib/container/net.js';
import { createLayers, layersOf, removeLayers, removeStaleLayers } from '../lib/container/overlay.js';
import { userNamespacesWork } from '../lib/host/privileges.js';
import { generatedId, idNaming, isStale, ownerOf } from '../lib/container/stale.js';
import { runContainer, stepNumbered } from '../workshop/harness.js';

const isRoot = process.getuid?.() === 0;

/** Wait (without a time limit of its own: the test's timeout applies) until `condition` holds. */
async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(10);
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const { pid } = spawnSync('true');
  assert.ok(pid);
  return pid;
}

describe('container ids and leftovers of killed runs', () => {
  test('a generated id is stale once its runtime pid is gone', () => {
    assert.equal(isStale(idNaming(process.pid)), false);
    assert.equal(isStale(idNaming(deadPid())), true);
  });
  test('an id made in another PID namespace is never judged by its pid here', () => {
    assert.equal(ownerOf(`cfs-${deadPid()}-abcd-4026532999`), 'another');
    assert.equal(isStale(`cfs-${deadPid()}-abcd-4026532999`), false);
    assert.equal(ownerOf(idNaming(process.pid, 'cfs-check')), 'alive');
    assert.equal(ownerOf('my-container'), undefined);
    assert.match(generatedId(), new RegExp(`^cfs-${process.pid}-[0-9a-f]{4}(-\\d+)?$`), 'a suffix only outside the initial PID namespace');
  });
  test('ids given with --id are never stale', () => {
    assert.equal(isStale('my-container'), false);
    assert.equal(isStale(`cfs-${deadPid()}-not-hex`), false);
  });
});

describe('--memory sizes', () => {
  test('bytes, K, M, G and T (powers of 1024), any case', () => {
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('2T'), 2 * 1024 ** 4);
    assert.equal(parseSize('512K'), 512 * 1024);
    assert.equal(parseSize('256M'), 256 * 1024 ** 2);
    assert.equal(parseSize('1g'), 1024 ** 3);
    assert.equal(parseSize('64MiB'), 64 * 1024 ** 2);
  });
  test('anything else is a usage error (exit 2) that shows the format', () => {
    for (const bad of ['', 'lots', '-1M', '1.5G', '12P', ' 64M']) {
      assert.throws(() => parseSize(bad), (error: Error & { exitCode?: number }) => error.exitCode === 2 && /like 64M/.test(error.message));
    }
  });
});

describe('cgroup files, on a fake cgroup tree', () => {
  // Regular files stand in for the kernel's: this checks which files get which values.
  function fakeTree(files: string[]): string {
    const root = mkdtempSync(join(tmpdir(), 'cfs-fake-cgroup-'));
    for (const file of files) {
      mkdirSync(join(root, file, '..'), { recursive: true });
      writeFileSync(join(root, file), '');
    }
    return root;
  }

  test('v2: pids.max, memory.max and memory.swap.max in one folder; controllers enabled top-down', () => {
    const root = fakeTree(['cgroup.subtree_control', `${CGROUP_PARENT}/cgroup.subtree_control`, `${CGROUP_PARENT}/c1/memory.swap.max`]);
    try {
      writeFileSync(join(root, 'cgroup.subtree_control'), 'cpu memory'); // memory already on: only pids is added
      enableControllers(root);
      assert.equal(readFileSync(join(root, 'cgroup.subtree_control'), 'utf8'), '+pids');
      assert.equal(readFileSync(join(root, CGROUP_PARENT, 'cgroup.subtree_control'), 'utf8'), '+pids +memory');
      const cgroup = new Cgroup({ version: 2, mountPoint: root }, 'c1');
      assert.deepEqual(cgroup.folders, [join(root, CGROUP_PARENT, 'c1')]);
      cgroup.limitPids(20);
      cgroup.limitMemory(parseSize('32M'));
      cgroup.join();
      const read = (name: string): string => readFileSync(join(root, CGROUP_PARENT, 'c1', name), 'utf8');
      assert.equal(read('pids.max'), '20');
      assert.equal(read('memory.max'), String(32 * 1024 ** 2));
      assert.equal(read('memory.swap.max'), '0');
      assert.equal(read('cgroup.procs'), '0'); // "0": the writing process
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('v1: pids.max in the pids tree; memory.limit_in_bytes and memory.memsw.limit_in_bytes in the memory tree', () => {
    const root = fakeTree([`memory/${CGROUP_PARENT}/c1/memory.memsw.limit_in_bytes`, `pids/${CGROUP_PARENT}/c1/pids.max`]);
    try {
      const cgroup = new Cgroup({ version: 1, pids: join(root, 'pids'), memory: join(root, 'memory') }, 'c1');
      cgroup.limitPids(20);
      cgroup.limitMemory(1024);
      cgroup.join();
      const read = (file: string): string => readFileSync(join(root, file), 'utf8');
      assert.equal(read(`pids/${CGROUP_PARENT}/c1/pids.max`), '20');
      assert.equal(read(`memory/${CGROUP_PARENT}/c1/memory.limit_in_bytes`), '1024');
      assert.equal(read(`memory/${CGROUP_PARENT}/c1/memory.memsw.limit_in_bytes`), '1024');
      assert.equal(read(`pids/${CGROUP_PARENT}/c1/cgroup.procs`), '0');
      assert.equal(read(`memory/${CGROUP_PARENT}/c1/cgroup.procs`), '0');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('cgroups on this machine', () => {
  test('the layout follows where the pids and memory controllers are', () => {
    const cgroups = detectCgroups();
    const layout = cgroupLayout();
    assert.equal(layout.version, cgroups.controllers.pids?.version);
    assert.equal(layout.version, cgroups.controllers.memory?.version);
  });

  // The v2 code path on a real cgroup2 hierarchy: where pids and memory are on
  // v1 (this build machine), the v2 hierarchy next to them has no limits to
  // set, but creating, joining, draining and removing cgroups works the same.
  test('cgroup v2: create, move a process in, remove once it has exited, remove stale ones', async (t) => {
    const v2 = detectCgroups().v2;
    if (!isRoot || !v2?.writable) return t.skip('needs root and a cgroup2 hierarchy');
    const layout = { version: 2, mountPoint: v2.mountPoint } as const;
    const cgroup = new Cgroup(layout, `cfs-test-${randomBytes(3).toString('hex')}`);
    const stale = new Cgroup(layout, idNaming(deadPid()));
    for (const folder of [...cgroup.folders, ...stale.folders]) mkdirSync(folder, { recursive: true });
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      cgroup.join(sleeper.pid);
      assert.equal(readFileSync(`/proc/${sleeper.pid}/cgroup`, 'utf8').match(/^0::(.*)$/m)?.[1], `/${CGROUP_PARENT}/${cgroup.name}`);
      assert.deepEqual(cgroup.processes(), [sleeper.pid]);
      // Still busy: remove() waits (patience 100 ms), kills what is left, and waits until it is gone.
      await cgroup.remove(100);
      assert.equal(existsSync(cgroup.folders[0]!), false);
      await removeStaleCgroups(layout);
      assert.equal(existsSync(stale.folders[0]!), false);
    } finally {
      sleeper.kill('SIGKILL');
      await cgroup.remove(100, true);
      await stale.remove(100, true);
    }
  });

  // The flake seen on a slow machine: a killed process took longer to exit than
  // remove() was willing to wait, and rmdir gave up with EBUSY. A process frozen
  // by the v1 freezer cannot exit, SIGKILL or not, until it is thawed: remove()
  // must wait for the cgroup to be empty, not for a fixed time.
  test('remove() waits until killed processes are gone, however long they take to exit', async (t) => {
    const cgroups = detectCgroups();
    const freezer = cgroups.v1.find((hierarchy) => hierarchy.controllers.includes('freezer'));
    if (!isRoot || !cgroups.v2?.writable || !freezer) return t.skip('needs root, a cgroup2 hierarchy, and the v1 freezer to hold a killed process');
    const layout = { version: 2, mountPoint: cgroups.v2.mountPoint } as const;
    const cgroup = new Cgroup(layout, `cfs-test-${randomBytes(3).toString('hex')}`);
    const frozen = join(freezer.mountPoint, `cfs-test-${randomBytes(3).toString('hex')}`);
    mkdirSync(cgroup.folders[0]!, { recursive: true });
    mkdirSync(frozen);
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    let thawed = false;
    try {
      cgroup.join(sleeper.pid);
      writeFileSync(join(frozen, 'cgroup.procs'), String(sleeper.pid));
      writeFileSync(join(frozen, 'freezer.state'), 'FROZEN');
      // Thawed long after remove() has killed it (patience 50 ms): only then can it exit.
      const thaw = setTimeout(() => {
        thawed = true;
        writeFileSync(join(frozen, 'freezer.state'), 'THAWED');
      }, 600);
      await cgroup.remove(50);
      clearTimeout(thaw);
      assert.equal(thawed, true, 'remove() returned while the killed process could not have exited yet');
      assert.equal(existsSync(cgroup.folders[0]!), false);
    } finally {
      writeFileSync(join(frozen, 'freezer.state'), 'THAWED');
      sleeper.kill('SIGKILL');
      await cgroup.remove(100, true);
      await waitUntil(() => readFileSync(join(frozen, 'cgroup.procs'), 'utf8') === '');
      rmdirSync(frozen);
    }
  });

  // Without root, the container's cgroup goes below a cgroup delegated to the
  // user, whose own processes must first move to a leaf ("no internal
  // processes"); after the last container, everything is put back.
  test('a delegated cgroup: its processes move to a leaf while containers exist; after the last one, all is as before', async (t) => {
    const v2 = detectCgroups().v2;
    if (!isRoot || !v2?.writable) return t.skip('needs root (to make a cgroup to delegate) and a cgroup2 hierarchy');
    const delegated = join(v2.mountPoint, `cfs-test-${randomBytes(3).toString('hex')}`);
    mkdirSync(delegated);
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' }); // the shell that shares the delegated cgroup
    const layout = { version: 2, mountPoint: v2.mountPoint, base: delegated } as const;
    // The limits need pids and memory where the machine has them in v2; elsewhere, the moves and folders are the same.
    const controllers = LIMIT_CONTROLLERS.filter((name) => readFileSync(join(delegated, 'cgroup.controllers'), 'utf8').includes(name));
    const read = (file: string): string => readFileSync(join(delegated, file), 'utf8').trim();
    try {
      writeFileSync(join(delegated, 'cgroup.procs'), String(sleeper.pid));
      const before = { children: readdirSync(delegated, { withFileTypes: true }).filter((e) => e.isDirectory()).length, control: read('cgroup.subtree_control') };
      const first = new Cgroup(layout, `cfs-test-${randomBytes(3).toString('hex')}`);
      const second = new Cgroup(layout, `cfs-test-${randomBytes(3).toString('hex')}`);
      for (const cgroup of [first, second]) {
        enableControllers(delegated, controllers);
        mkdirSync(cgroup.folders[0]!);
      }
      assert.equal(read('cgroup.procs'), '', 'no process left in the delegated cgroup itself');
      assert.equal(readFileSync(join(delegated, CGROUP_LEAF, 'cgroup.procs'), 'utf8').trim(), String(sleeper.pid));
      assert.deepEqual(read('cgroup.subtree_control').split(' ').filter(Boolean).sort(), [...controllers].sort());
      await first.remove();
      assert.ok(existsSync(join(delegated, CGROUP_LEAF)), 'while the second container exists, nothing is put back');
      await second.remove();
      assert.deepEqual(readdirSync(delegated, { withFileTypes: true }).filter((e) => e.isDirectory()).length, before.children);
      assert.equal(read('cgroup.subtree_control'), before.control);
      assert.equal(read('cgroup.procs'), String(sleeper.pid), 'the process is back where it was');
    } finally {
      sleeper.kill('SIGKILL');
      await waitUntil(() => !/populated 1/.test(readFileSync(join(delegated, 'cgroup.events'), 'utf8')));
      for (const folder of [join(delegated, CGROUP_PARENT), join(delegated, CGROUP_LEAF), delegated]) {
        for (const child of existsSync(folder) ? readdirSync(folder, { withFileTypes: true }).filter((e) => e.isDirectory()) : []) rmdirSync(join(folder, child.name));
        if (existsSync(folder)) rmdirSync(folder);
      }
    }
  });

  test('without root, step 5 says that cgroups need root (exit 125, no stack trace)', async (t) => {
    if (!isRoot || !userNamespacesWork()) return t.skip('needs root, to run as nobody in a user namespace');
    const result = await runContainer(stepNumbered(5), 'solutions', ['true'], { asUser: { uid: 65534, gid: 65534 }, env: { HOME: '/tmp' } });
    assert.equal(result.status, 125, result.stderr);
    assert.match(result.stderr, /cgroups need root/);
    assert.match(result.stderr, /sudo npm run step N/);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });
});

describe('overlay layer folders', () => {
  test('rootless, overlayfs needs Linux 5.11: an older kernel is named before any container starts', () => {
    assert.match(overlayBlocker({ release: '5.10.0-21-amd64', major: 5, minor: 10 }, true) ?? '', /only since Linux 5\.11, and this kernel is 5\.10\.0-21-amd64/);
    assert.equal(overlayBlocker({ release: '5.11.0', major: 5, minor: 11 }, true), undefined);
    assert.equal(overlayBlocker({ release: '4.19.0', major: 4, minor: 19 }, false), undefined, 'root mounts overlays on any kernel');
  });
  test('created empty per container, removed with their contents', () => {
    const id = `cfs-test-${randomBytes(3).toString('hex')}`;
    const layers = createLayers(id);
    try {
      for (const folder of [layers.upper, layers.work, layers.merged]) assert.ok(existsSync(folder), folder);
      writeFileSync(join(layers.upper, 'written'), 'x');
      removeLayers(id);
      assert.equal(existsSync(layers.dir), false);
    } finally {
      rmSync(layers.dir, { recursive: true, force: true });
    }
  });
  test("a killed run's folders go on the next start; a live one's stay", () => {
    const stale = layersOf(idNaming(deadPid()));
    const live = layersOf(idNaming(process.pid));
    mkdirSync(stale.upper, { recursive: true });
    mkdirSync(live.upper, { recursive: true });
    try {
      removeStaleLayers();
      assert.equal(existsSync(stale.dir), false);
      assert.equal(existsSync(live.dir), true);
    } finally {
      rmSync(stale.dir, { recursive: true, force: true });
      rmSync(live.dir, { recursive: true, force: true });
    }
  });
});

describe('struct ifreq, and ffi-rs Buffers', () => {
  test('40 bytes, the name NUL-terminated at offset 0', () => {
    const struct = ifreq('lo');
    assert.equal(struct.length, 40);
    assert.equal(struct.toString('latin1', 0, 3), 'lo\0');
    assert.throws(() => ifreq('a-name-far-too-long'), /at most 15 bytes/);
  });
  // ffi-rs passes a Buffer's own memory to C (not a copy): what the kernel
  // writes into the struct is in the Buffer afterwards. SIOCGIFFLAGS only reads.
  test("SIOCGIFFLAGS writes the host's lo flags into the Buffer", () => {
    const fd = socket(AF_INET, SOCK_DGRAM, 0);
    try {
      const flags = getInterfaceFlags(fd, 'lo');
      assert.ok(flags & IFF_LOOPBACK, `flags 0x${flags.toString(16)} should include IFF_LOOPBACK`);
      assert.ok(flags & IFF_UP, "the host's lo is up");
    } finally {
      close(fd);
    }
  });
});

describe('capabilities', () => {
  test('the names match linux/capability.h numbers', () => {
    assert.equal(capabilityNumber('CAP_NET_ADMIN'), 12);
    assert.equal(capabilityNumber('CAP_SYS_MODULE'), 16);
    assert.equal(capabilityNumber('CAP_SYS_ADMIN'), 21);
    assert.equal(capabilityNumber('CAP_SYS_TIME'), 25);
    assert.equal(capabilityNumber('CAP_MKNOD'), 27);
    assert.equal(capabilityNumber('CAP_CHECKPOINT_RESTORE'), 40);
    assert.equal(CAPABILITY_NAMES.length, 41);
  });
  test('the dangerous ones are those the kernel knows, each with a reason; the everyday ones are kept', () => {
    const last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
    const dropped = dangerousCapabilities();
    assert.ok(dropped.every((capability) => capability.number <= last && capability.why.length > 0));
    const names = dropped.map((capability) => capability.name);
    for (const name of ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_MODULE', 'CAP_SYS_TIME', 'CAP_SYS_BOOT', 'CAP_SYS_RAWIO', 'CAP_SYS_PTRACE', 'CAP_MKNOD']) {
      assert.ok(names.includes(name), name);
    }
    for (const name of ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_KILL', 'CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE']) {
      assert.ok(!names.includes(name), name);
    }
  });
  test('a /proc/<pid>/status mask reads as names', () => {
    assert.deepEqual(capabilitiesIn('0000000000200001'), ['CAP_CHOWN', 'CAP_SYS_ADMIN']);
    assert.deepEqual(capabilitiesIn('0'), []);
  });
});
