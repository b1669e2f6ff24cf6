// The libc layer on its own: flag decoding, syscall numbers, argv marshalling,
// errno → error text.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, test } from 'node:test';
import { CLONE_FLAGS, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWUTS, MOUNT_FLAGS, MS_BIND, MS_PRIVATE, MS_REC, decodeFlags, syscallNumber } from '../lib/kernel/constants.js';
import { LibcError, errnoName, reportError } from '../lib/kernel/errors.js';
import { chdir, cStringArray, unshare } from '../lib/kernel/libc.js';
import { REPO_ROOT } from '../lib/paths.js';

describe('flag decoding for --trace', () => {
  test('names each flag', () => {
    assert.equal(decodeFlags(CLONE_NEWUTS | CLONE_NEWPID, CLONE_FLAGS), 'CLONE_NEWUTS|CLONE_NEWPID');
    assert.equal(decodeFlags(MS_REC | MS_PRIVATE, MOUNT_FLAGS), 'MS_REC|MS_PRIVATE');
    assert.equal(decodeFlags(MS_BIND, MOUNT_FLAGS), 'MS_BIND');
  });
  test('keeps unknown bits as hex, and 0 as 0', () => {
    assert.equal(decodeFlags(CLONE_NEWNS | 0x1, CLONE_FLAGS), 'CLONE_NEWNS|0x1');
    assert.equal(decodeFlags(0, CLONE_FLAGS), '0');
  });
});

describe('syscall numbers', () => {
  test('pivot_root is 155 on x86_64 and 41 on arm64', () => {
    assert.equal(syscallNumber('pivot_root', 'x64'), 155);
    assert.equal(syscallNumber('pivot_root', 'arm64'), 41);
  });
  test('an unsupported architecture is named in the error', () => {
    assert.throws(() => syscallNumber('pivot_root', 'riscv64'), /riscv64/);
  });
});

describe('argv marshalling', () => {
  test('a char *argv[] is one pointer per string, then NULL', () => {
    const argv = cStringArray(['sh', '-c', 'echo hi']);
    assert.equal(argv.length, 8 * 4);
    for (let index = 0; index < 3; index++) assert.notEqual(argv.readBigUInt64LE(8 * index), 0n);
    assert.equal(argv.readBigUInt64LE(8 * 3), 0n);
  });
  test('execvp passes every argument through unchanged (empty, spaces, UTF-8)', () => {
    const args = ['printf', '[%s]', 'plain', '', 'two words', 'ünïcødé ✓', '--flag=x'];
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'tests/fixtures/exec.ts', ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(result.stderr, '');
    assert.equal(result.stdout, '[plain][][two words][ünïcødé ✓][--flag=x]');
  });
  test('execvp of a missing program exits 127 with an explanation and no stack', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'tests/fixtures/exec.ts', 'no-such-program'], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
    assert.equal(result.status, 127);
    assert.match(result.stderr, /execvp\("no-such-program", \["no-such-program"\]\) failed: ENOENT/);
    assert.match(result.stderr, /not found in the container/);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });
  test('execvp of a file that is not executable exits 126', () => {
    const folder = mkdtempSync(`${tmpdir()}/cfs-libc-`);
    const file = `${folder}/not-executable`;
    writeFileSync(file, 'echo never\n', { mode: 0o644 });
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'tests/fixtures/exec.ts', file], { cwd: REPO_ROOT, encoding: 'utf8' });
    rmSync(folder, { recursive: true });
    assert.equal(result.status, 126);
    assert.match(result.stderr, /EACCES/);
  });
});

describe('what execvp does before the exec', () => {
  test('on kernels without close_range(CLOSE_RANGE_CLOEXEC), each descriptor from 3 up is marked close-on-exec', () => {
    // dup2 makes descriptors without FD_CLOEXEC, as a careless caller leaves them.
    const script = `import { closeOnExecOneByOne, dup2, fcntl } from './lib/kernel/libc.ts';
      dup2(1, 40); dup2(1, 41); dup2(1, 42);
      const before = [fcntl(40, 1), fcntl(41, 1), fcntl(42, 1)];
      closeOnExecOneByOne(41);
      console.log(JSON.stringify({ before, after: [fcntl(40, 1), fcntl(41, 1), fcntl(42, 1)] }));`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(result.stderr, '');
    assert.deepEqual(JSON.parse(result.stdout), { before: [0, 0, 0], after: [0, 1, 1] }); // F_GETFD: 1 is FD_CLOEXEC; below 41 untouched
  });
});

describe('errno → error text', () => {
  test('errno numbers get their names', () => {
    assert.equal(errnoName(1), 'EPERM');
    assert.equal(errnoName(22), 'EINVAL');
  });
  test('a failing call throws a LibcError with the call, its arguments, the errno name and a hint', () => {
    // The kernel refuses CLONE_NEWUSER to a multi-threaded process, and Node is one.
    const error = (() => {
      try {
        unshare(CLONE_NEWUSER);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    assert.ok(error instanceof LibcError);
    assert.equal(error.call, 'unshare');
    assert.equal(error.args, 'CLONE_NEWUSER');
    assert.equal(error.errnoName, 'EINVAL');
    assert.equal(error.message, 'unshare(CLONE_NEWUSER) failed: EINVAL (Invalid argument)');
    assert.match(error.fix, /multi-threaded/);
  });
  test('calls without a specific hint point at the man page', () => {
    assert.throws(() => chdir('/no/such/folder'), (error: unknown) => error instanceof LibcError && error.errnoName === 'ENOENT');
    assert.throws(() => chdir('/etc/hostname'), (error: unknown) => error instanceof LibcError && /man 2 chdir/.test(error.fix));
  });
  test('the report is one paragraph, the stack only with --debug', () => {
    const script = `import { reportError, WorkshopError } from './lib/kernel/errors.ts'; process.exitCode = reportError(new WorkshopError('it broke', 'do this'));`;
    const run = (env: NodeJS.ProcessEnv) =>
      spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0', ...env } });
    const plain = run({});
    assert.equal(plain.status, 125);
    assert.equal(plain.stderr, '✗ it broke\n  do this\n  (add --debug to see the stack trace)\n');
    assert.match(run({ CFS_DEBUG: '1' }).stderr, /WorkshopError: it broke\n\s+at /);
    assert.equal(typeof reportError, 'function');
  });
});
