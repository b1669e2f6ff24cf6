// Rootless steps 5–9 in a cgroup delegated to the user.
//
// `npm run test:v2` runs this file as a normal user in a cgroup-v2-only guest
// whose session cgroup is delegated to that user, as systemd does with
// Delegate=yes (tools/v2vm/run -u NAME --delegate). The runtime creates the
// containers' cgroups below it, moving the processes already there (this test
// runner among them) to a leaf, and puts everything back after the last one.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CGROUP_PARENT } from '../../lib/container/cgroups.js';
import { detectCgroups } from '../../lib/host/machine.js';
import { cgroupDelegation } from '../../lib/host/privileges.js';
import { CHECKS, makeContext } from '../../workshop/checks.js';
import { stepNumbered } from '../../workshop/harness.js';
import { cgroupState, ownCgroupPath, show, workshop } from './helpers.js';

const delegation = cgroupDelegation();
if (process.getuid?.() === 0 || delegation.kind !== 'ready') {
  throw new Error(`run this as a normal user whose cgroup is delegated (npm run test:v2); here: uid ${process.getuid?.()}, ${JSON.stringify(delegation)}`);
}
const delegated = delegation.base;
const delegatedPath = ownCgroupPath(); // relative to the cgroup2 mount: what /proc/self/cgroup shows
const before = cgroupState(delegated);

describe('rootless, delegated cgroup: the checks of steps 5–9, each against its own runtime', { concurrency: 2 }, () => {
  for (const number of [5, 6, 7, 8, 9]) {
    const context = makeContext(stepNumbered(number), 'solutions');
    for (const check of CHECKS.filter((c) => c.step === number)) {
      test(`[step ${number}] ${check.name}`, () => check.run(context));
    }
  }
});

describe('rootless, delegated cgroup: npm run step and doctor', () => {
  test('step 5: --pids-max 20 stops a fork loop; --memory 32M ends a memory hog with 137 and says why', async () => {
    const [forks, hog] = await Promise.all([
      workshop('step', ['5', '--solution', '--pids-max', '20', 'sh', '-c', 'for i in $(seq 40); do sleep 60 & echo started; done']),
      workshop('step', ['5', '--solution', '--memory', '32M', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']),
    ]);
    const started = forks.stdout.split('\n').filter((line) => line === 'started').length;
    assert.ok(started < 20, `${started} processes started under --pids-max 20\n${show(forks)}`);
    assert.match(forks.stderr, /fork|resource temporarily unavailable/i, show(forks));
    assert.equal(hog.status, 137, show(hog));
    assert.match(hog.stderr, /out of memory: the kernel's OOM killer ended 1 process of the container \(its memory limit is 32M\)/);
  });

  test("steps 6–8: the hostname, PID 1, and /proc/self/cgroup names the container's own cgroup below the delegated one", async () => {
    const runs = await Promise.all(
      [6, 7, 8].map(async (number) => {
        const id = `cfs-v2-${number}-${randomBytes(3).toString('hex')}`;
        const result = await workshop('step', [String(number), '--solution', '--id', id, 'sh', '-c', 'hostname; echo $$; cat /proc/self/cgroup']);
        return { id, result };
      }),
    );
    for (const { id, result } of runs) {
      assert.equal(result.status, 0, show(result));
      assert.equal(result.stdout, `container\n1\n0::${delegatedPath}/${CGROUP_PARENT}/${id}\n`);
    }
  });

  test('doctor: ready for steps 1–9, with pids and memory in the delegated cgroup', async () => {
    const result = await workshop('doctor', []);
    assert.equal(result.status, 0, show(result));
    assert.match(result.stdout, new RegExp(`✓ cgroup controllers +pids and memory usable in your delegated cgroup ${delegatedPath}\n`));
    assert.match(result.stdout, /\nReady for steps 1–9\n$/, result.stdout);
  });
});

test('afterwards, the delegated cgroup is as it was: no folder of ours, no controllers switched on, its processes back in it', () => {
  assert.deepEqual(cgroupState(delegated), before);
  const procs = readFileSync(join(delegated, 'cgroup.procs'), 'utf8').split('\n');
  assert.ok(procs.includes(String(process.pid)), `this test process is back in ${delegated}`);
  assert.equal(detectCgroups().v2?.ownCgroup, delegated);
});
