// Rootless: a participant without sudo, on a kernel that allows unprivileged
// user namespaces, runs the core steps. The runtime is entered through
// `unshare --user --map-root-user` before Node starts (Node is multi-threaded,
// and the kernel refuses CLONE_NEWUSER to a multi-threaded process).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { compile } from '../workshop/compile.mjs';
import { REPO_ROOT } from '../lib/paths.js';
import { checksUpTo, makeContext } from '../workshop/checks.js';
import { runtimeFile, stepNumbered } from '../workshop/harness.js';

const nobody = { uid: 65534, gid: 65534 };
// Step 4's suite runs the checks of steps 1–4. The later steps need cgroup v2 and a
// cgroup delegated to the user: tests/v2/ (npm run test:v2, in a guest).
const CORE_STEPS = [4];
const SETPRIV = spawnSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).stdout.trim() || 'setpriv';

/** Run a command as the unprivileged user `nobody`. */
function asNobody(command: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(SETPRIV, [`--reuid=${nobody.uid}`, `--regid=${nobody.gid}`, '--clear-groups', ...command], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, HOME: '/tmp', FORCE_COLOR: '0', ...env },
    input: '',
  });
}

for (const number of CORE_STEPS) {
  const step = stepNumbered(number);
  describe(`rootless step ${number}: every check as an unprivileged user in a user namespace`, { concurrency: 2 }, () => {
    const context = makeContext(step, 'solutions', { asUser: nobody });
    for (const check of checksUpTo(number)) {
      test(`[step ${check.step}] ${check.name}`, () => check.run(context));
    }
  });
}

describe('npm run step without root', () => {
  test('enters a user namespace by itself', () => {
    const result = asNobody([process.execPath, 'cli/launch.mjs', 'cli/step.ts', '4', '--solution', '--', 'sh', '-c', 'id -u; hostname; echo $$; ls /proc/1/comm']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, '0\ncontainer\n1\n/proc/1/comm\n');
  });

  test('without user namespaces (no util-linux unshare here): explains the options, exit 125', () => {
    const result = asNobody([process.execPath, 'cli/launch.mjs', 'cli/step.ts', '2', '--solution', '--', 'hostname'], { PATH: '/nonexistent' });
    assert.equal(result.status, 125);
    assert.match(result.stderr, /you are not root, and this machine does not allow user namespaces/);
    assert.match(result.stderr, /sudo/);
    assert.match(result.stderr, /unshare` command is missing/);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });

  test('a runtime started directly without privileges explains EPERM', async () => {
    const bundle = await compile(runtimeFile(stepNumbered(2), 'solutions'));
    const result = asNobody([process.execPath, bundle, 'run', 'hostname']);
    assert.equal(result.status, 125);
    assert.match(result.stderr, /unshare\(CLONE_NEWUTS\) failed: EPERM \(Operation not permitted\)/);
    assert.match(result.stderr, /npm run step N/);
  });
});
