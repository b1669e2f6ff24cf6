// node --import tsx --test tests/rootfs-builder.test.ts   (as root: the tests use chroot and mknod)
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync,
  statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { buildRootfs, checkRootfs, importTarball, type BuildReport } from '../rootfs-builder/build.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'rootfs-builder-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

let counter = 0;
/** A path in the scratch folder that does not exist yet. */
function freshPath(name: string): string {
  return join(scratch, `${++counter}-${name}`);
}

/** Every path under `root` with its type, size and mode: two equal snapshots mean two equal trees. */
function snapshot(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .sort()
    .map((path) => {
      const stat = lstatSync(join(root, path));
      return `${path} ${stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? 'symlink' : stat.size} ${stat.mode.toString(8)}`;
    });
}

// A tiny tar writer, to craft archives host tools refuse to make (../evil, writes through symlinks).

interface EntryOptions {
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6';
  mode?: number;
  data?: string;
  linkTarget?: string;
}

/** One ustar entry: a 512-byte header, then the data padded to a multiple of 512 bytes. */
function tarEntry(name: string, { type = '0', mode = 0o644, data = '', linkTarget = '' }: EntryOptions = {}): Buffer {
  const content = Buffer.from(data);
  const header = Buffer.alloc(512);
  const octal = (value: number, offset: number, length: number) =>
    header.write(value.toString(8).padStart(length - 1, '0'), offset, length - 1, 'latin1');
  header.write(name, 0, 100);
  octal(mode, 100, 8);
  octal(0, 108, 8); // uid
  octal(0, 116, 8); // gid
  octal(content.length, 124, 12);
  octal(0, 136, 12); // mtime
  header.write(type, 156, 1);
  header.write(linkTarget, 157, 100);
  header.write('ustar\x0000', 257, 8, 'latin1');
  header.fill(' ', 148, 156); // the checksum counts its own field as spaces
  octal(header.reduce((sum, byte) => sum + byte, 0), 148, 7);
  return Buffer.concat([header, content, Buffer.alloc((512 - (content.length % 512)) % 512)]);
}

/** A complete archive: the entries, then two zero blocks. */
function tarOf(...entries: Buffer[]): Buffer {
  return Buffer.concat([...entries, Buffer.alloc(1024)]);
}

/** checkRootfs only needs an executable /bin/sh: a script will do for import tests. */
const SHELL = tarEntry('bin/sh', { mode: 0o755, data: '#!/bin/false\n' });

function writeArchive(archive: Buffer, name = 'test.tar'): string {
  const file = freshPath(name);
  writeFileSync(file, archive);
  return file;
}

/** Leftover temporary folders of builds/imports next to `target`. */
function stagingLeftovers(target: string): string[] {
  return readdirSync(dirname(target)).filter((name) => /\.(building|importing)-/.test(name));
}

