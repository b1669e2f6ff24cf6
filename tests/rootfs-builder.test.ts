// node --import tsx --test tests/rootfs-builder.test.ts   (as root: the tests use chroot, chown and setpriv)
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  chmodSync, chownSync, closeSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync,
  readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { threadsOfOneThreadedProgram } from '../lib/host/machine.js';
import { lgetxattr, lsetxattr } from '../lib/kernel/libc.js';
import { buildRootfs, checkRootfs, importTarball, type BuildReport } from '../rootfs-builder/build.js';
import { compile } from '../workshop/compile.mjs';

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
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6' | 'x' | 'L';
  mode?: number;
  data?: string | Buffer;
  /** The size the header announces (default: the data's); the data is not included when given. */
  size?: number;
  linkTarget?: string;
  uid?: number;
  gid?: number;
  mtime?: number;
  /** pax records for this entry (an 'x' entry written before it), values as bytes. */
  pax?: Record<string, Buffer | string>;
}

/** One ustar entry: a 512-byte header, then the data padded to a multiple of 512 bytes. */
function tarEntry(name: string, options: EntryOptions = {}): Buffer {
  const { type = '0', mode = 0o644, data = '', linkTarget = '', uid = 0, gid = 0, mtime = 0 } = options;
  const content = Buffer.from(data);
  const size = options.size ?? content.length;
  const header = Buffer.alloc(512);
  const octal = (value: number, offset: number, length: number) =>
    header.write(value.toString(8).padStart(length - 1, '0'), offset, length - 1, 'latin1');
  header.write(name, 0, 100);
  octal(mode, 100, 8);
  octal(uid, 108, 8);
  octal(gid, 116, 8);
  octal(size, 124, 12);
  octal(mtime, 136, 12);
  header.write(type, 156, 1);
  header.write(linkTarget, 157, 100);
  header.write('ustar\x0000', 257, 8, 'latin1');
  header.fill(' ', 148, 156); // the checksum counts its own field as spaces
  octal(header.reduce((sum, byte) => sum + byte, 0), 148, 7);
  const body = options.size === undefined ? [content, Buffer.alloc((512 - (content.length % 512)) % 512)] : [];
  const extended = options.pax ? [tarEntry('PaxHeader', { type: 'x', data: paxRecords(options.pax) })] : [];
  return Buffer.concat([...extended, header, ...body]);
}

/** "<length> <key>=<value>\n", the length counting the whole record (its own digits too). */
function paxRecords(records: Record<string, Buffer | string>): Buffer {
  return Buffer.concat(
    Object.entries(records).map(([key, value]) => {
      const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
      let length = body.length + 1;
      while (String(length).length + body.length !== length) length++;
      return Buffer.concat([Buffer.from(String(length)), body]);
    }),
  );
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

/** A file capability set (`setcap`'s xattr, VFS_CAP_REVISION_2, effective): `bits` is the first 32 capabilities. */
function capability(bits: number): Buffer {
  const value = Buffer.alloc(20);
  value.writeUInt32LE(0x02000001, 0); // revision 2, effective
  value.writeUInt32LE(bits, 4); // permitted[0]
  return value;
}
const CAP_DAC_READ_SEARCH = 1 << 2;
const CAP_SETUID = 1 << 7; // its byte is 0x80: not valid UTF-8 on its own
const CAP_NET_RAW = 1 << 13;

const NOBODY = 65534;
/**
 * Run `argv` as nobody, the other user of the machine. Through a shell: setpriv
 * itself still holds root's capabilities while it looks the program up.
 */
function asNobody(argv: string[]): SpawnSyncReturns<string> {
  return spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'sh', '-c', 'exec "$@"', 'sh', ...argv], { encoding: 'utf8' });
}

/** Folders other users can enter (scratch/ itself is private: 0700). */
const openScratch = mkdtempSync(join(tmpdir(), 'rootfs-builder-test-open-'));
chmodSync(openScratch, 0o755);
after(() => rmSync(openScratch, { recursive: true, force: true }));
function openFolder(name: string): string {
  const folder = join(openScratch, `${++counter}-${name}`);
  mkdirSync(folder, { mode: 0o755 });
  return folder;
}

