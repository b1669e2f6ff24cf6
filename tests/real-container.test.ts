// Containers that behave like real ones. Whatever a step teaches, the runtime
// gives every container what runc and Docker give theirs: default signal
// dispositions and an empty signal mask, only fds 0–2, an environment of its
// own, a session of its own, the exact bytes of its arguments; and from step 4
// on a usable /dev/shm, /dev/pts and /dev/ptmx, and its own /etc/hostname and
// /etc/hosts. Checked at every step against the reference solutions, on our
// rootfs and on a static busybox tree; then a terminal of its own, driven
// through a real pty (util-linux `script`); then no container left running
// when the runtime is killed during setup.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmodSync, closeSync, constants as fs, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname as hostHostname, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { removeStaleCgroups } from '../lib/container/cgroups.js';
import { removeStaleLayers } from '../lib/container/overlay.js';
import { DEFAULT_PATH } from '../lib/container/environment.js';
import { TERMIOS_LFLAG_OFFSET, TIOCGWINSZ, TIOCSWINSZ } from '../lib/kernel/constants.js';
import { ioctl, tcgetattr } from '../lib/kernel/libc.js';
import { DEFAULT_ROOTFS, REPO_ROOT } from '../lib/paths.js';
import { compile } from '../workshop/compile.mjs';
import { hostProcesses, killDuringSetup, runtimeFile, stepNumbered, waitFor } from '../workshop/harness.js';
import { STEPS, type Step } from '../workshop/steps.js';

/** "café" in Latin-1: the byte 0xe9 is not UTF-8. */
const CAFE = Buffer.from('caf\xe9', 'latin1');

/**
 * Run as the container's command (`sh -c PROBE probe <café> dev|host`): it
 * reports on the shell itself (its pid `me`, read from /proc/self/stat by a
 * builtin), as the runtime started it. Signal dispositions are read from a
 * child (grep): a shell may ignore a signal for itself (busybox ash ignores
 * SIGQUIT), but passes on what it was given.
 */
const PROBE = String.raw`
read -r me rest < /proc/self/stat
echo "--stat--"; cat /proc/$me/stat; echo
echo "--signals--"; grep -E '^Sig(Blk|Ign):' /proc/self/status
echo "--fds--"; ls /proc/$me/fd
echo "--environ--"; cat /proc/$me/environ; echo
echo "--argument--"; printf '%s\n' "$1"
echo "--pipe--"; { { seq 100000; echo $? >&3; } | head -n 1 >/dev/null; } 3>&1
echo "--tty--"; if (: <>/dev/tty) 2>/dev/null; then echo "opened /dev/tty"; else echo "no /dev/tty"; fi
if [ "$2" = dev ]; then
  echo "--mounts--"; grep -E ' /dev/(shm|pts) ' /proc/self/mountinfo
  echo "--shm--"; ls -ld /dev/shm; dd if=/dev/zero of=/dev/shm/probe bs=1024 count=100 2>/dev/null && echo "wrote 100 KiB"
  echo "--ptmx--"; readlink /dev/ptmx; (exec 3<>/dev/ptmx && ls /dev/pts)
  echo "--etc--"; cat /etc/hostname /etc/hosts
fi
echo "--end--"
`;

interface Probe {
  status: number | null;
  stderr: string;
  /** The output between `--name--` and the next marker. */
  section(name: string): Buffer;
  text(name: string): string;
}

/**
 * Run PROBE in a container of `step` the way a careless caller would: bash
 * leaves a descriptor of the host's / open (fd 7, not close-on-exec), the
 * host has secrets in its environment, and the command line has bytes that
 * are not UTF-8 (an argument, and a value given with --env).
 */
