// Mistakes a participant makes, each answered with one clear paragraph (no
// stack trace) and the right exit code: 2 for a bad value (rejected before
// anything exists), 125 when the runtime cannot set the container up (and
// removes what it had created), 126/127 for the command itself. After every
// run, nothing of it may be left: no cgroup, layer folder, mount or process.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cgroup, cgroupLayout } from '../lib/container/cgroups.js';
import { argumentSpace } from '../lib/container/options.js';
import { LAYERS_PARENT, layersOf } from '../lib/container/overlay.js';
import { DEFAULT_ROOTFS, REPO_ROOT } from '../lib/paths.js';
import { compile } from '../workshop/compile.mjs';
import { runContainer, runtimeFile, stepNumbered, type RunResult } from '../workshop/harness.js';
import { copyOfRepository } from './helpers.js';

const scratch = mkdtempSync(`${tmpdir()}/cfs-bad-input-`);
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Explained in one paragraph: a ✗ line, a fix, and no stack trace. */
function assertExplained(stderr: string, pattern: RegExp): void {
  assert.match(stderr, /✗ /);
  assert.match(stderr, pattern);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace without --debug');
}

/** Folders for the inputs that point somewhere. */
const at = (name: string): string => join(scratch, name);

/** A folder that passes the rootfs check (an executable /bin/sh, /proc, /dev, /sys), then `change` it. */
function fakeRootfs(name: string, change: (root: string) => void = () => {}): string {
  const root = at(name);
  for (const folder of ['bin', 'proc', 'dev', 'sys']) mkdirSync(join(root, folder), { recursive: true });
  writeFileSync(join(root, 'bin/sh'), '#!/bin/false\n', { mode: 0o755 });
  change(root);
  return root;
}

before(() => {
  writeFileSync(at('a-file'), '');
  fakeRootfs('no-sys', (root) => rmSync(join(root, 'sys'), { recursive: true }));
  fakeRootfs('no-shell', (root) => rmSync(join(root, 'bin/sh')));
  fakeRootfs('shell-not-executable', (root) => chmodSync(join(root, 'bin/sh'), 0o644));
  fakeRootfs('shell-loop', (root) => {
    rmSync(join(root, 'bin/sh'));
    symlinkSync('sh', join(root, 'bin/sh'));
  });
  fakeRootfs('dev-symlink', (root) => {
    rmSync(join(root, 'dev'), { recursive: true });
    symlinkSync('/dev', join(root, 'dev'));
  });
  symlinkSync('/', at('link-to-root'));
  symlinkSync(DEFAULT_ROOTFS, at('root,fs:with-commas'));
  mkdirSync(at('temp,with:colons'));
  mkdirSync(at('outer/inner'), { recursive: true });
});

interface Row {
  /** What is tried. */
  input: string;
  step: number;
  /** The runtime's arguments after `run`; `token` makes ids, paths and commands unique to this row. */
  args: (token: string) => string[];
  env?: (token: string) => NodeJS.ProcessEnv;
  /** Run it in a private mount namespace where the folder of the layers is a tmpfs with no free inode. */
  noInodes?: true;
  status: number;
  /** What the error says (stderr), or what the command prints (stdout) when it works. */
  says: RegExp;
}

/** The usual arguments: options, then a command that names the row. */
const withOptions = (...options: string[]) => (token: string) => ['--id', `bad-${token}`, ...options, '--', 'true', token];
const usage = (input: string, options: string[], says: RegExp, step = 8): Row => ({ input, step, args: withOptions(...options), status: 2, says });
const setup = (input: string, options: string[], says: RegExp, step = 8): Row => ({ input, step, args: withOptions(...options), status: 125, says });