describe('importTarball', () => {
  test('imports files, folders, symlinks and hard links, with their modes', async () => {
    const archive = tarOf(
      tarEntry('./', { type: '5', mode: 0o755 }),
      tarEntry('./bin/', { type: '5', mode: 0o755 }),
      tarEntry('./bin/busybox', { mode: 0o755, data: '#!/bin/false\n' }),
      tarEntry('./bin/sh', { type: '2', linkTarget: '/bin/busybox' }),
      tarEntry('./bin/ls', { type: '1', linkTarget: './bin/busybox' }),
      tarEntry('./etc/secret', { mode: 0o600, data: 'hush' }), // etc/ has no entry of its own
      tarEntry('./var/empty/', { type: '5', mode: 0o700 }),
    );
    const target = freshPath('imported');
    const report = await importTarball(writeArchive(archive), target);
    assert.deepEqual(
      { files: report.files, hardlinks: report.hardlinks, dirs: report.dirs, symlinks: report.symlinks, skipped: report.skipped },
      { files: 2, hardlinks: 1, dirs: 2, symlinks: 1, skipped: [] },
    );
    assert.equal(statSync(join(target, 'bin/busybox')).mode & 0o7777, 0o755);
    assert.equal(readlinkSync(join(target, 'bin/sh')), '/bin/busybox');
    assert.equal(statSync(join(target, 'bin/ls')).ino, statSync(join(target, 'bin/busybox')).ino);
    assert.equal(readFileSync(join(target, 'etc/secret'), 'utf8'), 'hush');
    assert.equal(statSync(join(target, 'etc/secret')).mode & 0o777, 0o600);
    assert.equal(statSync(join(target, 'var/empty')).mode & 0o777, 0o700);
    for (const name of ['proc', 'dev', 'sys', 'tmp']) assert.ok(statSync(join(target, name)).isDirectory(), name);
    assert.deepEqual(checkRootfs(target), { ok: true });
  });

  test('treats absolute entry paths as relative to the target', async () => {
    const target = freshPath('absolute');
    await importTarball(writeArchive(tarOf(SHELL, tarEntry('/etc/motd', { data: 'hi' }))), target);
    assert.equal(readFileSync(join(target, 'etc/motd'), 'utf8'), 'hi');
  });

  test('reads gzip archives, whatever their name', async () => {
    const target = freshPath('gzipped');
    await importTarball(writeArchive(gzipSync(tarOf(SHELL)), 'archive.tar'), target);
    assert.ok(existsSync(join(target, 'bin/sh')));
  });

  for (const format of ['gnu', 'pax'] as const) {
    test(`reads long names from host tar (${format} format)`, async () => {
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
      await importTarball(archive, target);
      assert.equal(readFileSync(join(target, longDir, 'file.txt'), 'utf8'), 'deep');
      assert.equal(readlinkSync(join(target, 'bin/link-with-a-long-target')), join('/', longDir, 'file.txt'));
    });
  }

  test('imports a host-tar archive of a built rootfs, whose /bin/sh is an absolute symlink, and runs it', async () => {
    const source = freshPath('source');
    buildRootfs(source);
    renameSync(join(source, 'bin/sh'), join(source, 'bin/real-sh'));
    symlinkSync('/bin/real-sh', join(source, 'bin/sh'));
    const archive = freshPath('rootfs.tgz');
    execFileSync('tar', ['-czf', archive, '-C', source, '.']);

    const target = freshPath('from-tar');
    await importTarball(archive, target);
    assert.equal(execFileSync('chroot', [target, '/bin/sh', '-c', 'echo ok'], { encoding: 'utf8' }), 'ok\n');
  });

  test('as root, in a folder closed to others: numeric owners and groups, modes, times, hard links and file capabilities, as tar -x has them', async () => {
    // The source tree, archived by GNU tar with its extended attributes.
    const source = freshPath('faithful-source');
    mkdirSync(join(source, 'bin'), { recursive: true });
    mkdirSync(join(source, 'var/mail'), { recursive: true });
    writeFileSync(join(source, 'bin/sh'), '#!/bin/false\n', { mode: 0o755 });
    writeFileSync(join(source, 'shadow'), 'root:*:1::::::\n');
    chownSync(join(source, 'shadow'), 0, 42); // root:shadow
    chmodSync(join(source, 'shadow'), 0o640);
    copyFileSync('/usr/bin/id', join(source, 'bin/chage'));
    chownSync(join(source, 'bin/chage'), 0, 42);
    chmodSync(join(source, 'bin/chage'), 0o2755); // setgid shadow
    copyFileSync('/usr/bin/id', join(source, 'bin/ping'));
    lsetxattr(join(source, 'bin/ping'), 'security.capability', capability(CAP_SETUID | CAP_NET_RAW));
    execFileSync('ln', [join(source, 'bin/ping'), join(source, 'bin/ping6')]);
    chownSync(join(source, 'var/mail'), 0, 8);
    chmodSync(join(source, 'var/mail'), 0o2775);
    symlinkSync('../shadow', join(source, 'bin/link'));
    execFileSync('chown', ['-h', '1234:5678', join(source, 'bin/link')]);
    execFileSync('touch', ['-h', '-d', '2001-02-03 04:05:06', join(source, 'bin/link')]);
    execFileSync('touch', ['-d', '1999-12-31 23:59:59', join(source, 'shadow'), join(source, 'var/mail'), join(source, 'var')]);
    const archive = freshPath('faithful.tar.gz');
    execFileSync('tar', ['--xattrs', '--xattrs-include=security.capability', '-czf', archive, '-C', source, '.']);

    /** What must survive, per path: type, mode, owner, group, mtime (s), link count, target, capabilities. */
    const facts = (root: string): string[] =>
      readdirSync(root, { recursive: true, encoding: 'utf8' })
        .filter((path) => !['proc', 'dev', 'sys', 'tmp'].includes(path))
        .sort()
        .map((path) => {
          const full = join(root, path);
          const stat = lstatSync(full);
          const link = stat.isSymbolicLink() ? readlinkSync(full) : '';
          const caps = stat.isFile() ? (lgetxattr(full, 'security.capability')?.toString('hex') ?? '') : '';
          return `${path} ${(stat.mode & 0o177777).toString(8)} ${stat.uid}:${stat.gid} ${Math.floor(stat.mtimeMs / 1000)} ${stat.nlink} ${link} ${caps}`;
        });
    const target = freshPath('faithful'); // in scratch/, which is 0700: closed to other users
    const report = await importTarball(archive, target);
    assert.equal(report.ownersKept, true);
    assert.equal(report.privilegesKept, true);
    assert.deepEqual(facts(target), facts(source));
    assert.equal(lgetxattr(join(target, 'bin/ping'), 'security.capability')?.toString('hex'), capability(CAP_SETUID | CAP_NET_RAW).toString('hex'));
  });

  test('skips device nodes and FIFOs, and reports them', async () => {
    const target = freshPath('devices');
    const lines: string[] = [];
    const archive = tarOf(
      SHELL,
      tarEntry('dev/null', { type: '3', mode: 0o666 }),
      tarEntry('dev/sda', { type: '4', mode: 0o660 }),
      tarEntry('run/initctl', { type: '6' }),
    );
    const report = await importTarball(writeArchive(archive), target, { log: (line) => lines.push(line) });
    assert.deepEqual(report.skipped, ['dev/null (character-device)', 'dev/sda (block-device)', 'run/initctl (fifo)']);
    assert.deepEqual(readdirSync(join(target, 'dev')), []);
    assert.ok(lines.some((line) => /skipped 3 \(device nodes and FIFOs/.test(line)), lines.join('\n'));
  });

  test('refuses an archive without /bin/sh', async () => {
    const target = freshPath('no-shell');
    await assert.rejects(importTarball(writeArchive(tarOf(tarEntry('etc/motd'))), target), /the archive .* is not a usable root filesystem: it has no \/bin\/sh/);
    assert.ok(!existsSync(target));
    assert.deepEqual(stagingLeftovers(target), []);
  });

  test('refuses a target that already has files', async () => {
    const target = freshPath('occupied');
    mkdirSync(target);
    writeFileSync(join(target, 'keep-me'), '');
    await assert.rejects(importTarball(writeArchive(tarOf(SHELL)), target), /already exists/);
    assert.deepEqual(readdirSync(target), ['keep-me']);
  });

  test('refuses a file that is not a tar archive', async () => {
    const file = writeArchive(Buffer.from('hello '.repeat(200)), 'not-a.tar');
    await assert.rejects(importTarball(file, freshPath('garbage')), /is not a tar archive we can read: a header is broken \(bad checksum\) \(at byte 0 of the tar data\)/);
  });
});

describe('hostile archives: nothing written outside the target, nothing kept', () => {
  // Each archive tries to reach `outside`; the import must fail, leaving no target and no staging folder.
  const cases: { name: string; entries: (outside: string) => Buffer[]; refused: RegExp }[] = [
    { name: 'an entry that climbs out with ".."', entries: () => [SHELL, tarEntry('etc/fine', { data: 'ok' }), tarEntry('../evil', { data: 'pwned' })], refused: /entry "\.\.\/evil" points outside the target folder/ },
    { name: 'a hard link to a file outside', entries: () => [SHELL, tarEntry('etc/passwd', { type: '1', linkTarget: '../../../etc/passwd' })], refused: /points outside the target folder/ },
    { name: "a write through the archive's own symlink", entries: (outside) => [SHELL, tarEntry('escape', { type: '2', linkTarget: outside }), tarEntry('escape/pwned', { data: 'pwned' })], refused: /"escape\/pwned" would be written through the symlink "escape"/ },
    { name: 'a write through a symlink, by a path with ".." in it', entries: (outside) => [SHELL, tarEntry('escape', { type: '2', linkTarget: outside }), tarEntry('bin/../escape/pwned', { data: 'pwned' })], refused: /would be written through the symlink "escape"/ },
    { name: 'a hard link through a symlinked folder', entries: (outside) => [SHELL, tarEntry('escape', { type: '2', linkTarget: outside }), tarEntry('stolen', { type: '1', linkTarget: 'escape/secret' })], refused: /"stolen" would be written through the symlink "escape"/ },
    { name: 'a pax path that climbs out', entries: () => [SHELL, tarEntry('innocent', { data: 'pwned', pax: { path: '../../evil' } })], refused: /entry "\.\.\/\.\.\/evil" points outside/ },
    { name: 'a GNU long name that climbs out', entries: () => [SHELL, tarEntry('././@LongLink', { type: 'L', data: `../${'x'.repeat(120)}\0` }), tarEntry('innocent', { data: 'pwned' })], refused: /points outside the target folder/ },
    { name: 'a hard link to an entry that comes later', entries: () => [SHELL, tarEntry('first', { type: '1', linkTarget: 'later' }), tarEntry('later', { data: 'x' })], refused: /hard link "first" points to "later", which is not a file earlier in the archive/ },
    { name: 'a hard link to a folder', entries: () => [SHELL, tarEntry('etc/', { type: '5' }), tarEntry('etc-link', { type: '1', linkTarget: 'etc' })], refused: /which is not a file earlier in the archive/ },
    { name: 'a hard link to itself', entries: () => [SHELL, tarEntry('etc/x', { data: 'x' }), tarEntry('etc/x', { type: '1', linkTarget: 'etc/x' })], refused: /hard link "etc\/x" points to "etc\/x", which is not a file earlier/ },
    { name: 'a file replacing a folder', entries: () => [SHELL, tarEntry('etc/', { type: '5' }), tarEntry('etc/x', { data: 'x' }), tarEntry('etc', { data: 'file' })], refused: /entry "etc" would replace a folder/ },
  ];
  for (const { name, entries, refused } of cases) {
    test(name, async () => {
      const outside = freshPath('outside');
      mkdirSync(outside);
      writeFileSync(join(outside, 'secret'), 'secret');
      const parent = freshPath('hostile');
      mkdirSync(parent);
      const target = join(parent, 'rootfs');
      await assert.rejects(importTarball(writeArchive(tarOf(...entries(outside))), target), refused);
      assert.deepEqual(readdirSync(outside), ['secret']);
      assert.deepEqual(readdirSync(parent), [], 'no target, no ../evil, no staging folder');
    });
  }

  test('a symlink later replaced by a real folder of the same name: files land in the folder, not through the symlink', async () => {
    const outside = freshPath('outside');
    mkdirSync(outside);
    const target = freshPath('replaced-symlink');
    await importTarball(writeArchive(tarOf(SHELL, tarEntry('etc', { type: '2', linkTarget: outside }), tarEntry('etc/', { type: '5' }), tarEntry('etc/x', { data: 'in' }))), target);
    assert.deepEqual(readdirSync(outside), []);
    assert.ok(lstatSync(join(target, 'etc')).isDirectory());
    assert.equal(readFileSync(join(target, 'etc/x'), 'utf8'), 'in');
  });
});

describe('setuid programs and file capabilities (issue 11, item 8): no other user can use them', () => {
  /** A setuid-root copy of `id`, and a `cat` that may read any file (CAP_DAC_READ_SEARCH). */
  const privileged = (): Buffer =>
    tarOf(
      SHELL,
      tarEntry('bin/rootid', { mode: 0o4755, data: readFileSync('/usr/bin/id') }),
      tarEntry('bin/readall', { mode: 0o755, data: readFileSync('/usr/bin/cat'), pax: { 'SCHILY.xattr.security.capability': capability(CAP_DAC_READ_SEARCH) } }),
    );
  const secret = (): string => {
    const file = join(openFolder('secret'), 'root-only');
    writeFileSync(file, 'root only\n', { mode: 0o600 });
    return file;
  };

  test('in a folder other users can reach, the bits and capabilities are dropped: nobody gains nothing', async () => {
    const target = join(openFolder('setuid'), 'rootfs');
    const lines: string[] = [];
    const report = await importTarball(writeArchive(privileged()), target, { log: (line) => lines.push(line) });
    assert.equal(report.privilegesKept, false);
    assert.deepEqual(report.privilegesDropped, ['bin/rootid (setuid)', 'bin/readall (capabilities)']);
    assert.ok(lines.some((line) => /setuid\/setgid bits and capabilities dropped from 2 files/.test(line)), lines.join('\n'));
    const euid = asNobody([join(target, 'bin/rootid'), '-u']);
    assert.equal(euid.stdout.trim(), String(NOBODY), 'the setuid-root program runs as nobody');
    const read = asNobody([join(target, 'bin/readall'), secret()]);
    assert.notEqual(read.stdout, 'root only\n');
    assert.match(read.stderr, /Permission denied/);
  });

  test('in a folder closed to other users they are kept, and nobody cannot reach them', async () => {
    const closed = freshPath('closed'); // under scratch/: 0700
    const target = join(closed, 'rootfs');
    const report = await importTarball(writeArchive(privileged()), target);
    assert.equal(report.privilegesKept, true);
    assert.equal(statSync(join(target, 'bin/rootid')).mode & 0o7777, 0o4755);
    assert.ok(lgetxattr(join(target, 'bin/readall'), 'security.capability'));
    const run = asNobody([join(target, 'bin/rootid'), '-u']);
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /Permission denied/);
  });

  test('--keep-setuid keeps them wherever told', async () => {
    const target = join(openFolder('keep'), 'rootfs');
    const report = await importTarball(writeArchive(privileged()), target, { keepSetuid: true });
    assert.equal(report.privilegesKept, true);
    assert.equal(statSync(join(target, 'bin/rootid')).mode & 0o7777, 0o4755);
  });
});