describe('buildRootfs', () => {
  let target: string;
  let first: BuildReport;
  before(() => {
    target = freshPath('rootfs');
    first = buildRootfs(target);
  });

  test('builds a rootfs whose /bin/sh runs', () => {
    const output = execFileSync('chroot', [target, '/bin/sh', '-c', 'echo ok; ls /; whoami'], { encoding: 'utf8' });
    assert.match(output, /^ok$/m);
    for (const name of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'root']) assert.match(output, new RegExp(`^${name}$`, 'm'));
    assert.match(output, /^root$/m, 'whoami reads /etc/passwd');
  });

  test('copies the programs, their libraries and the loader to the same paths', () => {
    for (const name of ['sh', 'ls', 'cat', 'mount', 'grep']) assert.ok(first.programs.includes(name), name);
    assert.ok(first.libraries.some((path) => /\/ld-(linux|musl)[^/]*\.so/.test(path)), 'the dynamic loader');
    for (const path of first.libraries) assert.ok(statSync(join(target, path)).isFile(), path);
    assert.equal(first.copied, first.programs.length + first.libraries.length);
    assert.equal(first.unchanged, 0);
  });

  test('writes /etc and creates empty folders, /dev included', () => {
    const osRelease = readFileSync(join(target, 'etc/os-release'), 'utf8');
    assert.match(osRelease, /^NAME="containers-from-scratch workshop rootfs"$/m);
    assert.match(osRelease, /^ID=cfs-workshop$/m);
    assert.match(osRelease, /^PRETTY_NAME=".+"$/m);
    assert.equal(readFileSync(join(target, 'etc/hostname'), 'utf8'), 'container\n');
    assert.match(readFileSync(join(target, 'etc/passwd'), 'utf8'), /^root:x:0:0:.*\nnobody:x:65534:/);
    assert.match(readFileSync(join(target, 'etc/group'), 'utf8'), /^root:x:0:/);
    for (const name of ['proc', 'dev', 'sys', 'tmp', 'home', 'var']) assert.deepEqual(readdirSync(join(target, name)), [], name);
    assert.equal(statSync(join(target, 'tmp')).mode & 0o7777, 0o1777);
    assert.equal(statSync(target).mode & 0o777, 0o755);
  });

  test('is idempotent: a second build copies nothing and leaves the same tree', () => {
    const before = snapshot(target);
    const lines: string[] = [];
    const second = buildRootfs(target, { log: (line) => lines.push(line) });
    assert.equal(second.copied, 0);
    assert.equal(second.unchanged, first.copied);
    assert.deepEqual(snapshot(target), before);
    assert.match(lines.at(-1)!, /programs, \d+ libraries; 0 files copied \(\d+ unchanged\)$/);
  });

  test('copies again a file that changed', () => {
    writeFileSync(join(target, 'bin/ls'), 'broken');
    assert.equal(buildRootfs(target).copied, 1);
    assert.equal(execFileSync('chroot', [target, '/bin/ls', '/etc/hostname'], { encoding: 'utf8' }), '/etc/hostname\n');
  });

  test('concurrent builds of a new target both succeed and leave one complete rootfs', async () => {
    const shared = freshPath('shared');
    const script = `import { buildRootfs } from '../rootfs-builder/build.ts'; buildRootfs(process.argv[1]);`;
    const run = () =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, shared], {
          cwd: join(REPO_ROOT, 'tests'),
          stdio: 'inherit',
        });
        child.on('exit', resolve);
      });
    assert.deepEqual(await Promise.all([run(), run()]), [0, 0]);
    assert.deepEqual(checkRootfs(shared), { ok: true });
    assert.deepEqual(snapshot(shared), snapshot(target));
    assert.deepEqual(stagingLeftovers(shared), []);
  });

  test('refuses a target that is a file', () => {
    const file = freshPath('file');
    writeFileSync(file, '');
    assert.throws(() => buildRootfs(file), /is a file, not a folder/);
  });
});

