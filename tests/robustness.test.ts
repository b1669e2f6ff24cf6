// Behaviour a room full of machines depends on: signals end containers, a
// killed runtime takes its container with it, nothing is left on the host,
// an interactive shell behaves, and many containers run at once.
//
// Every runtime a test starts is ended, with its container, on every path
// (an assertion fails, a wait times out, the test's own timeout runs out):
// on a slow machine the suite fails where it must, and never hangs.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { compile } from '../workshop/compile.mjs';
import { Cgroup, cgroupLayout } from '../lib/container/cgroups.js';
import { multithreadedCause } from '../lib/host/machine.js';
import { LAYERS_PARENT, layersOf } from '../lib/container/overlay.js';
import { idNaming } from '../lib/container/stale.js';
import { DEFAULT_ROOTFS, REPO_ROOT } from '../lib/paths.js';
import { STEPS } from '../workshop/steps.js';
import { commandLineIs, hostProcesses, lines, runContainer, runtimeFile, slowness, stepNumbered } from '../workshop/harness.js';
import { end, exited, startRuntime, uniqueSleep, waitUntil } from './helpers.js';

const latest = STEPS[STEPS.length - 1]!;
/** A test's own limit: past it, node:test cancels it and its `t.after` hooks end what it started. */
const TEST_TIMEOUT = 60_000 * slowness();

function hostMounts(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}

