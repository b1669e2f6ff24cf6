// Rootless steps 5–9 through systemd: the user's own cgroup is root's (a login
// session), and their systemd instance delegates a new scope on request.
//
// `npm run test:v2` runs this file as a normal user in a cgroup-v2-only guest
// with a systemd user instance (tools/v2vm/run -u NAME --systemd-user).
// `npm run step` and `npm run check` re-run themselves through
// `systemd-run --user --scope -p Delegate=yes` before the runtime starts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CGROUP_PARENT } from '../../lib/container/cgroups.js';
import { detectCgroups } from '../../lib/host/machine.js';
import { cgroupDelegation } from '../../lib/host/privileges.js';
import { waitFor } from '../../workshop/harness.js';
import { cgroupState, finishedCheckout, show, workshop } from './helpers.js';

const delegation = cgroupDelegation();
const v2 = detectCgroups().v2;
if (process.getuid?.() === 0 || delegation.kind !== 'systemd' || !v2) {
  throw new Error(`run this as a normal user with a systemd user instance (npm run test:v2); here: uid ${process.getuid?.()}, ${JSON.stringify(delegation)}`);
}
const uid = process.getuid?.();
/** Where systemd puts the scopes systemd-run asks for. */
const appSlice = join(v2.mountPoint, `user.slice/user-${uid}.slice/user@${uid}.service/app.slice`);
const scopes = (): string[] => readdirSync(appSlice).filter((name) => name.startsWith('run-'));
const ownBefore = cgroupState(v2.ownCgroup);

describe('rootless through systemd-run --user --scope -p Delegate=yes', () => {
  test('doctor: ready for steps 1–9, through a delegated systemd scope (tried for real)', async () => {
    const result = await workshop('doctor', []);
    assert.equal(result.status, 0, show(result));
    assert.match(result.stdout, /✓ cgroup controllers +pids and memory usable in a systemd scope delegated to you/);
    assert.match(result.stdout, /\nReady for steps 1–9\n$/, result.stdout);
  });

  test('npm run step 5 runs in a scope of its own, with the limits; the scope goes with it', async () => {
    const id = `cfs-v2-${randomBytes(3).toString('hex')}`;
    const [inside, hog] = await Promise.all([
      workshop('step', ['5', '--solution', '--id', id, '--pids-max', '20', 'sh', '-c', 'cat /proc/self/cgroup; for i in $(seq 40); do sleep 60 & echo started; done']),
      workshop('step', ['5', '--solution', '--memory', '32M', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']),
    ]);
    const [cgroupLine = '', ...rest] = inside.stdout.split('\n');
    assert.match(cgroupLine, new RegExp(`^0::/user\\.slice/user-${uid}\\.slice/user@${uid}\\.service/app\\.slice/run-\\w+\\.scope/${CGROUP_PARENT}/${id}$`), show(inside));
    assert.ok(rest.filter((line) => line === 'started').length < 20, show(inside));
    assert.equal(hog.status, 137, show(hog));
    assert.match(hog.stderr, /out of memory: the kernel's OOM killer ended 1 process/);
    assert.ok(await waitFor(() => scopes().length === 0, 30_000), `systemd removes the scopes once empty: ${scopes().join(', ')}`);
  });

  test('npm run check 5 passes: the whole check runs in one delegated scope', async () => {
    const checkout = finishedCheckout();
    try {
      const result = await workshop('check', ['5'], { cwd: checkout, timeoutMs: 600_000 });
      assert.equal(result.status, 0, show(result));
      assert.doesNotMatch(result.stdout, /✗/);
    } finally {
      rmSync(checkout, { recursive: true, force: true });
    }
  });

  test('without a systemd user instance: exit 125, and how to get a delegated cgroup', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'cfs-no-systemd-'));
    try {
      const result = await workshop('step', ['5', '--solution', 'true'], { env: { XDG_RUNTIME_DIR: empty } });
      assert.equal(result.status, 125, show(result));
      assert.match(result.stderr, /cgroups need root, or a cgroup delegated to you: your cgroup \(\/\S+\) belongs to root, and no systemd user instance runs/);
      assert.match(result.stderr, /systemd-run --user --scope -p Delegate=yes -- npm run step 5/);
      assert.match(result.stderr, /sudo npm run step N/);
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test('afterwards: no scope left, and the login cgroup as it was', async () => {
    assert.ok(await waitFor(() => scopes().length === 0, 30_000), scopes().join(', '));
    assert.deepEqual(cgroupState(v2.ownCgroup), ownBefore);
  });
});
