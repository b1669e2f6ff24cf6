// Building a root filesystem offline, from the host's own programs.
//
// A program needs three things to run inside the container: its own file; the
// shared libraries it is linked against (libc.so.6, ...); and the dynamic
// loader that maps them (ld-linux-x86-64.so.2), which the kernel looks for at
// the exact absolute path written inside the program. `ldd` lists the
// libraries and the loader: each is copied to the same absolute path inside
// the rootfs, and the programs go to /bin.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join, posix, resolve } from 'node:path';
import chalk from 'chalk';
import { WorkshopError } from '../lib/kernel/errors.js';
import { DEFAULT_ROOTFS } from '../lib/paths.js';
import { lstatIfExists, makeDirs, makeParents, replaceFile, RUNTIME_DIRS } from './safe-fs.js';
import { makeStaging, putInPlace, removeStaleStaging } from './staging.js';

export { checkRootfs, type RootfsCheck } from '../lib/container/rootfs.js';
export { importTarball, type ImportOptions, type ImportReport } from './import.js';

/** The programs a participant types in the container. All but sh are skipped if the host lacks them. */
const PROGRAMS = [
  'sh', 'bash', 'ls', 'ps', 'cat', 'echo', 'hostname', 'id', 'env', 'sleep', 'mount', 'umount', 'uname',
  'mkdir', 'rm', 'touch', 'grep', 'head', 'tail', 'wc', 'true', 'false', 'test', 'printf', 'pwd',
  'whoami', 'date', 'ln', 'cp', 'mv', 'chmod', 'readlink', 'kill', 'seq', 'sed', 'dd', 'stat', 'df',
  'free', 'top', 'ip',
  'unshare', 'setpriv', 'keyctl', // step 9: what the syscall filter refuses (keyctl: package keyutils)
  // everyday text tools: env | sort, cut -d: -f1 /etc/passwd, seq 5 | awk '{ s += $1 } END { print s }', …
  'sort', 'uniq', 'cut', 'tr', 'awk', 'yes', 'tee', 'xargs', 'find', 'basename', 'dirname', 'od', 'nl', 'expr',
  // the terminal: tty, stty size
  'tty', 'stty',
];

/** Where programs are looked for on the host (not $PATH: it may list anything, e.g. node_modules/.bin). */
const HOST_BIN_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];

/** Empty folders, besides the ones the runtime mounts onto. (/dev stays empty: the runtime mounts a tmpfs there.) */
const EMPTY_DIRS: Readonly<Record<string, number>> = { ...RUNTIME_DIRS, root: 0o700, home: 0o755, etc: 0o755, var: 0o755 };

/** The way out when this host cannot provide programs. */
const OR_IMPORT = 'or import a ready-made root filesystem: npm run rootfs -- --from alpine-minirootfs.tar.gz';

const ETC_FILES: Readonly<Record<string, string>> = {
  'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  'etc/group': 'root:x:0:\nnogroup:x:65534:\n',
  'etc/hostname': 'container\n',
  'etc/hosts': '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n',
  'etc/os-release':
    'NAME="containers-from-scratch workshop rootfs"\n' +
    'ID=cfs-workshop\n' +
    'PRETTY_NAME="containers-from-scratch workshop rootfs (programs copied from the host)"\n',
};

/**
 * The repository's own rootfs/ is built (offline, from the host's programs)
 * the first time a workshop command needs it: `npm run step`, `npm run check`.
 */
export function ensureDefaultRootfs(): void {
  if (lstatIfExists(DEFAULT_ROOTFS)) return;
  writeSync(2, chalk.dim(`rootfs/ is missing: building it now (once) with the host's programs…\n`));
  buildRootfs(DEFAULT_ROOTFS);
}

export interface BuildOptions {
  log?: (line: string) => void;
  /** Build a new rootfs beside the existing one and replace it once complete (--force). */
  replace?: boolean;
}

export interface BuildReport {
  target: string;
  /** Names of the programs in /bin. */
  programs: string[];
  /** Absolute paths (the same inside the rootfs and on the host) of the libraries and the loader. */
  libraries: string[];
  /** Programs this host does not have. */
  skipped: string[];
  /** Files copied by this build, and files already up to date. */
  copied: number;
  unchanged: number;
}

interface Program {
  name: string;
  hostPath: string;
}

/**
 * Build (or bring up to date) a root filesystem in `target`. A new target (or
 * one being replaced) is built in a folder beside it, then renamed into place:
 * nobody ever sees half a rootfs. An existing one is updated in place,
 * copying only changed files.
 */