async function probe(step: Step, options: { hostname: string; rootfs?: string }): Promise<Probe> {
  const bundle = await compile(runtimeFile(step, 'solutions'));
  const where = step.number >= 4 ? 'dev' : 'host'; // steps 1–3 have the host's /dev and /etc
  const script = `exec 7</; cafe=$(printf 'caf\\351'); exec "$@" --env "GREETING=$cafe" -- sh -c "$CFS_PROBE" probe "$cafe" ${where}`;
  const runtimeOptions = ['--hostname', options.hostname, '--env', 'COPIED', ...(options.rootfs ? ['--rootfs', options.rootfs] : [])];
  const child = spawn('/bin/bash', ['-c', script, 'bash', process.execPath, bundle, 'run', ...runtimeOptions], {
    cwd: REPO_ROOT,
    env: { ...process.env, TRACE: '', FORCE_COLOR: '0', COPIED: 'from the host', AWS_SECRET_ACCESS_KEY: 'host-secret', CFS_PROBE: PROBE },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
    killSignal: 'SIGKILL',
  });
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const output = Buffer.concat(stdout);
  const section = (name: string): Buffer => {
    const marker = Buffer.from(`--${name}--\n`);
    const start = output.indexOf(marker);
    if (start === -1) assert.fail(`no ${name} section in the probe's output (exit ${status}): ${output.toString()}\nstderr: ${stderr}`);
    const from = start + marker.length;
    const next = output.indexOf('\n--', from - 1);
    return output.subarray(from, next === -1 ? output.length : next + 1);
  };
  return { status, stderr, section, text: (name) => section(name).toString() };
}