const ROWS: Row[] = [
  // The command line itself.
  { input: 'an unknown option', step: 4, args: () => ['--frobnicate', 'true'], status: 2, says: /unknown option "--frobnicate"[\s\S]*usage:/ },
  { input: 'an option without its value', step: 5, args: () => ['--memory'], status: 2, says: /--memory needs a value[\s\S]*usage:/ },
  { input: 'an empty command', step: 4, args: () => [''], status: 2, says: /the command is empty[\s\S]*usage:/ },
  // --memory (item 1, 2)
  usage('--memory abc', ['--memory', 'abc'], /--memory must be a size like 64M.*not "abc"[\s\S]*Example: --memory 64M/, 5),
  usage('--memory -1', ['--memory', '-1'], /--memory must be a size.*not "-1"/, 5),
  usage("--memory ''", ['--memory', ''], /--memory must be a size.*not ""/, 5),
  usage('--memory 99999999999999999999G', ['--memory', '99999999999999999999G'], /--memory "99999999999999999999G" is too large/, 5),
  usage('--memory 0', ['--memory', '0'], /--memory 0 is too small/, 5),
  usage('--memory 1', ['--memory', '1'], /--memory 1 is too small/, 5),
  usage('--memory 1k', ['--memory', '1k'], /--memory 1k is too small[\s\S]*at least 6M/, 5),
  usage('--memory 5M', ['--memory', '5M'], /--memory 5M is too small/, 6),
  usage('--memory 1.5G', ['--memory', '1.5G'], /--memory must be a size.*not "1\.5G"/, 7),
  usage("--memory '64 M'", ['--memory', '64 M'], /--memory must be a size.*not "64 M"/, 8),
  usage('--memory 12X', ['--memory', '12X'], /--memory must be a size.*not "12X"/, 8),
  // --pids-max
  usage('--pids-max 99999999999999999999', ['--pids-max', '99999999999999999999'], /--pids-max 99999999999999999999 is more than Linux can count[\s\S]*Example: --pids-max 64/, 5),
  usage('--pids-max 0x10', ['--pids-max', '0x10'], /--pids-max must be a positive whole number, not "0x10"/, 5),
  usage('--pids-max 1e3', ['--pids-max', '1e3'], /--pids-max must be a positive whole number, not "1e3"/, 5),
  usage("--pids-max ' 7'", ['--pids-max', ' 7'], /--pids-max must be a positive whole number, not " 7"/, 6),
  usage('--pids-max 0', ['--pids-max', '0'], /--pids-max 0 would not even let the command itself start/, 7),
  usage('--pids-max -1', ['--pids-max', '-1'], /--pids-max must be a positive whole number, not "-1"/, 8),
  usage("--pids-max ''", ['--pids-max', ''], /--pids-max must be a positive whole number, not ""/, 8),
  usage('--pids-max 4194305', ['--pids-max', '4194305'], /--pids-max 4194305 is more than Linux can count \(4194304\)/, 8),
  // --hostname (caught before the child's sethostname)
  usage("--hostname ''", ['--hostname', ''], /--hostname is empty[\s\S]*Example: --hostname web-1/, 2),
  usage('--hostname with control characters', ['--hostname', 'a\x1b[31mred'], /--hostname "a\\u001b\[31mred" has control characters/, 2),
  usage('--hostname of 65 bytes', ['--hostname', 'h'.repeat(65)], /--hostname "h+"… \(65 bytes\) is too long: the kernel allows at most 64 bytes/, 8),
  usage('--hostname with a space', ['--hostname', 'my host'], /--hostname "my host" has spaces/, 8),
  usage('--hostname starting with "-"', ['--hostname', '-x'], /--hostname "-x" has characters a hostname cannot have/, 8),
  usage('--hostname with a newline', ['--hostname', 'a\nb'], /--hostname "a\\nb" has control characters/, 4),
  usage('--hostname not in ASCII', ['--hostname', 'häst'], /--hostname "häst" has characters a hostname cannot have/, 4),
  // --id (issue 11, item 7: it names folders)
  { input: '--id ../../tmp/x', step: 5, args: (token) => ['--id', `../../tmp/${token}`, 'true'], status: 2, says: /--id "\.\.\/\.\.\/tmp\/[0-9a-f]+" is not a container id[\s\S]*Example: --id web-1/ },
  { input: "--id ''", step: 6, args: () => ['--id', '', 'true'], status: 2, says: /--id "" is not a container id/ },
  { input: '--id with capitals', step: 6, args: (token) => ['--id', `Web-${token}`, 'true'], status: 2, says: /--id "Web-[0-9a-f]+" is not a container id/ },
  { input: '--id with a slash', step: 8, args: (token) => ['--id', `a/${token}`, 'true'], status: 2, says: /is not a container id/ },
  { input: '--id starting with "-"', step: 8, args: (token) => ['--id', `-${token}`, 'true'], status: 2, says: /is not a container id/ },
  { input: '--id of 64 characters', step: 8, args: (token) => ['--id', token.padEnd(64, 'x'), 'true'], status: 2, says: /is not a container id: .*1 to 63/ },
  // --rootfs (issue 11, item 3: at every step)
  usage('--rootfs /', ['--rootfs', '/'], /--rootfs "\/" is the host's own root folder[\s\S]*--rootfs rootfs/, 1),
  usage('--rootfs /', ['--rootfs', '/'], /--rootfs "\/" is the host's own root folder/, 6),
  usage('--rootfs, a symlink to /', ['--rootfs', at('link-to-root')], /link-to-root" is the host's own root folder/, 8),
  usage('--rootfs containing the repository', ['--rootfs', dirname(REPO_ROOT)], /contains the workshop repository/, 4),
  { input: '--rootfs containing the current folder', step: 8, args: withOptions('--rootfs', at('outer')), env: () => ({ INIT_CWD: at('outer/inner') }), status: 2, says: /outer" contains your current folder/ },
  usage("--rootfs ''", ['--rootfs', ''], /--rootfs is empty/, 3),
  // The rootfs's contents: the runtime cannot set up (125).
  setup('--rootfs that does not exist', ['--rootfs', '/no/such/rootfs'], /the root filesystem \/no\/such\/rootfs is not usable: it does not exist/, 4),
  setup('--rootfs that is a file', ['--rootfs', at('a-file')], /not usable: it is a file, not a folder/, 8),
  setup('a rootfs without /bin/sh', ['--rootfs', at('no-shell')], /not usable: it has no \/bin\/sh/, 4),
  setup('a rootfs whose /bin/sh is not executable', ['--rootfs', at('shell-not-executable')], /\/bin\/sh is not an executable file/, 5),
  setup('a rootfs whose /bin/sh is a symlink loop', ['--rootfs', at('shell-loop')], /it has no \/bin\/sh/, 6),
  setup('a rootfs without /sys', ['--rootfs', at('no-sys')], /it has no \/sys folder to mount onto[\s\S]*mkdir .*no-sys\/sys/, 7),
  setup("a rootfs whose /dev is a symlink to the host's", ['--rootfs', at('dev-symlink')], /it has no \/dev folder to mount onto/, 8),
  // The temporary folder, where the layers go: a setup failure after the cgroup exists.
  // (Once it spun at 60% CPU for minutes; root keeps its layers in /run now, so it must simply work.)
  { input: 'TMPDIR=/proc/self', step: 6, args: (token) => ['--id', `bad-${token}`, 'sh', '-c', 'echo in $(hostname)', token], env: () => ({ TMPDIR: '/proc/self' }), status: 0, says: /^in container$/ },
  { input: 'a layers folder without free inodes', step: 8, args: withOptions(), noInodes: true, status: 125, says: /failed: ENOSPC: no space \(or no free inodes\) left there/ },
  // The command itself: after everything was set up.
  { input: 'a command not in the rootfs', step: 8, args: (token) => ['--id', `bad-${token}`, 'no-such-command', token], status: 127, says: /execvp\("no-such-command", .*\) failed: ENOENT[\s\S]*not found in the container/ },
  { input: 'a command that is not executable', step: 8, args: (token) => ['--id', `bad-${token}`, '/etc/os-release', token], status: 126, says: /failed: EACCES/ },
  // Accepted: these must work.
  { input: 'a rootfs path with "," and ":"', step: 8, args: (token) => ['--id', `bad-${token}`, '--rootfs', at('root,fs:with-commas'), 'sh', '-c', 'echo in $(hostname)', token], status: 0, says: /^in container$/ },
  { input: 'a TMPDIR with "," and ":"', step: 8, args: (token) => ['--id', `bad-${token}`, 'sh', '-c', 'echo written > /new; cat /new', token], env: () => ({ TMPDIR: at('temp,with:colons') }), status: 0, says: /^written$/ },
  { input: '--memory 1T', step: 5, args: (token) => ['--id', `bad-${token}`, '--memory', '1T', 'echo', 'fits', token], status: 0, says: /^fits [0-9a-f]+$/ },
  { input: 'a hostname of 64 bytes', step: 2, args: () => ['--hostname', 'h'.repeat(64), 'hostname'], status: 0, says: /^h{64}$/ },
  { input: 'a relative --rootfs', step: 4, args: () => ['--rootfs', 'rootfs', 'sh', '-c', 'ls /bin/sh'], status: 0, says: /^\/bin\/sh$/ },
];

/** Run a row, in a private mount namespace with a full TMPDIR when it asks for one. */
/** What a row's run shows: its outcome, and (through the check harness) the leftovers the harness found and removed. */
type RowResult = Pick<RunResult, 'status' | 'signal' | 'stdout' | 'stderr' | 'reproduce'> & { leftovers?: RunResult['leftovers'] };

async function runRow(row: Row, token: string): Promise<RowResult> {
  const step = stepNumbered(row.step);
  const args = row.args(token);
  const env = row.env?.(token) ?? {};
  if (!row.noInodes) {
    // runContainer puts `--` before its command: pass the whole list as options, and no command.
    return runContainer(step, 'solutions', [], { options: args, env, omitSeparator: true });
  }
  const bundle = await compile(runtimeFile(step, 'solutions'));
  if (!existsSync(LAYERS_PARENT)) assert.equal((await runContainer(step, 'solutions', ['true'])).status, 0); // the runtime makes the mount point
  // A tmpfs whose only inode is its root: the first mkdir in it fails with ENOSPC. The mount lives and dies with the namespace.
  const script = `mount -t tmpfs -o nr_inodes=1,size=64k,mode=0700 none "$1" && shift && exec "$@"`;
  return spawnCollect('unshare', ['--mount', 'sh', '-c', script, 'sh', LAYERS_PARENT, process.execPath, bundle, 'run', ...args], {});
}

function spawnCollect(program: string, args: string[], env: NodeJS.ProcessEnv): Promise<RowResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env: { ...process.env, FORCE_COLOR: '0', TRACE: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr, reproduce: [program, ...args].join(' ') }));
  });
}