export function buildRootfs(target: string, options: BuildOptions = {}): BuildReport {
  const log = options.log ?? (() => {});
  target = resolve(target);
  removeStaleStaging(target, log);
  const existing = statSync(target, { throwIfNoEntry: false });
  if (existing && !existing.isDirectory()) {
    throw new WorkshopError(`${target} is a file, not a folder`, 'Choose another --target, or remove that file.');
  }

  const { programs, skipped } = findPrograms();
  for (const name of skipped) log(`note: ${name} is not on this host, skipped`);
  const ldd = findLdd();
  const libraries = [...new Set(sharedLibraries(ldd, programs.map((program) => program.hostPath)))].sort();
  const report: BuildReport = {
    target,
    programs: programs.map((program) => program.name),
    libraries,
    skipped,
    copied: 0,
    unchanged: 0,
  };

  if (existing && !options.replace) {
    fill(target, programs, report);
  } else {
    const staging = makeStaging(target, 'building');
    try {
      fill(staging, programs, report);
      chmodSync(staging, 0o755); // staging folders are private (0700)
      putInPlace(staging, target, options.replace ?? false);
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      // Another build renamed its rootfs into place first: keep that one.
      if (!['ENOTEMPTY', 'EEXIST'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
      log(`another build created ${target} meanwhile: keeping it`);
    }
  }

  log(
    `${basename(target)}/: ${programs.length} programs, ${libraries.length} libraries; ` +
      `${report.copied} files copied (${report.unchanged} unchanged)`,
  );
  return report;
}

/** Copy programs and libraries, create the folders and /etc files. */
function fill(root: string, programs: Program[], report: BuildReport): void {
  const copies = [
    ...programs.map((program) => ({ from: program.hostPath, to: `bin/${program.name}` })),
    ...report.libraries.map((library) => ({ from: library, to: library.slice(1) })),
  ];
  for (const { from, to } of copies) {
    if (copyIfChanged(from, root, to)) report.copied++;
    else report.unchanged++;
  }
  makeDirs(root, EMPTY_DIRS);
  for (const [relative, content] of Object.entries(ETC_FILES)) writeIfChanged(root, relative, content);
}

function findPrograms(): { programs: Program[]; skipped: string[] } {
  const programs: Program[] = [];
  const skipped: string[] = [];
  for (const name of PROGRAMS) {
    const hostPath = HOST_BIN_DIRS.map((dir) => join(dir, name)).find(isExecutableFile);
    if (hostPath) programs.push({ name, hostPath });
    else skipped.push(name);
  }
  if (!programs.some((program) => program.name === 'sh')) {
    throw new WorkshopError(
      `this host has no sh in ${HOST_BIN_DIRS.join(', ')}`,
      `A container needs a shell. Install one (Debian/Ubuntu: apt-get install dash), ${OR_IMPORT}`,
    );
  }
  return { programs, skipped };
}

function isExecutableFile(path: string): boolean {
  const stat = statSync(path, { throwIfNoEntry: false }); // follows symlinks: /usr/bin/sh -> dash
  return stat !== undefined && stat.isFile() && (stat.mode & 0o111) !== 0;
}

function findLdd(): string {
  const ldd = HOST_BIN_DIRS.map((dir) => join(dir, 'ldd')).find(isExecutableFile);
  if (!ldd) {
    throw new WorkshopError(
      'ldd was not found on this host: it lists the shared libraries each program needs',
      `Install it (Debian/Ubuntu: apt-get install libc-bin), ${OR_IMPORT}`,
    );
  }
  return ldd;
}

/**
 * The libraries and loaders `programs` need, as absolute paths. One ldd run
 * lists them all (ldd is a shell script: one run per program costs ~30 ms each).
 * It prints, for each program:
 *   /usr/bin/ls:
 *   	linux-vdso.so.1 (0x00007ffd4a3f1000)                       ← provided by the kernel: no file
 *   	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f…)   ← a library
 *   	/lib64/ld-linux-x86-64.so.2 (0x00007f…)                    ← the loader
 *   	not a dynamic executable                                   ← statically linked: needs nothing
 */
function sharedLibraries(ldd: string, programs: string[]): string[] {
  let output: string;
  try {
    output = execFileSync(ldd, programs, { encoding: 'utf8', stdio: 'pipe', env: { ...process.env, LC_ALL: 'C' } });
  } catch (error) {
    // ldd exits non-zero when one of them is static; anything else is a real failure.
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    if (!/not a dynamic executable/i.test(stdout + stderr)) {
      throw new WorkshopError(`ldd failed: ${(stderr || stdout).trim()}`, 'Leave the program it names out of PROGRAMS in rootfs-builder/build.ts.');
    }
    output = stdout;
  }
  const missing = output.split('\n').find((line) => line.includes('=> not found'));
  if (missing) {
    throw new WorkshopError(`a program needs ${missing.trim()}, which this host lacks`, 'Reinstall the package providing that library.');
  }
  return [...output.matchAll(/(\/\S+) \(0x[0-9a-f]+\)/g)].map((match) => posix.normalize(match[1]!));
}

/**
 * Copy a host file (following symlinks) into the rootfs, unless the copy has
 * the same size, mtime and mode. Returns whether it copied. Never setuid or
 * setgid (the host's mount is setuid root): root in the container does not need
 * it, and a copy outliving the host's security updates would be one more way
 * to root for any user of this machine.
 */
function copyIfChanged(hostPath: string, root: string, relative: string): boolean {
  const source = statSync(hostPath);
  const mode = source.mode & 0o1777;
  const destination = makeParents(root, relative, relative);
  const current = lstatIfExists(destination);
  const seconds = (ms: number) => Math.floor(ms / 1000);
  if (current?.isFile() && current.size === source.size && seconds(current.mtimeMs) === seconds(source.mtimeMs) && (current.mode & 0o7777) === mode) {
    return false;
  }
  replaceFile(destination, (temporary) => {
    copyFileSync(hostPath, temporary);
    chmodSync(temporary, mode);
    utimesSync(temporary, source.atime, source.mtime); // so the next build sees it unchanged
  });
  return true;
}

function writeIfChanged(root: string, relative: string, content: string): void {
  const path = makeParents(root, relative, relative);
  if (lstatIfExists(path)?.isFile() && readFileSync(path, 'utf8') === content) return;
  replaceFile(path, (temporary) => {
    writeFileSync(temporary, content);
    chmodSync(temporary, 0o644);
  });
}
