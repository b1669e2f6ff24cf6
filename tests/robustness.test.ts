// Behaviour a room full of machines depends on: signals end containers, a
// killed runtime takes its container with it, nothing is left on the host,
// an interactive shell behaves, and many containers run at once.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { compile } from '../workshop/compile.mjs';
import { DEFAULT_ROOTFS } from '../lib/paths.js';
import { STEPS } from '../workshop/steps.js';
import { hostProcesses, lines, runContainer, runtimeFile, stepNumbered, waitFor } from '../workshop/harness.js';

const latest = STEPS[STEPS.length - 1]!;
const step4 = stepNumbered(4);

/** Wait for `condition`, or fail naming what did not happen. */
async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  if (!(await waitFor(condition, timeoutMs))) throw new Error(`timed out waiting for ${what}`);
}

function exited(child: ChildProcess): Promise<{ status: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.on('exit', (status, signal) => resolve({ status, signal })));
}

/** A `sleep` with a unique duration, so the test can find exactly its processes. */
function uniqueSleep(): string[] {
  return ['sleep', `${randomInt(100_000, 999_999)}`];
}

function hostMounts(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}

/** Start `node <compiled step> run -- command...` in the background. */
async function startRuntime(command: string[], step = latest): Promise<ChildProcess> {
  const bundle = await compile(runtimeFile(step, 'solutions'));
  return spawn(process.execPath, [bundle, 'run', '--', ...command], { stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('signals', { concurrency: 2 }, () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} ends a PID 1 that has no handler for it, and nothing is left running`, async () => {
      const sleeper = uniqueSleep();
      const runtime = await startRuntime(sleeper);
      await waitUntil(() => hostProcesses(sleeper).length === 1, 'the container to start');
      runtime.kill(signal);
      const { status } = await exited(runtime);
      // sleep as PID 1 ignores the signal: the runtime escalates to SIGKILL (128 + 9).
      assert.equal(status, 137);
      assert.deepEqual(hostProcesses(sleeper), []);
    });
  }

  test('SIGTERM reaches a PID 1 that handles it, which exits on its own terms', async () => {
    const sleeper = uniqueSleep();
    const runtime = await startRuntime(['sh', '-c', `trap "exit 42" TERM; ${sleeper.join(' ')} & wait`]);
    await waitUntil(() => hostProcesses(sleeper).length === 1, 'the container to start'); // the trap is set by then
    runtime.kill('SIGTERM');
    assert.equal((await exited(runtime)).status, 42);
  });

  test('a runtime killed with SIGKILL takes its whole container with it', async () => {
    const [first, second] = [uniqueSleep(), uniqueSleep()];
    const runtime = await startRuntime(['sh', '-c', `${first.join(' ')} & ${second.join(' ')}`]);
    await waitUntil(() => hostProcesses(first).length === 1 && hostProcesses(second).length === 1, 'the container to start');
    runtime.kill('SIGKILL');
    await exited(runtime);
    await waitUntil(() => hostProcesses(first).length === 0 && hostProcesses(second).length === 0, 'the container to be gone', 5_000);
  });

  test('exit status 128+N when the command is killed by signal N', async () => {
    const result = await runContainer(latest, 'solutions', ['sh', '-c', 'sleep 30 & kill -USR1 $!; wait $!; exit $?']);
    assert.equal(result.status, 128 + 10, result.stderr); // from the shell: SIGUSR1 is 10
    const sleeper = uniqueSleep();
    const killedRuntime = await startRuntime(sleeper, stepNumbered(1));
    await waitUntil(() => hostProcesses(sleeper).length === 1, 'the container to start');
    for (const pid of hostProcesses(sleeper)) process.kill(pid, 'SIGUSR2');
    assert.equal((await exited(killedRuntime)).status, 128 + 12);
  });
});

describe('nothing leaks to the host', () => {
  test('after normal runs, a failed setup, a failed exec and a killed run: same mounts, no processes', async () => {
    const mountsBefore = hostMounts();
    assert.equal((await runContainer(latest, 'solutions', ['true'])).status, 0);
    assert.equal((await runContainer(latest, 'solutions', ['no-such-command'])).status, 127);
    const failedSetup = await runContainer(step4, 'solutions', ['true'], { options: ['--hostname', 'x'.repeat(80)] });
    assert.equal(failedSetup.status, 125, failedSetup.stderr); // sethostname EINVAL, after the mount namespace exists
    const sleeper = uniqueSleep();
    const runtime = await startRuntime(sleeper);
    await waitUntil(() => hostProcesses(sleeper).length === 1, 'the container to start');
    runtime.kill('SIGKILL');
    await exited(runtime);
    await waitUntil(() => hostProcesses(sleeper).length === 0, 'the container to be gone', 5_000);
    assert.equal(hostMounts(), mountsBefore);
  });
});

describe('an interactive shell on a terminal', () => {
  test('typing, Ctrl-C interrupting the foreground job, exit with a status', async (t) => {
    if (spawnSync('script', ['--version']).error) {
      t.skip('util-linux `script` (a pseudo-terminal) is not installed');
      return;
    }
    const bundle = await compile(runtimeFile(latest, 'solutions'));
    const terminal = spawn('script', ['-qfec', `${process.execPath} ${bundle} run`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    terminal.stdout.setEncoding('utf8').on('data', (chunk: string) => (screen += chunk));
    const type = async (keys: string, expect: RegExp): Promise<void> => {
      terminal.stdin.write(keys);
      await waitUntil(() => expect.test(screen), `${JSON.stringify(expect.source)} on the screen; it shows:\n${screen}`);
    };
    await waitUntil(() => /container:\/# $/.test(screen), 'the prompt');
    await type('sleep 300\n', /sleep 300\r?\n/);
    await sleep(300);
    await type('\x03', /\^C/); // Ctrl-C: the shell survives, the sleep does not
    await type('echo pid=$$ host=$(hostname)\n', /pid=1 host=container/);
    terminal.stdin.write('exit 5\n');
    const { status } = await exited(terminal);
    assert.equal(status, 5, screen);
  });
});

describe('many containers at once', () => {
  test('20 containers started together all get their own hostname, PID 1 and root', async () => {
    const rootfs = readdirSync(DEFAULT_ROOTFS).sort().join(' ');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        runContainer(latest, 'solutions', ['sh', '-c', 'hostname; echo $$; ls /'], { options: ['--hostname', `c${index}`], timeoutMs: 120_000 }),
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
