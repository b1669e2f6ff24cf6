// The participant's loop, as a participant uses it: npm run step/check/hint/
// progress/reset/diff, their output and exit codes. Runs in a copy of the
// repository so that it never touches your own steps/ or progress.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { plainSolution } from '../workshop/exercises.js';
import { copyOfRepository } from './helpers.js';

let copy = '';

function workshop(command: string, ...args: string[]): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, ['cli/launch.mjs', `cli/${command}.ts`, ...args], {
    cwd: copy,
    encoding: 'utf8',
    env: { ...process.env, FORCE_COLOR: '0' },
    input: '',
    timeout: 60_000,
  });
  return { status: result.status, output: result.stdout + result.stderr };
}

before(() => {
  copy = copyOfRepository();
});

after(() => rmSync(copy, { recursive: true, force: true }));

describe('npm run step', () => {
  test('without a step number: lists the steps, exit 2', () => {
    const { status, output } = workshop('step');
    assert.equal(status, 2);
    assert.match(output, /which step\?/);
    assert.match(output, /4\s+04-mount/);
  });

  test('an unknown or non-numeric step: exit 2', () => {
    assert.equal(workshop('step', '42').status, 2);
    const { status, output } = workshop('step', 'three');
    assert.equal(status, 2);
    assert.match(output, /there is no step "three"/);
  });

  test('an unfinished exercise says so, with the TODO line, and runs like the step before', () => {
    const { status, output } = workshop('step', '3', 'sh', '-c', 'echo pid=$$');
    assert.equal(status, 0);
    assert.match(output, /steps\/03-pid\.ts:\d+: step 3 is still the untouched exercise, so it runs like step 2/);
    assert.doesNotMatch(output, /pid=1\n/);
  });

  test('--solution runs the reference', () => {
    const { status, output } = workshop('step', '3', '--solution', 'sh', '-c', 'echo pid=$$');
    assert.equal(status, 0);
    assert.match(output, /pid=1\n/);
    assert.doesNotMatch(output, /untouched exercise/);
  });

  test('--trace shows the kernel calls with decoded flags', () => {
    const { status, output } = workshop('step', '4', '--solution', '--trace', 'true');
    assert.equal(status, 0, output);
    for (const call of [
      /parent +\d+ │ unshare\(CLONE_NEWUTS\|CLONE_NEWPID\) = 0/,
      /child +1 │ unshare\(CLONE_NEWNS\) = 0/,
      /mount\("none", "\/", "", MS_REC\|MS_PRIVATE, ""\) = 0/,
      /pivot_root\("\.", "\."\) = 0/,
      /umount2\("\.", MNT_DETACH\) = 0/,
      /execvpe\("true", \["true"\], \["PATH=/,
    ]) {
      assert.match(output, call);
    }
  });
});

describe('npm run check, hint, progress, reset, diff', { concurrency: false }, () => {
  test('check on a pristine exercise: exit 1, expected vs actual, the hint and how to reproduce', () => {
    const { status, output } = workshop('check', '3');
    assert.equal(status, 1);
    assert.match(output, /✓ \[step 2\] the hostname inside is "container"/);
    assert.match(output, /✗ \[step 3\] the command is PID 1/);
    assert.match(output, /expected \$\$ inside "1", got "\d+"/);
    assert.match(output, /hint: unshare\(CLONE_NEWUTS \| CLONE_NEWPID\)/);
    assert.match(output, /reproduce: npm run step 3 -- sh -c/);
    assert.match(output, /0\/\d+ steps done/);
  });

  test('progress shows the failing step', () => {
    const { status, output } = workshop('progress');
    assert.equal(status, 0);
    assert.match(output, /✗ failing\s+3/);
    assert.match(output, /○ todo\s+4/);
  });

  test('hints come one at a time, more specific each time, then point at the diff', () => {
    const first = workshop('hint', '3');
    assert.equal(first.status, 0);
    assert.match(first.output, /Hint 1\/2 for step 3/);
    assert.match(first.output, /OR-ed together/);
    const second = workshop('hint', '3');
    assert.match(second.output, /Hint 2\/2 for step 3/);
    assert.match(second.output, /unshare\(CLONE_NEWUTS \| CLONE_NEWPID\)/);
    assert.match(workshop('hint', '3').output, /That was the last hint.*\n[\s\S]*npm run diff 3/);
  });

  test('check passes once the TODOs are done; never moves on by itself', () => {
    const solution = readFileSync(`${copy}/solutions/03-pid.ts`, 'utf8');
    writeFileSync(`${copy}/steps/03-pid.ts`, plainSolution(solution));
    const { status, output } = workshop('check', '3');
    assert.equal(status, 0, output);
    assert.match(output, /✓ Step 3 done!/);
    assert.match(output, /Next: step 4/);
    assert.match(output, /1\/\d+ steps done/);
    assert.match(workshop('progress').output, /✓ done\s+3/);
  });

  test('reset backs the old file up and restores the exercise', () => {
    const { status, output } = workshop('reset', '3');
    assert.equal(status, 0);
    const backup = /saved as (\S+)/.exec(output)?.[1];
    assert.ok(backup, output);
    assert.ok(existsSync(`${copy}/${backup}`), `backup ${backup} exists`);
    assert.match(readFileSync(`${copy}/steps/03-pid.ts`, 'utf8'), /TODO\(step 3\)/);
    assert.match(workshop('reset', '3').output, /already the pristine exercise/);
  });

  test('diff 4 shows what step 4 adds over step 3', () => {
    const { status, output } = workshop('diff', '4');
    assert.equal(status, 0);
    assert.match(output, /--- solutions\/03-pid\.ts\n\+\+\+ solutions\/04-mount\.ts/);
    assert.match(output, /^\+ +pivotRoot\('\.', '\.'\);$/m);
    assert.match(output, /^\+ +unshare\(CLONE_NEWNS\);$/m);
    assert.doesNotMatch(output, /TODO|hint:/, 'the slide shows code, not exercise markers');
    assert.doesNotMatch(output, /^-\s+unshare\(CLONE_NEWUTS \| CLONE_NEWPID\)/m, 'step 3 code is kept');
  });

  test('diff --mine compares your file with the solution', () => {
    const { status, output } = workshop('diff', '3', '--mine');
    assert.equal(status, 0);
    assert.match(output, /^- +unshare\(CLONE_NEWUTS\);$/m);
    assert.match(output, /^\+ +unshare\(CLONE_NEWUTS \| CLONE_NEWPID\);$/m);
  });

  test('watch re-checks when the file is saved (polling fallback)', { timeout: 60_000 }, async () => {
    const watcher = spawn(process.execPath, ['cli/launch.mjs', 'cli/watch.ts', '2', '--poll'], { cwd: copy, env: { ...process.env, FORCE_COLOR: '0' } });
    let output = '';
    watcher.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const checks = () => output.split('Checking step 2').length - 1;
    const until = async (condition: () => boolean) => {
      while (!condition()) await sleep(50);
    };
    try {
      await until(() => /Watching steps\/02-uts\.ts \(polling\)/.test(output));
      assert.equal(checks(), 1);
      await sleep(600); // the polling interval is 500 ms: make the new mtime a different one
      utimesSync(`${copy}/steps/02-uts.ts`, new Date(), new Date());
      await until(() => checks() === 2);
    } finally {
      watcher.kill();
    }
  });
});