describe('signals', { concurrency: 2, timeout: TEST_TIMEOUT }, () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} ends a PID 1 that has no handler for it, and nothing is left running`, async (t) => {
      const sleeper = uniqueSleep();
      const runtime = await startRuntime(t, sleeper, [sleeper]);
      await waitUntil(() => hostProcesses(sleeper).length === 1, 'the container to start');
      runtime.kill(signal);
      const { status } = await exited(runtime);
      // sleep as PID 1 ignores the signal: the runtime escalates to SIGKILL (128 + 9).
      assert.equal(status, 137);
      assert.deepEqual(hostProcesses(sleeper), []);
    });
  }

  test('SIGTERM reaches a PID 1 that handles it, which exits on its own terms', async (t) => {
    const sleeper = uniqueSleep();
    const runtime = await startRuntime(t, ['sh', '-c', `trap "exit 42" TERM; ${sleeper.join(' ')} & wait`], [sleeper]);
    await waitUntil(() => hostProcesses(sleeper).length === 1, 'the container to start'); // the trap is set by then
    runtime.kill('SIGTERM');
    assert.equal((await exited(runtime)).status, 42);
  });

  test('a runtime killed with SIGKILL takes its whole container with it', async (t) => {
    const [first, second] = [uniqueSleep(), uniqueSleep()];
    const runtime = await startRuntime(t, ['sh', '-c', `${first.join(' ')} & ${second.join(' ')}`], [first, second]);
    await waitUntil(() => hostProcesses(first).length === 1 && hostProcesses(second).length === 1, 'the container to start');
    runtime.kill('SIGKILL');
    await exited(runtime);
    await waitUntil(() => hostProcesses(first).length === 0 && hostProcesses(second).length === 0, 'the container to be gone', 5_000);
  });

  test('exit status 128+N when the command is killed by signal N', async (t) => {
    const result = await runContainer(latest, 'solutions', ['sh', '-c', 'sleep 30 & kill -USR1 $!; wait $!; exit $?']);
    assert.equal(result.status, 128 + 10, result.stderr); // from the shell: SIGUSR1 is 10
    const sleeper = uniqueSleep();
    const killedRuntime = await startRuntime(t, sleeper, [sleeper], stepNumbered(1));
    await waitUntil(() => hostProcesses(sleeper).length === 1, 'the container to start');
    for (const pid of hostProcesses(sleeper)) process.kill(pid, 'SIGUSR2');
    assert.equal((await exited(killedRuntime)).status, 128 + 12);
  });
});

describe('nothing leaks to the host', { timeout: TEST_TIMEOUT }, () => {
  test('after normal runs, a failed setup, a failed exec and a killed run: same mounts, no processes', async (t) => {
    const mountsBefore = hostMounts();
    assert.equal((await runContainer(latest, 'solutions', ['true'])).status, 0);
    assert.equal((await runContainer(latest, 'solutions', ['no-such-command'])).status, 127);
    // A setup that fails after the cgroup exists: the layers folder (in a private mount namespace) has no free inode.
    const failedId = idNaming(process.pid, 'rb');
    const bundle = await compile(runtimeFile(latest, 'solutions'));
    const noInodes = `mkdir -p "$1" && mount -t tmpfs -o nr_inodes=1,size=64k,mode=0700 none "$1" && shift && exec "$@"`;
    const failedSetup = spawnSync('unshare', ['--mount', 'sh', '-c', noInodes, 'sh', LAYERS_PARENT, process.execPath, bundle, 'run', '--id', failedId, 'true'], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
    assert.equal(failedSetup.status, 125, failedSetup.stderr);
    assert.match(failedSetup.stderr, /no space \(or no free inodes\)/);
    assert.deepEqual(new Cgroup(cgroupLayout(), failedId).folders.filter((folder) => existsSync(folder)), [], 'the cgroup made before the failure is removed');
    const sleeper = uniqueSleep();
    const runtime = await startRuntime(t, sleeper, [sleeper]);
    await waitUntil(() => hostProcesses(sleeper).length === 1, 'the container to start');
    runtime.kill('SIGKILL');
    await exited(runtime);
    await waitUntil(() => hostProcesses(sleeper).length === 0, 'the container to be gone', 5_000);
    assert.equal(hostMounts(), mountsBefore);
  });

  test('a cleanup that fails says so before the runtime exits', () => {
    const root = mkdtempSync(`${tmpdir()}/cfs-cleanup-warning-`);
    try {
      const run = spawnSync(process.execPath, ['--import', 'tsx', `${REPO_ROOT}/tests/fixtures/cleanup-warning.ts`, root], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stderr, /● could not remove the cgroup .*containers-from-scratch\/c1 \(ENOTEMPTY\)/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("a runtime in another PID namespace (sharing the cgroup tree) leaves this one's containers alone", async () => {
    // A container of this namespace, just created (no process in its cgroup yet): its maker, this process, is alive.
    const id = idNaming(process.pid);
    const cgroup = new Cgroup(cgroupLayout(), id);
    for (const folder of cgroup.folders) mkdirSync(folder, { recursive: true });
    mkdirSync(layersOf(id).upper, { recursive: true });
    try {
      const bundle = await compile(runtimeFile(latest, 'solutions'));
      // There, this process's pid means nothing (or another process): before, that made its cgroup and layers "stale".
      const run = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, bundle, 'run', 'true'], { encoding: 'utf8', timeout: 60_000 * slowness() });
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(cgroup.folders.filter((folder) => !readdirSafe(folder)), [], 'the cgroup is still there');
      assert.equal(readdirSafe(layersOf(id).dir), true, 'the layers are still there');
    } finally {
      await cgroup.remove(100, true);
      rmSync(layersOf(id).dir, { recursive: true, force: true });
    }
  });

  test("a killed check's cgroup and layer folders (cfs-check-<its pid>-…) go with the next run", async () => {
    const dead = spawnSync('true').pid!;
    const id = idNaming(dead, 'cfs-check');
    const cgroup = new Cgroup(cgroupLayout(), id);
    for (const folder of cgroup.folders) mkdirSync(folder, { recursive: true });
    mkdirSync(layersOf(id).upper, { recursive: true });
    try {
      assert.equal((await runContainer(latest, 'solutions', ['true'])).status, 0);
      assert.deepEqual(cgroup.folders.filter((folder) => readdirSafe(folder)), []);
      assert.equal(readdirSafe(layersOf(id).dir), false);
    } finally {
      await cgroup.remove(100, true);
      rmSync(layersOf(id).dir, { recursive: true, force: true });
    }
  });
});

function readdirSafe(folder: string): boolean {
  try {
    readdirSync(folder);
    return true;
  } catch {
    return false;
  }
}

describe('an interactive shell on a terminal', { timeout: TEST_TIMEOUT }, () => {
  test('typing, Ctrl-C interrupting the foreground job, exit with a status', async (t) => {
    if (spawnSync('script', ['--version']).error) {
      t.skip('util-linux `script` (a pseudo-terminal) is not installed');
      return;
    }
    const bundle = await compile(runtimeFile(latest, 'solutions'));
    const sleeper = ['sleep', '300'];
    const terminal = spawn('script', ['-qfec', `${process.execPath} ${bundle} run`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    t.after(() => end(terminal, [sleeper]));
    let screen = '';
    terminal.stdout.setEncoding('utf8').on('data', (chunk: string) => (screen += chunk));
    const type = async (keys: string, expect: RegExp): Promise<void> => {
      terminal.stdin.write(keys);
      await waitUntil(() => expect.test(screen), `${JSON.stringify(expect.source)} on the screen; it shows:\n${screen}`);
    };
    await waitUntil(() => /container:\/# $/.test(screen), 'the prompt');
    await type('sleep 300\n', /sleep 300\r?\n/);
    await sleep(300 * slowness());
    await type('\x03', /\^C/); // Ctrl-C: the shell survives, the sleep does not
    await type('echo pid=$$ host=$(hostname)\n', /pid=1 host=container/);
    terminal.stdin.write('exit 5\n');
    const { status } = await exited(terminal);
    assert.equal(status, 5, screen);
  });
});

describe('many containers at once', { timeout: TEST_TIMEOUT * 2 }, () => {
  test('20 containers started together all get their own hostname, PID 1 and root', async () => {
    const rootfs = readdirSync(DEFAULT_ROOTFS).sort().join(' ');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        runContainer(latest, 'solutions', ['sh', '-c', 'hostname; echo $$; ls /'], { options: ['--hostname', `c${index}`], timeoutMs: 120_000 * slowness() }),
      ),
    );
    results.forEach((result, index) => {
      assert.equal(result.status, 0, result.stderr);
      const [hostname, pid, ...root] = lines(result.stdout);
      assert.equal(hostname, `c${index}`);
      assert.equal(pid, '1');
      assert.equal(root.sort().join(' '), rootfs);
    });
  });
});

describe('slow machines and emulators (qemu-user)', () => {
  test("a process is found by its command line, also when an emulator's path comes first", () => {
    assert.equal(commandLineIs('sleep\x00600\x00', ['sleep', '600']), true);
    assert.equal(commandLineIs('/usr/libexec/qemu-binfmt/aarch64-binfmt-P\x00/usr/bin/sleep\x00sleep\x00600\x00', ['sleep', '600']), true);
    assert.equal(commandLineIs('/usr/bin/qemu-aarch64-static\x00/usr/bin/sleep\x00sleep\x00600\x00', ['sleep', '600']), true);
    assert.equal(commandLineIs('sleep\x00601\x00', ['sleep', '600']), false);
    assert.equal(commandLineIs('env\x00/usr/bin/sleep\x00sleep\x00600\x00', ['sleep', '600']), false, 'only an emulator may come first');
    assert.equal(commandLineIs('/usr/libexec/qemu-binfmt/aarch64-binfmt-P\x00/usr/bin/sleep\x00sleep\x00600\x00', ['sleep']), false);
  });

  test('a user namespace refused to a multithreaded program is blamed on the emulator, not on AppArmor or seccomp', () => {
    const cause = multithreadedCause('unshare failed: Invalid argument', 2);
    assert.match(cause ?? '', /every program here runs with 2 threads \(an emulator such as qemu-user adds its own\)/);
    assert.doesNotMatch(cause ?? '', /AppArmor|seccomp/);
    assert.equal(multithreadedCause('unshare failed: Invalid argument', 1), undefined, 'a real machine: another cause');
    assert.equal(multithreadedCause('unshare failed: Operation not permitted', 2), undefined, 'EPERM: a policy, not threads');
  });

  test('a test whose wait for its container runs out ends its runtime and container, and its file finishes', { timeout: 60_000 * slowness() }, () => {
    // tests/fixtures/container-never-seen.ts starts a runtime, then waits for something that never
    // comes, as the tests above did under qemu-user (hostProcesses missed the emulator's prefix).
    const sleeper = uniqueSleep();
    try {
      const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', `${REPO_ROOT}/tests/fixtures/container-never-seen.ts`], {
        encoding: 'utf8',
        env: { ...process.env, CFS_SLEEPER: sleeper.join(' '), NODE_TEST_CONTEXT: undefined }, // a test run of its own, not a child of ours
        timeout: 50_000 * slowness(),
        killSignal: 'SIGKILL',
      });
      assert.equal(run.signal, null, `the test file finished by itself\n${run.stdout}`);
      assert.notEqual(run.status, 0);
      assert.match(run.stdout, /timed out waiting for a line the container never prints/);
      assert.deepEqual(hostProcesses(sleeper), [], 'its runtime and container were ended');
    } finally {
      for (const pid of hostProcesses(sleeper)) process.kill(pid, 'SIGKILL');
    }
  });
});