/** A static busybox in a folder of its own: a root filesystem that is not ours. undefined without busybox-static. */
function busyboxRootfs(): string | undefined {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((path) => existsSync(path));
  if (!busybox) return undefined;
  const ldd = spawnSync('ldd', [busybox], { encoding: 'utf8' });
  if (!/not a dynamic executable|statically linked/.test(ldd.stdout + ldd.stderr)) return undefined; // Debian's busybox (not -static) needs libc
  const root = mkdtempSync(`${tmpdir()}/cfs-busybox-`);
  for (const folder of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc', 'root', 'opt/tools']) mkdirSync(join(root, folder), { recursive: true });
  copyFileSync(busybox, join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  chmodSync(root, 0o755);
  const applets = spawnSync(busybox, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter((name) => /^[\w.[-]+$/.test(name) && name !== 'busybox');
  for (const applet of applets) symlinkSync('busybox', join(root, 'bin', applet));
  writeFileSync(join(root, 'etc/hostname'), 'busybox\n');
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1 localhost\n');
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'opt/tools/hello'), '#!/bin/sh\necho "hello from /opt/tools"\n', { mode: 0o755 });
  writeFileSync(join(root, 'marker'), 'the busybox tree\n');
  return root;
}

let busybox: string | undefined;
before(() => {
  busybox = busyboxRootfs();
});
after(async () => {
  if (busybox) rmSync(busybox, { recursive: true, force: true });
  // Killed runtimes of the kill tests leave their cgroup and layer folders for the next run to remove: be that run.
  await removeStaleCgroups();
  removeStaleLayers();
});

/** The busybox tree, or a skip (a failure in CI, which installs busybox-static). */
function needBusybox(t: { skip(message: string): void }): string | undefined {
  if (busybox) return busybox;
  const message = 'no static busybox on this machine (apt-get install busybox-static)';
  if (process.env.CI) assert.fail(message);
  t.skip(message);
  return undefined;
}

/** The fields of /proc/PID/stat after the command name: state, ppid, pgrp, session, ... */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The NAME=VALUE entries of /proc/PID/environ, as Latin-1 text (every byte one character). */
function environment(section: Buffer): string[] {
  return section
    .toString('latin1')
    .replace(/\n$/, '')
    .split('\0')
    .filter(Boolean)
    .sort();
}

function checkEveryStep(probeOf: () => Promise<Probe>, expectedHostname: string): void {
  test('signals: default dispositions and an empty mask (SIGPIPE ends `seq | head` quietly, status 141)', async () => {
    const run = await probeOf();
    assert.match(run.text('signals'), /^SigBlk:\s*0+\nSigIgn:\s*0+\n$/, run.stderr);
    assert.equal(run.text('pipe').trim(), '141', 'the exit status of seq, whose reader went away');
  });
  test('file descriptors: only 0, 1 and 2 reach the command (not the caller\'s fd 7 on the host\'s /, nor the runtime\'s own)', async () => {
    const run = await probeOf();
    assert.deepEqual(run.text('fds').split('\n').filter(Boolean), ['0', '1', '2']);
  });
  test('environment: the container\'s own (PATH, HOSTNAME, HOME) plus --env, none of the host\'s', async () => {
    const run = await probeOf();
    const expected = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${expectedHostname}`, 'HOME=/root', 'COPIED=from the host', `GREETING=${CAFE.toString('latin1')}`];
    assert.deepEqual(environment(run.section('environ')), expected.sort());
  });
  test('session: the command leads a session and process group of its own, without a controlling terminal', async () => {
    const run = await probeOf();
    const stat = run.text('stat');
    const pid = stat.split(' ')[0];
    const [, , group, session] = statFields(stat);
    assert.deepEqual({ group, session }, { group: pid, session: pid }, stat);
    assert.equal(run.text('tty'), 'no /dev/tty\n');
  });
  test('bytes: an argument and a value that are not UTF-8 arrive untouched', async () => {
    const run = await probeOf();
    assert.deepEqual(run.section('argument'), Buffer.concat([CAFE, Buffer.from('\n')]));
    assert.ok(environment(run.section('environ')).includes(`GREETING=${CAFE.toString('latin1')}`));
  });
}

function checkOwnDev(probeOf: () => Promise<Probe>, hostname: string, rootfs: () => string | undefined): void {
  test('/dev: /dev/shm is a 64 MiB tmpfs, mode 1777, that takes a 100 KiB file; /dev/pts is a devpts of its own, whose /dev/ptmx makes ptys', async () => {
    const run = await probeOf();
    const mounts = run.text('mounts');
    assert.match(mounts, / \/dev\/shm .* - tmpfs \S+ \S*size=65536k/, mounts);
    assert.match(mounts, / \/dev\/pts .* - devpts \S+ \S*ptmxmode=666/, mounts);
    const [listing = '', written = ''] = run.text('shm').split('\n');
    assert.match(listing, /^drwxrwxrwt/);
    assert.equal(written, 'wrote 100 KiB');
    assert.deepEqual(run.text('ptmx').split('\n').filter(Boolean), ['pts/ptmx', '0', 'ptmx'], 'a new pty (0) once /dev/ptmx is opened');
  });
  test('/etc/hostname and /etc/hosts name the container; the rootfs\'s own files are untouched', async (t) => {
    const root = rootfs();
    if (root === undefined) return t.skip('no rootfs');
    const before = ['etc/hostname', 'etc/hosts'].map((file) => readFileSync(join(root, file), 'utf8'));
    const run = await probeOf();
    const [name, ...hosts] = run.text('etc').split('\n');
    assert.equal(name, hostname);
    assert.ok(hosts.some((line) => line.split(/\s+/).slice(1).includes(hostname)), `a line of /etc/hosts naming ${hostname}: ${hosts.join('\n')}`);
    assert.ok(hosts.some((line) => /^127\.0\.0\.1\s+localhost/.test(line)));
    assert.deepEqual(['etc/hostname', 'etc/hosts'].map((file) => readFileSync(join(root, file), 'utf8')), before);
  });
}

describe('like a real container, at every step (reference solutions, our rootfs)', { concurrency: 2 }, () => {
  for (const step of STEPS) {
    describe(`step ${step.number}`, () => {
      const hostname = `probe-${step.number}`;
      let run: Promise<Probe> | undefined;
      const probeOf = (): Promise<Probe> => (run ??= probe(step, { hostname }));
      // Without a UTS namespace (step 1), the container's hostname is the host's.
      checkEveryStep(probeOf, step.number === 1 ? hostHostname() : hostname);
      if (step.number >= 4) checkOwnDev(probeOf, hostname, () => DEFAULT_ROOTFS);
    });
  }
  test('the default rootfs has the everyday text tools (env | sort, cut, seq, yes, wc, tr, awk, …)', async () => {
    const bundle = await compile(runtimeFile(stepNumbered(4), 'solutions'));
    const tools = ['sort', 'uniq', 'cut', 'seq', 'yes', 'wc', 'tr', 'awk', 'tee', 'xargs', 'od', 'tty', 'stty'];
    const result = spawnSync(process.execPath, [bundle, 'run', '--', 'sh', '-c', `for tool in ${tools.join(' ')}; do command -v $tool >/dev/null || echo "missing $tool"; done; env -i B=2 A=1 env | sort | cut -d= -f1 | tr '\\n' ' '; yes | head -n 2 | wc -l | awk '{ print "yes:" $1 }'`], { cwd: REPO_ROOT, encoding: 'utf8', input: '', timeout: 30_000 });
    assert.equal(result.stdout, 'A B yes:2\n', result.stderr);
    assert.equal(result.status, 0, result.stderr);
  });
});

describe('like a real container, on a rootfs that is not ours (static busybox)', { concurrency: 2 }, () => {
  for (const number of [4, 8]) {
    describe(`step ${number}`, () => {
      const hostname = `busybox-${number}`;
      let run: Promise<Probe> | undefined;
      const probeOf = (): Promise<Probe> => (run ??= probe(stepNumbered(number), { hostname, rootfs: busybox! }));
      before((t) => void needBusybox(t as never));
      checkEveryStep(probeOf, hostname);
      checkOwnDev(probeOf, hostname, () => busybox);
    });
  }
  test('the command is looked up in the container\'s PATH (--env PATH=…), not the host\'s', async (t) => {
    const root = needBusybox(t);
    if (!root) return;
    const bundle = await compile(runtimeFile(stepNumbered(4), 'solutions'));
    const result = spawnSync(process.execPath, [bundle, 'run', '--rootfs', root, '--env', 'PATH=/opt/tools:/bin', '--', 'hello'], { cwd: REPO_ROOT, encoding: 'utf8', input: '', timeout: 30_000 });
    assert.equal(result.stdout, 'hello from /opt/tools\n', result.stderr);
  });
  test('a relative --rootfs is found where `npm run step` was typed (INIT_CWD), not in the repository', async (t) => {
    const root = needBusybox(t);
    if (!root) return;
    const result = spawnSync(process.execPath, ['cli/launch.mjs', 'cli/step.ts', '4', '--solution', '--rootfs', basename(root), '--', 'cat', '/marker'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      input: '',
      env: { ...process.env, INIT_CWD: dirname(root), npm_lifecycle_event: 'step', FORCE_COLOR: '0' },
      timeout: 30_000,
    });
    assert.equal(result.stdout, 'the busybox tree\n', result.stderr);
  });
});

describe('options and rootless', () => {
  test('--env with a NAME that is not one is refused before anything starts (exit 2)', async () => {
    const bundle = await compile(runtimeFile(stepNumbered(4), 'solutions'));
    const result = spawnSync(process.execPath, [bundle, 'run', '--env', '1X=y', '--', 'true'], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' }, timeout: 30_000 });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--env takes NAME=VALUE or NAME .* not "1X=y"/);
  });

  test('rootless (npm run step as nobody, re-executed through unshare): the exact bytes, the container\'s environment', () => {
    const script = `cafe=$(printf 'caf\\351'); exec "$@" --env "GREETING=$cafe" -- sh -c 'cat /proc/$$/environ; echo; printf "%s\\n" "$1"' probe "$cafe"`;
    const result = spawnSync('/bin/bash', ['-c', script, 'bash', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, 'cli/launch.mjs', 'cli/step.ts', '4', '--solution'], {
      cwd: REPO_ROOT,
      env: { ...process.env, HOME: '/tmp', FORCE_COLOR: '0', AWS_SECRET_ACCESS_KEY: 'host-secret' },
      input: '',
      timeout: 30_000,
    });
    assert.equal(result.status, 0, result.stderr.toString());
    const [environ = '', argument] = result.stdout.toString('latin1').split('\n');
    assert.deepEqual(environ.split('\0').filter(Boolean).sort(), [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=container', 'HOME=/root', `GREETING=${CAFE.toString('latin1')}`].sort());
    assert.equal(argument, CAFE.toString('latin1'));
  });
});

describe('a session of its own', () => {
  test('`kill -TERM 0` inside reaches only the container, not the caller\'s process group', async () => {
    const bundle = await compile(runtimeFile(stepNumbered(2), 'solutions'));
    // A process group of its own for the caller (bash), with a bystander in it.
    const script = `sleep 600 & bystander=$!; "$@"; echo "status=$?"; kill -0 $bystander && echo "bystander alive"; kill $bystander`;
    const caller = spawn('/bin/bash', ['-c', script, 'bash', process.execPath, bundle, 'run', '--', 'sh', '-c', 'kill -TERM 0; sleep 5'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000, killSignal: 'SIGKILL' });
    let output = '';
    caller.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exit = await new Promise<NodeJS.Signals | number | null>((resolve) => caller.on('close', (code, signal) => resolve(signal ?? code)));
    assert.equal(exit, 0, `the caller was ${typeof exit === 'string' ? `killed by ${exit}` : `ended with ${exit}`}: ${output}`);
    assert.equal(output, 'status=143\nbystander alive\n');
  });
});

/** A program run in a real pseudo-terminal (util-linux `script`), and what it shows. */
class Terminal {
  private screen = '';
  private readonly program: ChildProcess;
  readonly closed: Promise<number | null>;

  constructor(shellCommand: string) {
    this.program = spawn('script', ['-qfec', shellCommand, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.program.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.screen += chunk));
    this.closed = new Promise((resolve) => this.program.on('close', (code) => resolve(code)));
  }

  /** Where the screen ends now: wait for what comes after. */
  mark(): number {
    return this.screen.length;
  }

  async waitFor(pattern: RegExp, from = 0, timeoutMs = 10_000): Promise<RegExpExecArray> {
    let found: RegExpExecArray | null = null;
    await waitFor(() => (found = pattern.exec(this.screen.slice(from))) !== null, timeoutMs);
    if (!found) assert.fail(`timed out waiting for ${pattern} on the terminal, which shows:\n${this.screen.slice(from)}`);
    return found;
  }

  press(keys: string): void {
    this.program.stdin!.write(keys);
  }

  async type(keys: string, expect: RegExp): Promise<RegExpExecArray> {
    const from = this.mark();
    this.press(keys);
    return this.waitFor(expect, from);
  }

  /** Press Enter for the last `read` of the session, and wait for `script` to exit. */
  end(): Promise<number | null> {
    this.program.stdin!.write('\r');
    return this.closed;
  }

  kill(): void {
    this.program.kill('SIGKILL');
  }
}

/** Is the terminal at `path` (the one `script` gives the runtime) in raw mode? Read with tcgetattr, from outside. */
function inRawMode(path: string): boolean {
  const fd = openSync(path, fs.O_RDWR | fs.O_NOCTTY | fs.O_NONBLOCK);
  try {
    const ICANON = 0x2;
    const ECHO = 0x8;
    return (tcgetattr(fd).readUInt32LE(TERMIOS_LFLAG_OFFSET) & (ICANON | ECHO)) === 0;
  } finally {
    closeSync(fd);
  }
}

/** The window size of the terminal at `path`. */
function windowSize(path: string): { rows: number; columns: number } {
  const fd = openSync(path, fs.O_RDWR | fs.O_NOCTTY | fs.O_NONBLOCK);
  try {
    const size = Buffer.alloc(8);
    ioctl(fd, TIOCGWINSZ, size, '&size');
    return { rows: size.readUInt16LE(0), columns: size.readUInt16LE(2) };
  } finally {
    closeSync(fd);
  }
}

/** Resize the terminal at `path` from outside, as a terminal window does: its foreground processes get SIGWINCH. */
function resize(path: string, rows: number, columns: number): void {
  const fd = openSync(path, fs.O_RDWR | fs.O_NOCTTY | fs.O_NONBLOCK);
  try {
    const size = Buffer.alloc(8);
    size.writeUInt16LE(rows, 0);
    size.writeUInt16LE(columns, 2);
    ioctl(fd, TIOCSWINSZ, size, `{${rows}, ${columns}}`);
  } finally {
    closeSync(fd);
  }
}

describe('a terminal of its own when stdin is one (driven through a real pty)', { concurrency: 2 }, () => {
  const step8 = stepNumbered(8);

  test('step 8: tty is /dev/pts/0 (and /dev/tty is it, not the host\'s), window size and its changes pass, job control works, raw mode on the host\'s terminal until exit', async (t) => {
    const bundle = await compile(runtimeFile(step8, 'solutions'));
    const terminal = new Terminal(`stty rows 30 cols 100; tty; stty -g; ${process.execPath} ${bundle} run; echo "status=$?"; stty -g; read -r _`);
    t.after(() => terminal.kill());
    const [, hostTerminal, settings] = await terminal.waitFor(/^(\/dev\/pts\/\d+)\r?\n(\S+)\r?\n/);
    await terminal.waitFor(/container:\/# $/);
    assert.ok(inRawMode(hostTerminal!), 'the host terminal is in raw mode while the container runs');
    await terminal.type('tty; stty size; echo "TERM=$TERM"; readlink /proc/self/fd/0\r', /\/dev\/pts\/0\r?\n30 100\r?\nTERM=xterm\r?\n\/dev\/pts\/0\r?\n/);
    // Resized from outside: the container's foreground process gets SIGWINCH, and sees the new size.
    await terminal.type(`sh -c 'trap "stty size; exit 0" WINCH; echo waiting; while :; do sleep 0.1; done'\r`, /waiting\r?\n/);
    resize(hostTerminal!, 40, 120);
    await terminal.waitFor(/40 120\r?\n/, terminal.mark() - 20);
    // /dev/tty inside is the container's terminal, not the host's: changing it leaves the host's alone.
    await terminal.type('stty cols 77 < /dev/tty; stty size\r', /40 77\r?\n/);
    assert.deepEqual(windowSize(hostTerminal!), { rows: 40, columns: 120 });
    // Job control: Ctrl-Z stops the foreground job, fg brings it back, Ctrl-C ends it.
    const sleeper = `sleep ${randomInt(100_000, 999_999)}`;
    await terminal.type(`${sleeper}\r`, new RegExp(`${sleeper}\\r?\\n`));
    await waitFor(() => hostProcesses(sleeper.split(' ')).length === 1, 5000);
    await terminal.type('\x1a', /Stopped\s+sleep/);
    await terminal.type('fg\r', new RegExp(`${sleeper}\\r?\\n`));
    await terminal.type('\x03', /container:\/# $/);
    await terminal.type('echo "after Ctrl-C: $?"\r', /after Ctrl-C: 130/);
    const [, after] = await terminal.type('exit 3\r', /status=3\r?\n(\S+)\r?\n/);
    assert.equal(after, settings, 'the terminal settings after the run');
    assert.equal(inRawMode(hostTerminal!), false);
    assert.equal(await terminal.end(), 0);
  });

  test('step 8: Ctrl-C ends a PID 1 without a handler, kill -9 of the container ends the runtime; the terminal is restored each time', async (t) => {
    const bundle = await compile(runtimeFile(step8, 'solutions'));
    const [first, second] = [`sleep ${randomInt(100_000, 999_999)}`, `sleep ${randomInt(100_000, 999_999)}`];
    const run = (command: string) => `${process.execPath} ${bundle} run -- ${command}; echo "status=$?"; stty -g`;
    const terminal = new Terminal(`tty; stty -g; ${run(first)}; ${run(second)}; read -r _`);
    t.after(() => terminal.kill());
    const [, hostTerminal, settings] = await terminal.waitFor(/^(\/dev\/pts\/\d+)\r?\n(\S+)\r?\n/);
    await waitFor(() => hostProcesses(first.split(' ')).length === 1, 10_000);
    await waitFor(() => inRawMode(hostTerminal!), 2000);
    assert.ok(inRawMode(hostTerminal!));
    const [, afterCtrlC] = await terminal.type('\x03', /status=137\r?\n(\S+)\r?\n/);
    assert.equal(afterCtrlC, settings);
    await waitFor(() => hostProcesses(second.split(' ')).length === 1, 10_000);
    await waitFor(() => inRawMode(hostTerminal!), 2000);
    const from = terminal.mark();
    for (const pid of hostProcesses(second.split(' '))) process.kill(pid, 'SIGKILL');
    const [, afterKill] = await terminal.waitFor(/status=137\r?\n(\S+)\r?\n/, from);
    assert.equal(afterKill, settings);
    assert.equal(inRawMode(hostTerminal!), false);
    assert.equal(await terminal.end(), 0);
  });

  test('busybox at step 4: tty is /dev/pts/0 and the window size passes', async (t) => {
    const root = needBusybox(t);
    if (!root) return;
    const bundle = await compile(runtimeFile(stepNumbered(4), 'solutions'));
    const terminal = new Terminal(`stty rows 25 cols 90; ${process.execPath} ${bundle} run --rootfs ${root} -- sh -c 'tty; stty size'; echo "status=$?"`);
    t.after(() => terminal.kill());
    await terminal.waitFor(/\/dev\/pts\/0\r?\n25 90\r?\n(\r?\n)*status=0/);
  });

  test('step 3: characters pushed into /dev/tty (TIOCSTI) inside stay in the container\'s terminal, never reach the host\'s shell', async (t) => {
    const python = '/usr/bin/python3'; // steps 1–3 see the host's files
    if (!existsSync(python)) return t.skip('needs python3 on the host for the ioctl');
    // Kernels before 6.2 have no such setting: TIOCSTI always works there.
    if (existsSync('/proc/sys/dev/tty/legacy_tiocsti') && readFileSync('/proc/sys/dev/tty/legacy_tiocsti', 'utf8').trim() === '0') {
      return t.skip('this kernel refuses TIOCSTI to everyone (dev.tty.legacy_tiocsti = 0)');
    }
    const bundle = await compile(runtimeFile(stepNumbered(3), 'solutions'));
    const inject = `import fcntl, termios; tty = open("/dev/tty", "wb", buffering=0); [fcntl.ioctl(tty, termios.TIOCSTI, bytes([c])) for c in b"echo INJECTED\\n"]; print("pushed")`;
    const terminal = new Terminal(`${process.execPath} ${bundle} run -- ${python} -c '${inject}'; echo "status=$?"; read -r line; echo "the host read: $line"`);
    t.after(() => terminal.kill());
    await terminal.waitFor(/status=\d+/);
    // The host shell's `read` gets the next line of its terminal: the user's, unless the container pushed one in first.
    terminal.press('typed by the user\r');
    const [, line] = await terminal.waitFor(/the host read: (.*)\r?\n/);
    assert.equal(line, 'typed by the user');
  });
});

describe('killing the runtime during setup leaves nothing running', { concurrency: 3 }, () => {
  // A sample: `npm run bench -- --kills 200` runs the full count.
  for (const number of [4, 5, 6, 8]) {
    const delay = randomInt(0, 400);
    test(`step ${number}: kill -9 after ${delay} ms`, async () => {
      assert.deepEqual(await killDuringSetup(stepNumbered(number), 'solutions', delay, 'SIGKILL'), []);
    });
  }
  test('step 5: kill -9 the moment the runtime\'s child exists (its Node still starting: the tightest spot)', async () => {
    assert.deepEqual(await killDuringSetup(stepNumbered(5), 'solutions', 'child-started', 'SIGKILL'), []);
  });
  const delay = randomInt(0, 80);
  test(`step 8: SIGTERM after ${delay} ms, before the runtime has handlers`, async () => {
    assert.deepEqual(await killDuringSetup(stepNumbered(8), 'solutions', delay, 'SIGTERM'), []);
  });
});