/** What a run that used `token` left behind: cgroups, layer folders, mounts, processes naming it. */
function leftovers(token: string, args: string[]): string[] {
  const found: string[] = [];
  const ids = [`bad-${token}`, ...args.filter((arg) => arg.includes(token))];
  const layout = cgroupLayout();
  for (const id of ids) {
    for (const folder of [...new Cgroup(layout, id).folders, layersOf(id).dir]) {
      if (folder.includes(token) && existsSync(folder)) found.push(folder);
    }
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (line.includes(token)) found.push(`mount: ${line}`);
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(token)) found.push(`process ${pid}: ${cmdline.replace(/\0/g, ' ')}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

describe(`${ROWS.length} inputs: one paragraph, the right exit status, nothing left behind`, { concurrency: 4 }, () => {
  for (const row of ROWS) {
    test(`${row.input} (step ${row.step}) → ${row.status}`, async () => {
      const token = randomBytes(4).toString('hex');
      const result = await runRow(row, token);
      const what = `${row.input}: stderr was\n${result.stderr}`;
      assert.equal(result.status, row.status, what);
      if (row.status === 0) assert.match(result.stdout.trim(), row.says, what);
      else assertExplained(result.stderr, row.says);
      // The harness removes what a run of its left (and says so): both count.
      const removedByHarness = (result.leftovers ?? []).map((leftover) => `${leftover.kind}: ${leftover.what}`);
      assert.deepEqual([...leftovers(token, row.args(token)), ...removedByHarness], [], `${row.input} left things behind`);
    });
  }
});

describe('E2BIG: an argument list just under the limit of the system', () => {
  test('is refused before anything is created (exit 2), not by spawn after the cgroup exists', async () => {
    const token = randomBytes(4).toString('hex');
    const bundle = await compile(runtimeFile(stepNumbered(8), 'solutions'));
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', FORCE_COLOR: '0' };
    const head = [process.execPath, bundle, 'run', '--id', `bad-${token}`, '--', 'true', token];
    // execve(2) counts each string with its NUL, a pointer for each, and the program's path once more.
    const size = (strings: string[]): number => strings.reduce((sum, text) => sum + Buffer.byteLength(text) + 1 + 8, 0);
    const fixed = size([...head, ...Object.entries(env).map(([name, value]) => `${name}=${value}`)]) + process.execPath.length + 1;
    const room = argumentSpace() - fixed - 300; // the runtime itself still starts; its re-spawn (≈ 300 bytes more) would not
    const filler = Array.from({ length: Math.floor(room / 1009) }, (_, index) => `${index}`.padEnd(1000, 'x'));
    const result = await new Promise<{ status: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(head[0]!, [...head.slice(1), ...filler], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stderr }));
    });
    assert.equal(result.status, 2, result.stderr);
    assertExplained(result.stderr, /the command and the environment take \d+ bytes: more than the \d+ bytes Linux lets the runtime pass on/);
    assert.deepEqual(leftovers(token, [`bad-${token}`]), []);
  });
});

describe('two containers with one --id', () => {
  test('the second is refused (125) and the first keeps running, in its own cgroup', async () => {
    const id = `bad-${randomBytes(4).toString('hex')}`;
    const step = stepNumbered(8);
    let release = (): void => {};
    const holdStdinUntil = new Promise<void>((resolve) => (release = resolve));
    const first = runContainer(step, 'solutions', ['sh', '-c', 'echo started; read _; echo still here'], { options: ['--id', id], holdStdinUntil });
    try {
      const cgroup = new Cgroup(cgroupLayout(), id);
      for (let tries = 0; cgroup.processes().length === 0 && tries < 500; tries++) await new Promise((r) => setTimeout(r, 20));
      const second = await runContainer(step, 'solutions', ['true'], { options: ['--id', id], idInUse: true });
      assert.equal(second.status, 125, second.stderr);
      assertExplained(second.stderr, new RegExp(`a container with the id "${id}" is already running[\\s\\S]*another --id`));
    } finally {
      release();
    }
    const result = await first;
    assert.equal(result.stdout, 'started\nstill here\n', result.stderr);
    assert.deepEqual(leftovers(id.slice(4), [id]), []);
  });
});

describe('--debug', () => {
  test('a failing call names the call, the errno and a hint; --debug adds the stack', async () => {
    const step = stepNumbered(4);
    const plain = await runContainer(step, 'solutions', ['no-such-command']);
    assertExplained(plain.stderr, /execvp\("no-such-command", \["no-such-command"\]\) failed: ENOENT \(No such file or directory\)\n  The command was not found/);
    const debug = await runContainer(step, 'solutions', ['no-such-command'], { options: ['--debug'] });
    assert.match(debug.stderr, /LibcError: execvp[\s\S]*\n\s+at /);
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
    const locked = at('locked');
    mkdirSync(`${locked}/inner`, { recursive: true });
    chmodSync(scratch, 0o755); // nobody must reach `locked` itself
    chmodSync(locked, 0o000);
    try {
      const result = await runContainer(stepNumbered(4), 'solutions', ['true'], { options: ['--rootfs', `${locked}/inner`], asUser: { uid: 65534, gid: 65534 } });
      assert.equal(result.status, 125);
      assertExplained(result.stderr, /not usable/);
    } finally {
      chmodSync(locked, 0o755);
      chmodSync(scratch, 0o700);
    }
  });
});
