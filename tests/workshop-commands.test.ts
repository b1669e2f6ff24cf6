// The participant's loop, as a participant uses it: npm run step/check/hint/
// progress/reset/catch-up/diff/watch, their output and exit codes. Each part
// runs in its own copy of the repository, so that it never touches your own
// steps/ or progress.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { CHECKS } from '../workshop/checks.js';
import { plainSolution, todosOf } from '../workshop/exercises.js';
import { todosOfCheck } from '../workshop/hints.js';
import { MISTAKES, giveCopyTo, mistakeSource, repositoryCopy } from '../workshop/mistakes.js';
import { STEPS } from '../workshop/steps.js';
import { MAX_LINES } from '../workshop/check-runner.js';

const copies: string[] = [];
after(() => copies.forEach((copy) => rmSync(copy, { recursive: true, force: true })));

function newCopy(): string {
  const copy = repositoryCopy();
  copies.push(copy);
  return copy;
}

/** `node cli/launch.mjs cli/<command>.ts args…` in `copy`, as `npm run <command> -- args…` does. */
function workshop(copy: string, command: string, args: string[] = [], options: SpawnSyncOptions = {}): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, ['cli/launch.mjs', `cli/${command}.ts`, ...args], {
    cwd: copy,
    encoding: 'utf8',
    input: '',
    timeout: 120_000,
    ...options,
    env: { ...process.env, FORCE_COLOR: '0', ...options.env },
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function reference(copy: string, stem: string): string {
  return plainSolution(readFileSync(`${copy}/solutions/${stem}.ts`, 'utf8'));
}

const mistake = (id: string) => MISTAKES.find((m) => m.id === id)!;

describe('npm run step', { concurrency: true }, () => {
  const copy = newCopy();

  test('without a step number: lists the steps, exit 2', () => {
    const { status, output } = workshop(copy, 'step');
    assert.equal(status, 2);
    assert.match(output, /which step\?/);
    assert.match(output, /4\s+04-mount/);
  });

  test('an unknown or non-numeric step: exit 2', () => {
    assert.equal(workshop(copy, 'step', ['42']).status, 2);
    const { status, output } = workshop(copy, 'step', ['three']);
    assert.equal(status, 2);
    assert.match(output, /there is no step "three"/);
  });

  test('an unfinished exercise says so, with the TODO line, and runs like the step before', () => {
    const { status, output } = workshop(copy, 'step', ['3', 'sh', '-c', 'echo pid=$$']);
    assert.equal(status, 0);
    assert.match(output, /steps\/03-pid\.ts:\d+: step 3 is still the untouched exercise, so it runs like step 2/);
    assert.doesNotMatch(output, /pid=1\n/);
  });

  test('--solution runs the reference', () => {
    const { status, output } = workshop(copy, 'step', ['3', '--solution', 'sh', '-c', 'echo pid=$$']);
    assert.equal(status, 0);
    assert.match(output, /pid=1\n/);
    assert.doesNotMatch(output, /untouched exercise/);
  });

  test('--trace shows the kernel calls with decoded flags', () => {
    const { status, output } = workshop(copy, 'step', ['4', '--solution', '--trace', 'true']);
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

  // Issue 10, item 7: npm takes flags before `--` for itself.
  test('flags before `--` (npm takes them): stop with where they go, exit 2', () => {
    const npm = (args: string[]) => spawnSync('npm', ['run', '-s', ...args], { cwd: copy, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' }, input: '' });
    const solution = npm(['step', '3', '--solution', '--', 'sh', '-c', 'echo $$']);
    assert.equal(solution.status, 2, solution.stdout + solution.stderr);
    assert.match(solution.stderr, /npm took --solution for itself/);
    assert.match(solution.stderr, /Put flags after `--`: `npm run step 3 -- --solution sh -c 'echo \$\$'`/);
    // `-c 'echo hi'` before `--` is npm's --call: without the check, a bare `sh` would run.
    const trace = npm(['step', '4', '--trace', 'sh', '-c', 'echo hi']);
    assert.equal(trace.status, 2, trace.stdout + trace.stderr);
    assert.match(trace.stderr, /npm took --trace, -c for itself/);
    assert.match(trace.stderr, /`npm run step 4 -- --trace sh -c 'echo hi'`/);
    assert.doesNotMatch(trace.stdout, /\S/, 'nothing ran');
  });
});

describe("the participant's own mistakes are shown as theirs", { concurrency: true }, () => {
  // Issue 10, item 3.
  test('an exception in the step file: its file:line:col and a caret, not "a bug in the workshop"; --debug maps the stack', () => {
    const copy = newCopy();
    const source = reference(copy, '02-uts').replace('sethostname(container.hostname);', 'sethostname((container as any).names[0]);');
    writeFileSync(`${copy}/steps/02-uts.ts`, source);
    const line = source.split('\n').findIndex((text) => text.includes('names[0]')) + 1;
    const { status, output } = workshop(copy, 'step', ['2', 'hostname']);
    assert.equal(status, 125, output);
    assert.match(output, new RegExp(`steps/02-uts\\.ts:${line}:\\d+: your code threw TypeError: Cannot read properties of undefined \\(reading '0'\\)`));
    assert.match(output, /│\s+sethostname\(\(container as any\)\.names\[0\]\);\n\s+│\s+\^/);
    assert.doesNotMatch(output, /bug in the workshop|unexpected error/);
    const debug = workshop(copy, 'step', ['2', '--debug', 'hostname']);
    assert.match(debug.output, new RegExp(`at Object\\.child \\(steps/02-uts\\.ts:${line}:\\d+\\)`));
    assert.doesNotMatch(debug.output, /\.cache\/|\.cjs/, 'no frame in the compiled bundle');
  });

  test('a syntax error in the step file: shown once, with file:line:col and a caret, before anything runs', () => {
    const copy = newCopy();
    writeFileSync(`${copy}/steps/02-uts.ts`, mistakeSource({ ...mistake('exec-syntax-error'), step: 2 }));
    const { status, output } = workshop(copy, 'step', ['2', 'hostname']);
    assert.equal(status, 125, output);
    assert.match(output, /steps\/02-uts\.ts does not compile/);
    assert.match(output, /✗ steps\/02-uts\.ts:\d+:\d+ — Expected "\)" but found ";"/);
    assert.ok(output.trim().split('\n').length <= 6, output);
    assert.doesNotMatch(output, /bug in the workshop|unexpected error|Build failed/);
  });

  // Issue 10, item 5: the hint fits what the step did.
  test('a rootfs that does not exist, with ensureRootfs forgotten: the hint says so (not "paths are the host\'s")', () => {
    const copy = newCopy();
    writeFileSync(`${copy}/steps/04-mount.ts`, reference(copy, '04-mount').replace('    ensureRootfs(container.rootfs);\n', ''));
    const { status, output } = workshop(copy, 'step', ['4', '--rootfs', '/nonexistent/rootfs', 'true']);
    assert.equal(status, 125, output);
    assert.match(output, /mount\("\/nonexistent\/rootfs", "\/nonexistent\/rootfs", "", MS_BIND\|MS_REC, ""\) failed: ENOENT/);
    assert.match(output, /\/nonexistent\/rootfs does not exist, so there is nothing to bind-mount[\s\S]*ensureRootfs\(container\.rootfs\)/);
  });
});

describe('npm run check', { concurrency: true }, () => {
  // Issue 10, item 2: a fresh clone has no rootfs/ yet.
  test('on a fresh clone (no rootfs/ yet): builds it, and correct work passes', () => {
    const copy = newCopy();
    unlinkSync(`${copy}/rootfs`);
    writeFileSync(`${copy}/steps/02-uts.ts`, reference(copy, '02-uts'));
    const { status, output } = workshop(copy, 'check', ['2']);
    assert.equal(status, 0, output);
    assert.match(output, /✓ Step 2 done!/);
    assert.ok(existsSync(`${copy}/rootfs/bin/sh`));
  });

  // Issue 10, item 1: without util-linux's sandbox, the real host is watched and restored.
  test('without a sandbox: a step that renames the host is caught, and the name is put back', () => {
    const copy = newCopy();
    writeFileSync(`${copy}/steps/02-uts.ts`, mistakeSource(mistake('uts-no-unshare')));
    // The "host" here is a UTS namespace of the test's own: the machine's name is never at stake.
    const result = spawnSync('unshare', ['--uts', '--', 'sh', '-c', 'node cli/launch.mjs cli/check.ts 2; echo "exit $?, hostname after: $(hostname)"'], {
      cwd: copy,
      encoding: 'utf8',
      env: { ...process.env, FORCE_COLOR: '0', CFS_SANDBOX: 'off' },
    });
    const output = result.stdout + result.stderr;
    assert.match(output, new RegExp(`Your step renamed this machine from "${hostname()}" to "(container|pod-7)"; the check renamed it back`));
    assert.match(output, new RegExp(`exit 1, hostname after: ${hostname()}\\n`));
    assert.doesNotMatch(output, /✓ Step 2 done/);
  });

  // Issue 10, item 4: one error, one message — rootless, cgroups need root.
  test('without root, check 5 says once that cgroups need root, on one screen', () => {
    const copy = newCopy();
    writeFileSync(`${copy}/steps/05-cgroups.ts`, reference(copy, '05-cgroups'));
    giveCopyTo(copy, 65534, 65534);
    const result = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, 'cli/launch.mjs', 'cli/check.ts', '5'], {
      cwd: copy,
      encoding: 'utf8',
      env: { ...process.env, FORCE_COLOR: '0', HOME: '/tmp' },
      input: '',
    });
    const output = result.stdout + result.stderr;
    assert.equal(result.status, 1, output);
    assert.equal(output.split('cgroups need root').length - 1, 1, output);
    assert.match(output, /The container did not run its command \(exit status 125\), so none of the 20 checks could run/);
    assert.ok(output.trim().split('\n').length <= MAX_LINES, output);
  });
});

describe('check, hint, progress, reset, catch-up, diff', { concurrency: false }, () => {
  const copy = newCopy();

  test('check on a pristine exercise: exit 1, the failure in detail, its concept-level hint, how to reproduce', () => {
    const { status, output } = workshop(copy, 'check', ['3']);
    assert.equal(status, 1);
    assert.match(output, /✓ \[steps 1–2\] all 7 checks of the earlier steps pass/);
    assert.match(output, /✗ \[step 3\] the command is PID 1/);
    assert.match(output, /expected \$\$ inside "1\\n", got "\d+\\n"/);
    assert.match(output, /hint: A PID namespace numbers its processes from 1/);
    assert.match(output, /reproduce: npm run step 3 -- sh -c 'echo \$\$'/);
    assert.match(output, /2\/\d+ steps done/);
  });

  test('progress shows what the checks say: 1–2 done (check 3 passed their checks), 3 failing', () => {
    const { status, output } = workshop(copy, 'progress');
    assert.equal(status, 0);
    assert.match(output, /✓ done\s+1 .*by `npm run check 3`/);
    assert.match(output, /✗ failing\s+3/);
    assert.match(output, /○ todo\s+4/);
    assert.match(output, /Next: edit steps\/03-pid\.ts/);
  });

  // Issue 10, item 9.
  test('hints start from the failing check: concept, then call, then code, then the diff', () => {
    const [todo] = todosOf(STEPS[2]!);
    const first = workshop(copy, 'hint', ['3']).output;
    assert.match(first, /Hint 1\/3 for step 3 \(concept\) — \[step 3\] the command is PID 1/);
    assert.match(first, /A PID namespace numbers its processes from 1/);
    assert.ok(!first.includes(todo!.hints[0]!), 'level 1 is not the hint already in the exercise file');
    assert.match(workshop(copy, 'hint', ['3']).output, /Hint 2\/3 for step 3 \(call\)[\s\S]*CLONE_NEWUTS and CLONE_NEWPID, OR-ed together/);
    assert.match(workshop(copy, 'hint', ['3']).output, /Hint 3\/3 for step 3 \(code\)[\s\S]*unshare\(CLONE_NEWUTS \| CLONE_NEWPID\);/);
    assert.match(workshop(copy, 'hint', ['3']).output, /That was the last hint[\s\S]*npm run diff 3/);
  });

  test('another failing check, another ladder: it follows the last check', () => {
    writeFileSync(`${copy}/steps/04-mount.ts`, mistakeSource(mistake('mount-no-proc')));
    assert.equal(workshop(copy, 'check', ['4']).status, 1);
    const first = workshop(copy, 'hint', ['4']).output;
    assert.match(first, /Hint 1\/\d+ for step 4 \(concept\) — \[step 4\] ps shows only the container/);
    assert.match(first, /ps reads \/proc/);
  });

  test('check passes once the TODOs are done; never moves on by itself', () => {
    writeFileSync(`${copy}/steps/03-pid.ts`, reference(copy, '03-pid'));
    const { status, output } = workshop(copy, 'check', ['3']);
    assert.equal(status, 0, output);
    assert.match(output, /✓ Step 3 done!/);
    assert.match(output, /Next: step 4/);
    assert.match(output, /3\/\d+ steps done/);
    assert.match(workshop(copy, 'progress').output, /✓ done\s+3/);
  });

  test('reset backs the old file up and restores the exercise', () => {
    const { status, output } = workshop(copy, 'reset', ['3']);
    assert.equal(status, 0);
    const backup = /saved as (\S+)/.exec(output)?.[1];
    assert.ok(backup, output);
    assert.ok(existsSync(`${copy}/${backup}`), `backup ${backup} exists`);
    assert.match(readFileSync(`${copy}/steps/03-pid.ts`, 'utf8'), /TODO\(step 3\)/);
    assert.match(workshop(copy, 'reset', ['3']).output, /already the pristine exercise/);
  });

  // Issue 10, item 10.
  test('a copied solution: check 4 passes, and progress counts steps 1–4 done', () => {
    writeFileSync(`${copy}/steps/04-mount.ts`, readFileSync(`${copy}/solutions/04-mount.ts`));
    assert.equal(workshop(copy, 'check', ['4']).status, 0);
    const { output } = workshop(copy, 'progress');
    for (const step of [1, 2, 3, 4]) assert.match(output, new RegExp(`✓ done\\s+${step} `));
    assert.match(output, /4\/\d+ steps done/);
    assert.match(output, /Next: edit steps\/05-cgroups\.ts/);
  });

  test('catch-up N: the references of steps 1..N in steps/ (yours backed up), checked', () => {
    writeFileSync(`${copy}/steps/02-uts.ts`, '// my own attempt\n' + readFileSync(`${copy}/steps/02-uts.ts`, 'utf8'));
    const { status, output } = workshop(copy, 'catch-up', ['5']);
    assert.equal(status, 0, output);
    assert.match(output, /steps\/02-uts\.ts is the reference now \(yours: \.workshop\/backups\/02-uts\.[^)]+\.ts\)/);
    assert.match(output, /✓ Step 5 done!/);
    for (const stem of ['01-exec', '02-uts', '03-pid', '04-mount', '05-cgroups']) {
      assert.equal(readFileSync(`${copy}/steps/${stem}.ts`, 'utf8'), reference(copy, stem), stem);
    }
    assert.ok(readdirSync(`${copy}/.workshop/backups`).some((name) => name.startsWith('02-uts.')));
    assert.match(workshop(copy, 'progress').output, /5\/\d+ steps done[\s\S]*Next: edit steps\/06-overlay\.ts/);
  });

  test('diff 4 shows what step 4 adds over step 3', () => {
    const { status, output } = workshop(copy, 'diff', ['4']);
    assert.equal(status, 0);
    assert.match(output, /--- solutions\/03-pid\.ts\n\+\+\+ solutions\/04-mount\.ts/);
    assert.match(output, /^\+ +pivotRoot\('\.', '\.'\);$/m);
    assert.match(output, /^\+ +unshare\(CLONE_NEWNS\);$/m);
    assert.doesNotMatch(output, /TODO|hint:/, 'the slide shows code, not exercise markers');
    assert.doesNotMatch(output, /^-\s+unshare\(CLONE_NEWUTS \| CLONE_NEWPID\)/m, 'step 3 code is kept');
  });

  test('diff --mine compares your file with the solution', () => {
    workshop(copy, 'reset', ['3']);
    const { status, output } = workshop(copy, 'diff', ['3', '--mine']);
    assert.equal(status, 0);
    assert.match(output, /^- +unshare\(CLONE_NEWUTS\);$/m);
    assert.match(output, /^\+ +unshare\(CLONE_NEWUTS \| CLONE_NEWPID\);$/m);
  });
});

// Issue 10, item 9: what `check` shows is the concept, never the finished code.
describe('check hints', () => {
  test('are concept-level: no call with arguments, not the TODO hints, each about TODOs of its step', () => {
    const covered = new Set<string>();
    for (const check of CHECKS) {
      assert.doesNotMatch(check.hint, /\b\w+\([^)]+\)/, `[step ${check.step}] ${check.name}: the hint shows a call`);
      const todos = todosOfCheck(check);
      assert.equal(todos.length, check.todos.length, `[step ${check.step}] ${check.name}: each key names one TODO of step ${check.step}`);
      for (const todo of todos) {
        covered.add(`${todo.step}:${todo.line}`);
        for (const hint of todo.hints) assert.ok(!check.hint.includes(hint), `[step ${check.step}] ${check.name} repeats a TODO hint`);
      }
    }
    for (const step of STEPS) {
      for (const todo of todosOf(step)) assert.ok(covered.has(`${todo.step}:${todo.line}`), `no check is about step ${step.number}'s TODO "${todo.task}"`);
    }
  });
});

// Issue 10, item 8.
describe('npm run watch', () => {
  test('re-checks after every atomic save (a temporary file renamed over yours), once per burst of writes', { timeout: 180_000 }, async () => {
    const copy = newCopy();
    const watcher = spawn(process.execPath, ['cli/launch.mjs', 'cli/watch.ts', '1'], { cwd: copy, env: { ...process.env, FORCE_COLOR: '0' } });
    let output = '';
    watcher.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const checks = () => output.split('Checking step 1').length - 1;
    const until = async (condition: () => boolean, what: string) => {
      for (const start = Date.now(); !condition(); await sleep(50)) if (Date.now() - start > 60_000) throw new Error(`timed out waiting for ${what}:\n${output}`);
    };
    const file = `${copy}/steps/01-exec.ts`;
    const atomicSave = (text: string) => {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    };
    try {
      await until(() => /Watching steps\/01-exec\.ts/.test(output), 'the first check');
      assert.equal(checks(), 1);
      atomicSave(reference(copy, '01-exec'));
      await until(() => checks() === 2 && /Watching/.test(output.split('Checking step 1').pop()!), 'the re-check after the first atomic save');
      assert.match(output, /✓ Step 1 done!/);
      atomicSave(reference(copy, '01-exec') + '\n// saved again\n');
      await until(() => checks() === 3 && /Watching/.test(output.split('Checking step 1').pop()!), 'the re-check after the second atomic save');
      // A burst of saves: one more check, not five.
      for (let i = 0; i < 5; i++) atomicSave(reference(copy, '01-exec') + `\n// burst ${i}\n`);
      await until(() => checks() === 4 && /Watching/.test(output.split('Checking step 1').pop()!), 'the re-check after a burst');
      await sleep(1500);
      assert.equal(checks(), 4, 'one check for the burst');
    } finally {
      watcher.kill();
    }
  });

  test('polling (shared folders): re-checks when the file changes', { timeout: 120_000 }, async () => {
    const copy = newCopy();
    const watcher = spawn(process.execPath, ['cli/launch.mjs', 'cli/watch.ts', '1', '--poll'], { cwd: copy, env: { ...process.env, FORCE_COLOR: '0' } });
    let output = '';
    watcher.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    try {
      for (const start = Date.now(); !/Watching steps\/01-exec\.ts \(polling\)/.test(output); await sleep(50)) if (Date.now() - start > 60_000) throw new Error(output);
      await sleep(600); // the polling interval is 500 ms: make the new mtime a different one
      const file = `${copy}/steps/01-exec.ts`;
      writeFileSync(`${file}.tmp`, readFileSync(file));
      renameSync(`${file}.tmp`, file);
      for (const start = Date.now(); output.split('Checking step 1').length - 1 < 2; await sleep(50)) if (Date.now() - start > 60_000) throw new Error(output);
    } finally {
      watcher.kill();
    }
  });
});

// Issue 10, item 12: `npm test` means the same in a participant's checkout.
describe("npm test in a participant's checkout", () => {
  test('edited steps/ (committed or not): exercise integrity still passes; a stale exercise still fails', () => {
    const copy = newCopy();
    const git = (...args: string[]) => spawnSync('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd: copy, encoding: 'utf8' });
    git('init', '-q');
    git('add', '-A');
    assert.equal(git('commit', '-qm', 'the workshop').status, 0);
    // The participant's work: a half-done step 2, and a step 1 that does not even compile.
    writeFileSync(`${copy}/steps/02-uts.ts`, reference(copy, '02-uts').replace('sethostname(container.hostname);', '// not yet'));
    writeFileSync(`${copy}/steps/01-exec.ts`, 'this is not TypeScript (\n');
    // A test run of its own: without NODE_TEST_CONTEXT, which would make it report to this one instead.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const run = (file: string) => spawnSync(process.execPath, ['--import', 'tsx', '--test', file], { cwd: copy, encoding: 'utf8', env: { ...env, FORCE_COLOR: '0' } });
    const integrity = run('tests/integrity.test.ts');
    assert.equal(integrity.status, 0, integrity.stdout);
    const suite = run('tests/step-1.test.ts'); // the pristine exercise's integrity: generated, not read from steps/
    assert.equal(suite.status, 0, suite.stdout);
    // A solution changed without regenerating its exercise is still caught.
    writeFileSync(`${copy}/solutions/03-pid.ts`, readFileSync(`${copy}/solutions/03-pid.ts`, 'utf8').replace('// hint: unshare() takes', '// hint: unshare() really takes'));
    const stale = run('tests/integrity.test.ts');
    assert.equal(stale.status, 1, stale.stdout);
    assert.match(stale.stdout, /steps\/03-pid\.ts is out of date/);
  });
});