describe('streaming: any size, bounded memory, a size cap', () => {
  test('a 2 GiB+ file in a 2 GiB+ plain .tar (built sparse): imported, as a sparse file, in under 200 MB of memory', async () => {
    const size = 2 * 1024 ** 3 + 12345;
    const archive = freshPath('big.tar');
    const fd = openSync(archive, 'w');
    let offset = writeSync(fd, tarOf(SHELL).subarray(0, -1024), 0, undefined, 0);
    offset += writeSync(fd, tarEntry('var/big', { size }), 0, undefined, offset);
    const end = offset + Math.ceil(size / 512) * 512;
    writeSync(fd, Buffer.alloc(1024), 0, 1024, end); // the data in between: a hole, all zeros
    closeSync(fd);
    assert.ok(statSync(archive).size > 2 * 1024 ** 3);

    const target = freshPath('big');
    const run = cli('--from', archive, '--target', target, '--max-size', '3G');
    assert.equal(run.status, 0, run.stderr);
    const stat = statSync(join(target, 'var/big'));
    assert.equal(stat.size, size);
    assert.ok(stat.blocks * 512 < 1024 ** 2, `sparse: ${stat.blocks * 512} bytes on disk`);
    assert.ok(peakMemory(run) < memoryBound(), `peak memory ${peakMemory(run)}`);
  });

  test('a gzip bomb (1.6 GB from 1.7 MB) stops at --max-size, keeps nothing, and stays small', async () => {
    // Concatenated gzip members unpack as one stream: compress 16 MiB of zeros once, repeat it.
    const zeros = gzipSync(Buffer.alloc(16 * 1024 ** 2), { level: 9 });
    const members = [gzipSync(SHELL)];
    for (let index = 0; index < 100; index++) members.push(gzipSync(tarEntry(`var/zeros-${index}`, { size: 16 * 1024 ** 2 })), zeros);
    members.push(gzipSync(Buffer.alloc(1024)));
    const bomb = writeArchive(Buffer.concat(members), 'bomb.tar.gz');
    assert.ok(statSync(bomb).size < 2 * 1024 ** 2);

    const parent = freshPath('bombed');
    mkdirSync(parent);
    const run = cli('--from', bomb, '--target', join(parent, 'rootfs'), '--max-size', '50M');
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /✗ stopped: .*bomb\.tar\.gz unpacks to more than 50 MiB \(at "var\/zeros-3", 16 MiB, after 48 MiB\)/);
    assert.match(run.stderr, /--max-size/);
    assert.deepEqual(readdirSync(parent), [], 'nothing kept');
    assert.ok(peakMemory(run) < memoryBound(), `peak memory ${peakMemory(run)}`);
  });

  test('a corrupt or truncated archive is reported with the offset; the previous rootfs stays as it was', async () => {
    const target = freshPath('previous');
    await importTarball(writeArchive(tarOf(SHELL, tarEntry('etc/version', { data: 'previous' }))), target);
    writeFileSync(join(target, 'added-by-the-participant'), 'mine');
    const before = snapshot(target);

    const payload = Buffer.from(Array.from({ length: 200_000 }, (_, index) => (index * 7919) % 251));
    const good = tarOf(SHELL, tarEntry('etc/data', { data: payload }), tarEntry('etc/version', { data: 'new' }));
    const gzipped = gzipSync(good);
    const corruptGzip = Buffer.from(gzipped);
    corruptGzip[Math.floor(gzipped.length / 2)]! ^= 0xff;
    const corruptTar = Buffer.from(good);
    corruptTar[1024 + 1]! ^= 0xff; // the name in the second header: its checksum no longer matches
    const cases: [string, Buffer, RegExp][] = [
      ['a corrupt gzip stream', corruptGzip, /cannot be unpacked: the gzip data is corrupt at byte \d+ of \d+ \(/],
      ['a truncated gzip stream', gzipped.subarray(0, gzipped.length >> 1), /cannot be unpacked: it ends before the compressed data does \(at byte \d+ of \d+\)/],
      ['a corrupt tar header', corruptTar, /is not a tar archive we can read: a header is broken \(bad checksum\) \(at byte 1024 of the tar data, after "bin\/sh"\)/],
      ['a truncated tar', good.subarray(0, 100_000), /is not a tar archive we can read: it ends at byte 100000, in the middle of "etc\/data" \(a truncated download\?\)/],
    ];
    for (const [name, archive, said] of cases) {
      await assert.rejects(importTarball(writeArchive(archive), target, { replace: true }), said, name);
      assert.deepEqual(snapshot(target), before, name);
      assert.deepEqual(stagingLeftovers(target), [], name);
    }
  });
});