describe('importTarball', () => {
  test('imports files, folders, symlinks and hard links, with their modes', () => {
    const archive = tarOf(
      tarEntry('./', { type: '5', mode: 0o755 }),
      tarEntry('./bin/', { type: '5', mode: 0o755 }),
      tarEntry('./bin/busybox', { mode: 0o4755, data: '#!/bin/false\n' }),
      tarEntry('./bin/sh', { type: '2', linkTarget: '/bin/busybox' }),
      tarEntry('./bin/ls', { type: '1', linkTarget: './bin/busybox' }),
      tarEntry('./etc/secret', { mode: 0o600, data: 'hush' }), // etc/ has no entry of its own
      tarEntry('./var/empty/', { type: '5', mode: 0o700 }),
    );
    const target = freshPath('imported');
    const report = importTarball(writeArchive(archive), target);
    assert.deepEqual(report, { target, files: 3, dirs: 2, symlinks: 1, skipped: [] });
    assert.equal(statSync(join(target, 'bin/busybox')).mode & 0o7777, 0o4755);
    assert.equal(readlinkSync(join(target, 'bin/sh')), '/bin/busybox');
    assert.equal(statSync(join(target, 'bin/ls')).ino, statSync(join(target, 'bin/busybox')).ino);
    assert.equal(readFileSync(join(target, 'etc/secret'), 'utf8'), 'hush');
    assert.equal(statSync(join(target, 'etc/secret')).mode & 0o777, 0o600);
    assert.equal(statSync(join(target, 'var/empty')).mode & 0o777, 0o700);
    for (const name of ['proc', 'dev', 'sys', 'tmp']) assert.ok(statSync(join(target, name)).isDirectory(), name);
    assert.deepEqual(checkRootfs(target), { ok: true });
  });

  test('treats absolute entry paths as relative to the target', () => {
    const target = freshPath('absolute');
    importTarball(writeArchive(tarOf(SHELL, tarEntry('/etc/motd', { data: 'hi' }))), target);
    assert.equal(readFileSync(join(target, 'etc/motd'), 'utf8'), 'hi');
  });

  test('reads gzip archives, whatever their name', () => {
    const target = freshPath('gzipped');
    importTarball(writeArchive(gzipSync(tarOf(SHELL)), 'archive.tar'), target);
    assert.ok(existsSync(join(target, 'bin/sh')));
  });

  for (const format of ['gnu', 'pax'] as const) {
    test(`reads long names from host tar (${format} format)`, () => {
      const source = freshPath('long-source');
      const longDir = join('usr', 'share', 'a'.repeat(60), 'b'.repeat(60));
      mkdirSync(join(source, longDir), { recursive: true });
      mkdirSync(join(source, 'bin'));
      writeFileSync(join(source, longDir, 'file.txt'), 'deep');
      symlinkSync(join('/', longDir, 'file.txt'), join(source, 'bin', 'link-with-a-long-target'));
      writeFileSync(join(source, 'bin/sh'), '#!/bin/false\n', { mode: 0o755 });
      const archive = freshPath('long.tar.gz');
      execFileSync('tar', [`--format=${format}`, '-czf', archive, '-C', source, '.']);

      const target = freshPath('long');
      importTarball(archive, target);
      assert.equal(readFileSync(join(target, longDir, 'file.txt'), 'utf8'), 'deep');
      assert.equal(readlinkSync(join(target, 'bin/link-with-a-long-target')), join('/', longDir, 'file.txt'));
    });
  }

  test('imports a host-tar archive of a built rootfs, whose /bin/sh is an absolute symlink, and runs it', () => {
    const source = freshPath('source');
    buildRootfs(source);
    renameSync(join(source, 'bin/sh'), join(source, 'bin/real-sh'));
    symlinkSync('/bin/real-sh', join(source, 'bin/sh'));
    const archive = freshPath('rootfs.tgz');
    execFileSync('tar', ['-czf', archive, '-C', source, '.']);

    const target = freshPath('from-tar');
    importTarball(archive, target);
    assert.equal(execFileSync('chroot', [target, '/bin/sh', '-c', 'echo ok'], { encoding: 'utf8' }), 'ok\n');
  });

  test('refuses entries that climb out with ".." before writing anything', () => {
    const parent = freshPath('traversal');
    mkdirSync(parent);
    const target = join(parent, 'rootfs');
    const archive = writeArchive(tarOf(SHELL, tarEntry('etc/fine', { data: 'ok' }), tarEntry('../evil', { data: 'pwned' })));
    assert.throws(() => importTarball(archive, target), /entry "\.\.\/evil" points outside the target folder/);
    assert.deepEqual(readdirSync(parent), [], 'no target, no ../evil, no temporary folder');
  });

  test('refuses hard links to files outside the target', () => {
    const target = freshPath('hardlink');
    const archive = writeArchive(tarOf(SHELL, tarEntry('etc/passwd', { type: '1', linkTarget: '../../../etc/passwd' })));
    assert.throws(() => importTarball(archive, target), /points outside the target folder/);
    assert.ok(!existsSync(target));
  });

  test('refuses to write through a symlink, even one from the archive itself', () => {
    const outside = freshPath('outside');
    mkdirSync(outside);
    const target = freshPath('through-symlink');
    const archive = writeArchive(
      tarOf(SHELL, tarEntry('escape', { type: '2', linkTarget: outside }), tarEntry('escape/pwned', { data: 'pwned' })),
    );
    assert.throws(() => importTarball(archive, target), /"escape\/pwned" would be written through the symlink "escape"/);
    assert.deepEqual(readdirSync(outside), []);
    assert.ok(!existsSync(target));
    assert.deepEqual(stagingLeftovers(target), []);
  });

  test('skips device nodes and FIFOs, and reports them', () => {
    const target = freshPath('devices');
    const lines: string[] = [];
    const archive = tarOf(
      SHELL,
      tarEntry('dev/null', { type: '3', mode: 0o666 }),
      tarEntry('dev/sda', { type: '4', mode: 0o660 }),
      tarEntry('run/initctl', { type: '6' }),
    );
    const report = importTarball(writeArchive(archive), target, { log: (line) => lines.push(line) });
    assert.deepEqual(report.skipped, ['dev/null (char-device)', 'dev/sda (block-device)', 'run/initctl (fifo)']);
    assert.deepEqual(readdirSync(join(target, 'dev')), []);
    assert.ok(lines.includes('skipped dev/null (char-device)'));
  });

  test('refuses an archive without /bin/sh', () => {
    const target = freshPath('no-shell');
    assert.throws(() => importTarball(writeArchive(tarOf(tarEntry('etc/motd'))), target), /the tarball .* has no \/bin\/sh/);
    assert.ok(!existsSync(target));
  });

  test('refuses a target that already has files', () => {
    const target = freshPath('occupied');
    mkdirSync(target);
    writeFileSync(join(target, 'keep-me'), '');
    assert.throws(() => importTarball(writeArchive(tarOf(SHELL)), target), /already exists/);
    assert.deepEqual(readdirSync(target), ['keep-me']);
  });

  test('refuses a file that is not a tar archive', () => {
    const file = writeArchive(Buffer.from('hello '.repeat(200)), 'not-a.tar');
    assert.throws(() => importTarball(file, freshPath('garbage')), /not a tar archive/);
  });
});

