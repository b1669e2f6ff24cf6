// Mistakes a participant makes, each answered with one clear paragraph (no
// stack trace) and the right exit code: 2 for usage, 125 when the runtime
// cannot set the container up, 126/127 for the command itself.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, describe, test } from 'node:test';
import { runContainer, stepNumbered } from '../workshop/harness.js';
import { copyOfRepository } from './helpers.js';

const step4 = stepNumbered(4);
const scratch = mkdtempSync(`${tmpdir()}/cfs-bad-input-`);
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Explained in one paragraph: a ✗ line, a fix, and no stack trace. */
function assertExplained(stderr: string, pattern: RegExp): void {
  assert.match(stderr, /✗ /);
  assert.match(stderr, pattern);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace without --debug');
}

describe('--rootfs', () => {
  test('pointing at nothing: 125 and what to do', async () => {
    const result = await runContainer(step4, 'solutions', ['true'], { options: ['--rootfs', '/no/such/rootfs'] });
    assert.equal(result.status, 125);
    assertExplained(result.stderr, /\/no\/such\/rootfs is not usable/);
  });

  test('pointing at a file: 125', async () => {
    const file = `${scratch}/a-file`;
    writeFileSync(file, '');
    const result = await runContainer(step4, 'solutions', ['true'], { options: ['--rootfs', file] });
    assert.equal(result.status, 125);
    assertExplained(result.stderr, /not usable/);
  });

  test('a folder without /bin/sh: 125, saying so', async () => {
    const empty = `${scratch}/no-shell`;
    mkdirSync(`${empty}/proc`, { recursive: true });
    mkdirSync(`${empty}/dev`);
    const result = await runContainer(step4, 'solutions', ['true'], { options: ['--rootfs', empty] });
    assert.equal(result.status, 125);
    assertExplained(result.stderr, /bin\/sh/);
  });

  test('a relative path is taken from the current folder', async () => {
    const result = await runContainer(step4, 'solutions', ['sh', '-c', 'ls /bin/sh'], { options: ['--rootfs', 'rootfs'] });
    assert.equal(result.status, 0, result.stderr);
  });
});

describe('the command', () => {
  test('not found in the container: 127, explained', async () => {
    const result = await runContainer(step4, 'solutions', ['node']); // on the host, not in rootfs/
    assert.equal(result.status, 127);
    assertExplained(result.stderr, /not found in the container/);
  });

  test('not executable: 126, explained', async () => {
    const result = await runContainer(step4, 'solutions', ['/etc/os-release']);
    assert.equal(result.status, 126);
    assertExplained(result.stderr, /EACCES/);
  });

  test('empty: exit 2 with the usage', async () => {
    const result = await runContainer(step4, 'solutions', ['']);
    assert.equal(result.status, 2);
    assertExplained(result.stderr, /the command is empty[\s\S]*usage:/);
  });
});

describe('options', () => {
  test('an unknown option: exit 2 with the usage', async () => {
    const result = await runContainer(step4, 'solutions', ['true'], { options: ['--frobnicate'] });
    assert.equal(result.status, 2);
    assertExplained(result.stderr, /unknown option --frobnicate[\s\S]*usage:/);
  });

  test('a limit that is not a number: exit 2', async () => {
    const result = await runContainer(step4, 'solutions', ['true'], { options: ['--pids-max', 'lots'] });
    assert.equal(result.status, 2);
    assertExplained(result.stderr, /--pids-max must be a positive whole number/);
  });

  test('a setup call that fails names the call, the errno and a hint (--debug adds the stack)', async () => {
    const options = ['--hostname', 'h'.repeat(80)];
    const result = await runContainer(step4, 'solutions', ['true'], { options });
    assert.equal(result.status, 125);
    assertExplained(result.stderr, /sethostname\("h+", 80\) failed: EINVAL \(Invalid argument\)\n  Hostnames are at most 64 characters/);
    const debug = await runContainer(step4, 'solutions', ['true'], { options: [...options, '--debug'] });
    assert.match(debug.stderr, /LibcError: sethostname[\s\S]*\n\s+at /);
  });
});

describe('a missing rootfs', () => {
  test('is built automatically, offline, on the first run', async () => {
    const copy = copyOfRepository({ withRootfs: false });
    try {
      const result = spawnSync(process.execPath, ['cli/launch.mjs', 'cli/step.ts', '4', '--solution', '--', 'sh', '-c', 'echo inside'], {
        cwd: copy,
        encoding: 'utf8',
        env: { ...process.env, FORCE_COLOR: '0' },
        input: '',
      });
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stderr, /rootfs\/ is missing: building it now/);
      assert.equal(result.stdout, 'inside\n');
      assert.ok(existsSync(`${copy}/rootfs/bin/sh`));
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});

describe('an unreadable rootfs folder', () => {
  test('is reported, not crashed on', async () => {
    const locked = `${scratch}/locked`;
    mkdirSync(`${locked}/inner`, { recursive: true });
    chmodSync(locked, 0o000);
    const result = await runContainer(step4, 'solutions', ['true'], { options: ['--rootfs', `${locked}/inner`], asUser: { uid: 65534, gid: 65534 } });
    chmodSync(locked, 0o755);
    assert.equal(result.status, 125);
    assertExplained(result.stderr, /not usable/);
  });
});