describe('leftovers of interrupted imports', () => {
  test('the next import removes a killed import\'s folder, and puts back a rootfs whose swap was cut short', async () => {
    const dead = spawnSync('true').pid!;
    const parent = freshPath('interrupted');
    mkdirSync(join(parent, `.rootfs.importing-${dead}-abcd/etc`), { recursive: true });
    mkdirSync(join(parent, `.rootfs.building-${dead}-abcd`), { recursive: true });
    mkdirSync(join(parent, `.rootfs.replaced-${dead}-abcd/etc`), { recursive: true }); // rootfs/ itself is missing
    writeFileSync(join(parent, `.rootfs.replaced-${dead}-abcd/etc/version`), 'previous');
    mkdirSync(join(parent, `.rootfs.importing-${process.pid}-beef`)); // a live import's: kept
    await assert.rejects(importTarball(writeArchive(tarOf(SHELL)), join(parent, 'rootfs')), /rootfs already exists/);
    assert.deepEqual(readdirSync(parent).sort(), [`.rootfs.importing-${process.pid}-beef`, 'rootfs']);
    assert.equal(readFileSync(join(parent, 'rootfs/etc/version'), 'utf8'), 'previous');
  });
});

describe('checkRootfs', () => {
  /** A minimal rootfs: proc/, dev/, and whatever `setup` adds. */
  function rootfsWith(setup: (root: string) => void): string {
    const root = freshPath('check');
    for (const name of ['bin', 'proc', 'dev', 'sys']) mkdirSync(join(root, name), { recursive: true });
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

// Prints the process's peak memory (its maxrss) as it exits: loaded with `node --require`.
const PEAK_MEMORY_HOOK = join(scratch, 'peak-memory.cjs');
writeFileSync(PEAK_MEMORY_HOOK, "process.on('exit', () => require('fs').writeSync(2, `peak-memory-kib=${process.resourceUsage().maxRSS}\\n`));\n");

/** `npm run rootfs -- args…`, as npm runs it: through the compile cache. */
function cli(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['--require', PEAK_MEMORY_HOOK, 'cli/launch.mjs', 'cli/rootfs.ts', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, FORCE_COLOR: '0' },
  });
}

/** The peak memory of a `cli()` run, in bytes. */
function peakMemory(run: SpawnSyncReturns<string>): number {
  const kib = /peak-memory-kib=(\d+)/.exec(run.stderr)?.[1];
  assert.ok(kib, 'the run reported its peak memory');
  return Number(kib) * 1024;
}

/**
 * The most memory an import may take: 200 MB. Under an emulator (qemu-user),
 * the process's memory includes the emulator's own: 150 MB more than the
 * same command doing nothing (--help).
 */
function memoryBound(): number {
  if (threadsOfOneThreadedProgram() === 1) return 200 * 1024 ** 2;
  return peakMemory(cli('--help')) + 150 * 1024 ** 2;
}

describe('cli', () => {
  test('imports a tarball, and --force replaces the target', () => {
    const target = freshPath('cli-target');
    const archive = writeArchive(tarOf(SHELL));
    let run = cli('--target', target, '--from', archive);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /✓ root filesystem ready/);

    run = cli('--target', target, '--from', archive);
    assert.equal(run.status, 2);
    assert.match(run.stderr, /✗ .*already exists\n  Pass --force to replace it/);

    writeFileSync(join(target, 'old'), '');
    assert.equal(cli('--target', target, '--from', archive, '--force').status, 0);
    assert.ok(!existsSync(join(target, 'old')));
    assert.deepEqual(stagingLeftovers(target), []);
  });

  test('--force with a broken or missing archive leaves the previous rootfs, and what was added to it, as it was', () => {
    const target = freshPath('cli-precious');
    assert.equal(cli('--target', target, '--from', writeArchive(tarOf(SHELL))).status, 0);
    writeFileSync(join(target, 'my-notes.txt'), 'a participant added this');
    const before = snapshot(target);
    const notATar = writeArchive(Buffer.from('not a tar '.repeat(100)), 'not-a.tar');
    const broken = cli('--target', target, '--from', notATar, '--force');
    assert.equal(broken.status, 1, broken.stderr);
    assert.match(broken.stderr, /✗ .*not-a\.tar is not a tar archive we can read/);
    const missing = cli('--target', target, '--from', freshPath('missing.tar'), '--force');
    assert.equal(missing.status, 2, missing.stderr);
    assert.match(missing.stderr, /✗ --from .*missing\.tar: there is no such file/);
    assert.deepEqual(snapshot(target), before);
    assert.deepEqual(stagingLeftovers(target), []);
  });

  test('usage errors exit 2 before anything is read or written, in one paragraph', () => {
    const archive = writeArchive(tarOf(SHELL));
    const cases: [string[], RegExp][] = [
      [['--no-such-option'], /✗ Unknown option '--no-such-option'[\s\S]*usage: npm run rootfs/],
      [['--from'], /✗ Option '--from <value>' argument missing/],
      [['--from', archive, '--target', freshPath('x'), '--max-size', 'lots'], /✗ --max-size must be a size like 500M or 2G, not "lots"/],
      [['--from', archive, '--target', '/', '--force'], /✗ --target \/ is the host's own root folder/],
      [['--from', archive, '--target', dirname(REPO_ROOT), '--force'], /✗ --target .* contains the workshop repository/],
      [['--from', scratch, '--target', freshPath('x')], /✗ --from .* is a folder, not an archive/],
      [['--from', writeArchive(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 1, 2]), 'a.tar.xz'), '--target', freshPath('x')], /✗ --from .*a\.tar\.xz is compressed with xz[\s\S]*xz -dc/],
      [['--target', freshPath('x'), '--keep-setuid'], /✗ --max-size and --keep-setuid only apply to an import/],
    ];
    for (const [args, said] of cases) {
      const run = cli(...args);
      assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, said);
      assert.doesNotMatch(run.stderr, /\n\s+at /);
    }
  });

  test('explains failures in one paragraph, without a stack trace unless --debug', () => {
    const target = freshPath('unused');
    const run = cli('--from', writeArchive(gzipSync(Buffer.from('x'.repeat(5000)))), '--target', target);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /✗ .* is not a tar archive we can read/);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
    assert.match(cli('--from', writeArchive(gzipSync(Buffer.from('x'.repeat(5000)))), '--target', target, '--debug').stderr, /\n\s+at /);
  });

  test('--force refuses to delete a folder that is not a rootfs', () => {
    const folder = freshPath('precious');
    mkdirSync(folder);
    writeFileSync(join(folder, 'thesis.txt'), '');
    const run = cli('--target', folder, '--force');
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--force refuses to replace .*precious: it does not look like a root filesystem/);
    assert.deepEqual(readdirSync(folder), ['thesis.txt']);
  });

  test('as a normal user, every file becomes theirs, and the import says so once', async () => {
    const home = join(openFolder('user'), 'home');
    mkdirSync(home);
    chownSync(home, NOBODY, NOBODY);
    const archive = join(home, 'owned.tar');
    writeFileSync(archive, tarOf(SHELL, tarEntry('etc/shadow', { uid: 0, gid: 42, mode: 0o640, data: 'x' }), tarEntry('home/user/', { type: '5', uid: 1000, gid: 1000 })));
    chmodSync(archive, 0o644);
    const bundle = await compile(join(REPO_ROOT, 'cli/rootfs.ts'));
    const run = asNobody([process.execPath, bundle, '--from', archive, '--target', join(home, 'rootfs')]);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.match(/owners: every file is yours \(uid 65534\)/g)?.length, 1, run.stdout);
    for (const path of ['etc/shadow', 'home/user', 'bin/sh']) assert.equal(statSync(join(home, 'rootfs', path)).uid, NOBODY, path);
    assert.equal(statSync(join(home, 'rootfs/etc/shadow')).mode & 0o777, 0o640);
  });
});