describe('checkRootfs', () => {
  /** A minimal rootfs: proc/, dev/, and whatever `setup` adds. */
  function rootfsWith(setup: (root: string) => void): string {
    const root = freshPath('check');
    for (const name of ['bin', 'proc', 'dev']) mkdirSync(join(root, name), { recursive: true });
    setup(root);
    return root;
  }
  const executable = (path: string) => writeFileSync(path, '#!/bin/false\n', { mode: 0o755 });

  test('accepts a rootfs with an executable /bin/sh, /proc and /dev', () => {
    assert.deepEqual(checkRootfs(rootfsWith((root) => executable(join(root, 'bin/sh')))), { ok: true });
  });

  test('rejects a missing folder, with a fix', () => {
    const check = checkRootfs(freshPath('missing'));
    assert.equal(check.ok, false);
    assert.ok(!check.ok && /does not exist/.test(check.problem) && /npm run rootfs/.test(check.fix));
  });

  test('rejects a file', () => {
    const file = freshPath('a-file');
    writeFileSync(file, '');
    assert.match(problemOf(file), /not a folder/);
  });

  test('rejects a rootfs without /bin/sh, or with a non-executable one', () => {
    assert.match(problemOf(rootfsWith(() => {})), /no \/bin\/sh/);
    assert.match(problemOf(rootfsWith((root) => writeFileSync(join(root, 'bin/sh'), ''))), /not an executable/);
  });

  test('rejects a rootfs without /proc or /dev folders', () => {
    const root = rootfsWith((root) => executable(join(root, 'bin/sh')));
    rmSync(join(root, 'dev'), { recursive: true });
    assert.match(problemOf(root), /no \/dev folder/);
    symlinkSync('/dev', join(root, 'dev'));
    assert.match(problemOf(root), /no \/dev folder/, 'a symlink to the host /dev does not count');
  });

  test('follows an absolute /bin/sh symlink inside the rootfs, not on the host', () => {
    const busybox = rootfsWith((root) => {
      executable(join(root, 'bin/busybox'));
      symlinkSync('/bin/busybox', join(root, 'bin/sh'));
    });
    assert.deepEqual(checkRootfs(busybox), { ok: true });

    // node exists on the host, but not in this rootfs.
    const hostOnly = rootfsWith((root) => symlinkSync(process.execPath, join(root, 'bin/sh')));
    assert.match(problemOf(hostOnly), /no \/bin\/sh/);
  });

  test('follows relative symlinks, and ".." stops at the rootfs root as in a chroot', () => {
    const root = rootfsWith((root) => {
      mkdirSync(join(root, 'usr/bin'), { recursive: true });
      executable(join(root, 'usr/bin/dash'));
      symlinkSync('../../../../../usr/bin/dash', join(root, 'bin/sh'));
    });
    assert.deepEqual(checkRootfs(root), { ok: true });
  });

  test('rejects a symlink loop', () => {
    assert.match(problemOf(rootfsWith((root) => symlinkSync('sh', join(root, 'bin/sh')))), /no \/bin\/sh/);
  });

  function problemOf(dir: string): string {
    const check = checkRootfs(dir);
    assert.equal(check.ok, false, `${dir} should be rejected`);
    return check.ok ? '' : check.problem;
  }
});

describe('cli', () => {
  function cli(...args: string[]) {
    // As `npm run rootfs` runs it: through the compile cache.
    return spawnSync(process.execPath, ['cli/launch.mjs', 'cli/rootfs.ts', ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
  }

  test('imports a tarball, and --force replaces the target', () => {
    const target = freshPath('cli-target');
    const archive = writeArchive(tarOf(SHELL));
    let run = cli('--target', target, '--from', archive);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /✓ root filesystem ready/);

    run = cli('--target', target, '--from', archive);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /✗ .*already exists/);

    assert.equal(cli('--target', target, '--from', archive, '--force').status, 0);
  });

  test('explains errors in one paragraph, without a stack trace unless --debug', () => {
    const run = cli('--from', freshPath('missing.tar'), '--target', freshPath('unused'));
    assert.equal(run.status, 1);
    assert.match(run.stderr, /✗ cannot read .*missing\.tar/);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
    assert.match(cli('--from', 'missing.tar', '--target', freshPath('unused'), '--debug').stderr, /\n\s+at /);
    assert.equal(cli('--no-such-option').status, 1);
  });

  test('--force refuses to delete a folder that is not a rootfs', () => {
    const folder = freshPath('precious');
    mkdirSync(folder);
    writeFileSync(join(folder, 'thesis.txt'), '');
    assert.equal(cli('--target', folder, '--force').status, 1);
    assert.deepEqual(readdirSync(folder), ['thesis.txt']);
  });
});
