// node --import tsx --test tests/doctor.test.ts   (as root: it also runs the doctor as an unprivileged user)
//
// `npm run doctor` on this machine, as root and as nobody (rootless), in both
// its human and its --json form; plus the pure parts of lib/host/machine.ts.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compile } from '../workshop/compile.mjs';
import { detectCgroups, parseMountinfo, readMounts } from '../lib/host/machine.js';
import { REPO_ROOT } from '../lib/paths.js';
import { outputOf, type Output } from './helpers.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

const EXPECTED_NAMES = [
  'os',
  'arch',
  'kernel',
  'node',
  'unshare',
  'privileges',
  'ffi-rs',
  'uts namespace',
  'pid namespace',
  'mount namespace',
  'net namespace',
  'ipc namespace',
  'user namespace',
  'cgroup namespace',
  'cgroups',
  'cgroup controllers',
  'overlayfs',
  'seccomp',
  'rootfs',
];

interface DoctorCheck {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

type DoctorRun = Output;

/** `npm run doctor -- <args>`, as this user or (through setpriv) as another one. */
function runDoctor(args: string[] = [], asUser?: number): Promise<DoctorRun> {
  // The way npm runs it: node cli/launch.mjs cli/doctor.ts. HOME=/tmp so that
  // nobody (whose home does not exist) has somewhere to be; its compile cache
  // falls back to a per-user temporary folder (workshop/compile.mjs).
  let program = process.execPath;
  let argv = ['cli/launch.mjs', 'cli/doctor.ts', ...args];
  if (asUser !== undefined) {
    argv = [`--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', program, ...argv];
    program = 'setpriv';
  }
  const child = spawn(program, argv, {
    cwd: REPO_ROOT,
    env: { ...process.env, FORCE_COLOR: '0', TRACE: '', HOME: asUser === undefined ? process.env.HOME : '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 20_000,
    killSignal: 'SIGKILL',
  });
  return outputOf(child);
}

function show(run: DoctorRun): string {
  return `exit ${run.status}\n--- stdout\n${run.stdout}--- stderr\n${run.stderr}`;
}

function parseJson(run: DoctorRun): DoctorCheck[] {
  const checks = JSON.parse(run.stdout) as DoctorCheck[];
  assert.ok(Array.isArray(checks), 'the JSON is an array');
  return checks;
}

function byName(checks: DoctorCheck[], name: string): DoctorCheck {
  const check = checks.find((candidate) => candidate.name === name);
  assert.ok(check, `there is a check named ${JSON.stringify(name)}`);
  return check;
}

/** The lines of a report, for a check: "  ✓ privileges   root". */
function reportLine(stdout: string, name: string): string {
  const line = stdout.split('\n').find((candidate) => new RegExp(`^  [✓!✗] ${name} `).test(candidate));
  assert.ok(line, `the report has a line for ${name}:\n${stdout}`);
  return line;
}

/** Folders the overlay probe made and did not remove, and overlays it left mounted. */
function overlayLeftovers(): string[] {
  const folders = readdirSync(tmpdir()).filter((name) => name.startsWith('cfs-doctor-overlay-'));
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes('cfs-doctor-overlay-'));
  return [...folders, ...mounts];
}

before(async () => {
  await compile(join(REPO_ROOT, 'cli/doctor.ts')); // so that the timings below are those of a participant's second run
});

describe('npm run doctor as root', { skip: !isRoot && 'needs root' }, () => {
  test('reports root and a working ffi-rs, exits 0, within 2 seconds', async () => {
    const run = await runDoctor();
    assert.equal(run.status, 0, show(run));
    assert.match(run.stdout, /^npm run doctor/, 'a title line first');
    assert.match(reportLine(run.stdout, 'privileges'), /✓ privileges +root/);
    assert.match(reportLine(run.stdout, 'ffi-rs'), /✓ ffi-rs +ffi-rs [\d.]+ loaded/);
    for (const name of ['os', 'arch', 'node', 'uts namespace', 'pid namespace', 'mount namespace']) {
      assert.match(reportLine(run.stdout, name), /✓/, `${name} is fine on this machine`);
    }
    const lastLine = run.stdout.trimEnd().split('\n').pop() ?? '';
    assert.match(lastLine, /^Ready for steps 1–[4-9]\b/, 'steps 1–4 at least');
    assert.deepEqual(overlayLeftovers(), [], 'the overlay probe cleans up');
  });

  test('labels are aligned: every detail starts in the same column', async () => {
    const run = await runDoctor();
    const columns = new Set(
      EXPECTED_NAMES.map((name) => {
        const line = reportLine(run.stdout, name);
        return line.length - line.slice(4 + name.length).trimStart().length;
      }),
    );
    assert.equal(columns.size, 1, run.stdout);
  });

  test('--json prints every check as {name, status, detail, fix?}', async () => {
    const run = await runDoctor(['--json']);
    assert.equal(run.status, 0, show(run));
    const checks = parseJson(run);
    assert.deepEqual(
      checks.map((check) => check.name),
      EXPECTED_NAMES,
    );
    for (const check of checks) {
      assert.ok(['ok', 'warn', 'fail'].includes(check.status), `${check.name}: status ${check.status}`);
      assert.equal(typeof check.detail, 'string');
      assert.ok(check.detail.length > 0, `${check.name} has a detail`);
      if (check.status === 'fail') assert.ok(check.fix, `${check.name} fails, so it has a fix`);
      assert.deepEqual(Object.keys(check).filter((key) => !['name', 'status', 'detail', 'fix'].includes(key)), []);
    }
    assert.equal(byName(checks, 'privileges').detail, 'root');
    assert.equal(byName(checks, 'ffi-rs').status, 'ok');
    // Step 9: this kernel lists its filter actions in /proc/sys/kernel/seccomp/actions_avail.
    assert.deepEqual([byName(checks, 'seccomp').status, /errno/.test(byName(checks, 'seccomp').detail)], ['ok', true]);
    assert.ok(!checks.some((check) => check.status === 'fail'), JSON.stringify(checks, null, 2));
  });

  test('an unknown option is a usage error (exit 2)', async () => {
    const run = await runDoctor(['--frobnicate']);
    assert.equal(run.status, 2, show(run));
    assert.match(run.stderr, /unknown option --frobnicate/);
  });
});

describe('npm run doctor as an unprivileged user (rootless)', { skip: !isRoot && 'needs root to switch users' }, () => {
  /** Whether nobody can enter a user namespace here: what the doctor must find out by itself. */
  let userNamespacesWork = false;
  before(() => {
    const probe = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'unshare', '--user', '--map-root-user', 'true']);
    userNamespacesWork = probe.status === 0;
  });

  test('reports rootless, and whether user namespaces work, with the matching exit status', async () => {
    const run = await runDoctor([], NOBODY);
    const privileges = reportLine(run.stdout, 'privileges');
    if (userNamespacesWork) {
      assert.equal(run.status, 0, show(run));
      assert.match(privileges, /✓ privileges +rootless \(uid 65534\): user namespaces work/);
      assert.match(reportLine(run.stdout, 'user namespace'), /✓/);
      assert.match(reportLine(run.stdout, 'ffi-rs'), /✓/);
    } else {
      assert.equal(run.status, 1, show(run));
      assert.match(privileges, /✗ privileges +rootless/);
      assert.match(run.stdout, /Not ready/);
    }
    assert.deepEqual(overlayLeftovers(), [], 'the overlay probe cleans up');
  });

  test('--json: the core namespaces are created inside a user namespace', async (t) => {
    if (!userNamespacesWork) return t.skip('unprivileged user namespaces are not allowed on this machine');
    const run = await runDoctor(['--json'], NOBODY);
    assert.equal(run.status, 0, show(run));
    const checks = parseJson(run);
    assert.deepEqual(
      checks.map((check) => check.name),
      EXPECTED_NAMES,
    );
    for (const name of ['privileges', 'user namespace', 'uts namespace', 'pid namespace', 'mount namespace', 'ffi-rs']) {
      assert.equal(byName(checks, name).status, 'ok', `${name}: ${byName(checks, name).detail}`);
    }
    // cgroups are root's unless delegated: a warning about step 5, never a failure, saying what is missing.
    const controllers = byName(checks, 'cgroup controllers');
    assert.notEqual(controllers.status, 'fail');
    if (detectCgroups().controllers.pids?.version === 1) assert.match(controllers.detail, /cgroup v1, which only root may use/);
    if (controllers.status === 'warn') assert.match(controllers.fix ?? '', /systemd-run --user --scope -p Delegate=yes|sudo npm run step/);
  });
});

describe('lib/host/machine.ts', () => {
  test('parseMountinfo reads the fields around the optional ones, and unescapes paths', () => {
    const [mount] = parseMountinfo(
      '36 35 98:0 /sub /mnt/with\\040space rw,noatime master:1 shared:2 - cgroup cgroup rw,memory\n' + 'garbage line\n',
    );
    assert.deepEqual(mount, {
      root: '/sub',
      mountPoint: '/mnt/with space',
      options: ['rw', 'noatime'],
      fstype: 'cgroup',
      source: 'cgroup',
      superOptions: ['rw', 'memory'],
    });
  });

  test('hostUid(): in a user namespace, the uid outside (what /run/user/<uid> is named after)', (t) => {
    if (!isRoot) return t.skip('needs root to switch to nobody');
    const script = `import('${join(REPO_ROOT, 'lib/host/machine.ts')}').then((m) => console.log(process.getuid(), m.hostUid()))`;
    const result = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'unshare', '--user', '--map-root-user', process.execPath, '--import', 'tsx', '-e', script], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, HOME: '/tmp' },
    });
    if (result.status !== 0 && /unshare/.test(result.stderr)) return t.skip('unprivileged user namespaces are not allowed here');
    assert.equal(result.stdout, `0 ${NOBODY}\n`, result.stderr);
  });

  test('detectCgroups agrees with /proc/self/mountinfo', () => {
    const mounts = readMounts();
    const cgroups = detectCgroups(mounts);
    const hasV2 = mounts.some((mount) => mount.fstype === 'cgroup2');
    const hasV1 = mounts.some((mount) => mount.fstype === 'cgroup');
    assert.equal(Boolean(cgroups.v2), hasV2);
    assert.equal(cgroups.v1.length > 0, hasV1);
    if (cgroups.layout === 'hybrid') {
      assert.match(cgroups.description, /^hybrid \(v1 for [\w/]+, v2 at \/\S+\)$/);
    }
    for (const [controller, hierarchy] of Object.entries(cgroups.controllers)) {
      assert.ok(hierarchy.controllers.includes(controller));
    }
  });
});
