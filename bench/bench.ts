// npm run bench [-- --rounds N] [--json] [--quick]
// npm run bench -- --kills N
// npm run bench -- --import FILE.tar.gz [--rounds N]
//
// Container start-to-exit latency for `true`, per step, and the time of
// `npm run check N` for every step (on the solution, type-check included; the
// workshop's target is 25× `node -e 0`), next to baselines
// measured in the same run: the machine is noisy, so only ratios measured
// side by side mean something. Cases are interleaved round by round, and each
// is reported as median and spread (min–max), and as a ratio to `node -e 0`.
//
// --kills N: kill -9 the runtime N times at a random 0–400 ms of its start,
// across steps 4, 5, 6 and 8 (and SIGTERM, before it has handlers, N/6 times
// at 0–80 ms), and count the containers left running: it should be 0.
// With --import: `npm run rootfs -- --from FILE` next to `tar -xzf FILE`, time
// and peak memory (the largest resident size of any process of the command).
import chalk from 'chalk';
import { spawn, spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { compile } from '../workshop/compile.mjs';
import { REPO_ROOT } from '../lib/paths.js';
import { removeStaleCgroups } from '../lib/container/cgroups.js';
import { removeStaleLayers } from '../lib/container/overlay.js';
import { killDuringSetup, stepNumbered } from '../workshop/harness.js';
import { STEPS, solutionFile } from '../workshop/steps.js';

interface Case {
  name: string;
  command: string[];
  /** Fewer rounds for slow cases. */
  everyNthRound?: number;
  env?: NodeJS.ProcessEnv;
  /** The target, as a multiple of `node -e 0`. */
  withinNode?: number;
}

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
}

const rounds = option('--rounds', process.argv.includes('--quick') ? 3 : 9);
const node = process.execPath;
const tsx = `${REPO_ROOT}/node_modules/.bin/tsx`;

async function cases(): Promise<Case[]> {
  const list: Case[] = [
    { name: 'floor: node -e 0', command: [node, '-e', '0'] },
    { name: 'floor: unshare -upm --fork --mount-proc true', command: ['unshare', '-upm', '--fork', '--mount-proc', 'true'] },
  ];
  for (const step of STEPS) {
    const bundle = await compile(solutionFile(step));
    list.push({ name: `step ${step.number}: compiled runtime (node bundle run true)`, command: [node, bundle, 'run', 'true'] });
  }
  const last = STEPS.find((step) => step.number === 4) ?? STEPS[STEPS.length - 1]!;
  list.push(
    { name: `step ${last.number}: node cli/launch.mjs cli/step.ts ${last.number} --solution true`, command: [node, 'cli/launch.mjs', 'cli/step.ts', String(last.number), '--solution', 'true'] },
    { name: `step ${last.number}: npm run step ${last.number} -- --solution true`, command: ['npm', 'run', '-s', 'step', String(last.number), '--', '--solution', 'true'] },
    { name: `step ${last.number}: tsx ${`solutions/${last.stem}.ts`} run true (no cache)`, command: [tsx, `solutions/${last.stem}.ts`, 'run', 'true'], everyNthRound: 3 },
  );
  // `npm run check N` on a correct file, type-check included (as after an edit: its cache is off).
  for (const step of STEPS) {
    list.push({
      name: `npm run check ${step.number} (the solution, type-checked)`,
      command: [node, 'cli/launch.mjs', 'bench/check-solution.ts', String(step.number)],
      everyNthRound: 3,
      env: { CFS_TYPECHECK_CACHE: 'off' },
      withinNode: 25,
    });
  }
  return list;
}

function timeOnce(command: string[], env: NodeJS.ProcessEnv = {}): number {
  const [program, ...args] = command;
  const started = process.hrtime.bigint();
  const result = spawnSync(program!, args, { cwd: REPO_ROOT, stdio: 'ignore', env: { ...process.env, TRACE: '', ...env } });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`${command.join(' ')} exited ${result.status ?? result.signal}`);
  return elapsed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function bench(): Promise<void> {
  const list = await cases();
  const samples = new Map<Case, number[]>(list.map((c) => [c, []]));
  for (const c of list) timeOnce(c.command, c.env); // warm-up: caches, page cache
  for (let round = 0; round < rounds; round++) {
    for (const c of list) {
      if (round % (c.everyNthRound ?? 1) === 0) samples.get(c)!.push(timeOnce(c.command, c.env));
    }
    if (!process.argv.includes('--json')) process.stderr.write(chalk.dim(`\rround ${round + 1}/${rounds}`));
  }
  if (!process.argv.includes('--json')) process.stderr.write('\r' + ' '.repeat(20) + '\r');

  const floor = median(samples.get(list[0]!)!);
  const rows = list.map((c) => {
    const values = samples.get(c)!;
    const ratioToNode = median(values) / floor;
    const within = c.withinNode === undefined ? undefined : ratioToNode <= c.withinNode;
    return { name: c.name, runs: values.length, medianMs: median(values), minMs: Math.min(...values), maxMs: Math.max(...values), ratioToNode, target: c.withinNode, within };
  });

  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ rounds, node: process.version, rows }, null, 2));
  } else {
    const width = Math.max(...rows.map((row) => row.name.length));
    console.log(chalk.bold(`${'case'.padEnd(width)}   median      spread (min–max)     × node -e 0`));
    for (const row of rows) {
      const spread = `${row.minMs.toFixed(0)}–${row.maxMs.toFixed(0)} ms`;
      const verdict = row.target === undefined ? '' : row.within ? chalk.green(` ✓ within ${row.target}×`) : chalk.red(` ✗ over ${row.target}×`);
      console.log(`${row.name.padEnd(width)}  ${`${row.medianMs.toFixed(0)} ms`.padStart(8)}   ${spread.padEnd(18)}  ${row.ratioToNode.toFixed(2).padStart(6)}×  ${chalk.dim(`(${row.runs} runs)`)}${verdict}`);
    }
  }
}

/** Kill the runtime during setup `tries` times; print tries and survivors per step and signal. */
async function kills(tries: number): Promise<void> {
  const plan: Array<{ step: number; signal: NodeJS.Signals; delay: number }> = [];
  for (let index = 0; index < tries; index++) plan.push({ step: [4, 5, 6, 8][index % 4]!, signal: 'SIGKILL', delay: randomInt(0, 400) });
  for (let index = 0; index < Math.ceil(tries / 6); index++) plan.push({ step: [4, 5, 6, 8][index % 4]!, signal: 'SIGTERM', delay: randomInt(0, 80) });
  const results = new Map<string, { tries: number; survivors: number }>();
  let done = 0;
  const queue = [...plan];
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const left = await killDuringSetup(stepNumbered(next.step), 'solutions', next.delay, next.signal);
      const key = `step ${next.step}, ${next.signal === 'SIGKILL' ? 'kill -9 at 0–400 ms' : 'SIGTERM at 0–80 ms'}`;
      const row = results.get(key) ?? { tries: 0, survivors: 0 };
      row.tries++;
      row.survivors += left.length > 0 ? 1 : 0;
      results.set(key, row);
      process.stderr.write(chalk.dim(`\r${++done}/${plan.length}`));
    }
  };
  await Promise.all([worker(), worker()]);
  process.stderr.write('\r' + ' '.repeat(20) + '\r');
  await removeStaleCgroups(); // the killed runs' cgroups and layers
  removeStaleLayers();
  let total = { tries: 0, survivors: 0 };
  for (const [key, row] of [...results].sort()) {
    console.log(`${key.padEnd(36)} ${String(row.tries).padStart(4)} tries  ${row.survivors === 0 ? chalk.green('0 survivors') : chalk.red(`${row.survivors} survivors`)}`);
    total = { tries: total.tries + row.tries, survivors: total.survivors + row.survivors };
  }
  console.log(chalk.bold(`${'all'.padEnd(36)} ${String(total.tries).padStart(4)} tries  ${total.survivors} survivors`));
  if (total.survivors > 0) process.exitCode = 1;
}

interface Measure {
  ms: number;
  /** CPU time (user + system) of the command and every process it waited for: a figure the machine's load changes less. */
  cpuMs: number;
  peakBytes: number;
}

/**
 * Run `command` through a shell that, once it is done, prints its own
 * /proc/PID/stat: fields 16–17 (cutime, cstime) add up the CPU time of every
 * process it (and they) waited for. Meanwhile, poll the peak resident size
 * (VmHWM) of each process of the command.
 */
async function measure(command: string[]): Promise<Measure> {
  const started = process.hrtime.bigint();
  const script = '"$@"; status=$?; cat /proc/$$/stat >&3; exit $status';
  const child = spawn('sh', ['-c', script, 'sh', ...command], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  let stat = '';
  (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (chunk: string) => (stat += chunk));
  const peaks = new Map<number, number>();
  let done = false;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  void exited.then(() => (done = true));
  while (!done) {
    for (const pid of [child.pid!, ...descendants(child.pid!)]) {
      const kib = /^VmHWM:\s+(\d+)/m.exec(readIfAlive(`/proc/${pid}/status`))?.[1];
      if (kib) peaks.set(pid, Math.max(peaks.get(pid) ?? 0, Number(kib) * 1024));
    }
    await sleep(20);
  }
  const code = await exited;
  if (code !== 0) throw new Error(`${command.join(' ')} exited ${code}`);
  await sleep(20); // the last of the stat line
  const fields = stat.replace(/^.*\) /, '').split(' '); // after "pid (comm) ": field 3 is index 0
  const ticks = Number(fields[16 - 3]) + Number(fields[17 - 3]);
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, cpuMs: (ticks * 1000) / CLOCK_TICKS, peakBytes: Math.max(...peaks.values()) };
}

/** sysconf(_SC_CLK_TCK): 100 on Linux. */
const CLOCK_TICKS = 100;

function readIfAlive(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The processes started by `pid`, and theirs (/proc/PID/task/TID/children). */
function descendants(pid: number): number[] {
  const children = readIfAlive(`/proc/${pid}/task/${pid}/children`).split(' ').filter(Boolean).map(Number);
  return children.flatMap((child) => [child, ...descendants(child)]);
}

/** `npm run rootfs -- --from FILE` next to `tar -xzf FILE`, interleaved round by round. */
async function benchImport(file: string): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'cfs-bench-import-'));
  const results = { tar: [] as Measure[], ours: [] as Measure[] };
  try {
    for (let round = 0; round < rounds; round++) {
      const into = join(scratch, `tar-${round}`);
      spawnSync('mkdir', [into]);
      spawnSync('sync'); // each starts with no dirty pages of the one before: writeback would slow it down
      results.tar.push(await measure(['tar', '-xzf', file, '-C', into]));
      rmSync(into, { recursive: true, force: true });
      const target = join(scratch, `ours-${round}`);
      spawnSync('sync');
      results.ours.push(await measure([node, 'cli/launch.mjs', 'cli/rootfs.ts', '--from', file, '--target', target, '--keep-setuid']));
      rmSync(target, { recursive: true, force: true });
      if (!process.argv.includes('--json')) process.stderr.write(chalk.dim(`\rround ${round + 1}/${rounds}`));
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  if (!process.argv.includes('--json')) process.stderr.write('\r' + ' '.repeat(20) + '\r');
  const row = (name: string, samples: Measure[]) => ({
    name,
    medianMs: median(samples.map((sample) => sample.ms)),
    medianCpuMs: median(samples.map((sample) => sample.cpuMs)),
    minMs: Math.min(...samples.map((sample) => sample.ms)),
    maxMs: Math.max(...samples.map((sample) => sample.ms)),
    peakMiB: Math.max(...samples.map((sample) => sample.peakBytes)) / 1024 ** 2,
  });
  const rows = [row(`tar -xzf ${file}`, results.tar), row(`npm run rootfs -- --from ${file} (--keep-setuid)`, results.ours)];
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ rounds, rows, ratio: rows[1]!.medianMs / rows[0]!.medianMs, cpuRatio: rows[1]!.medianCpuMs / rows[0]!.medianCpuMs }, null, 2));
    return;
  }
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(chalk.bold(`${'case'.padEnd(width)}   median      spread (min–max)    CPU (median)   peak memory`));
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(width)}  ${`${r.medianMs.toFixed(0)} ms`.padStart(8)}   ${`${r.minMs.toFixed(0)}–${r.maxMs.toFixed(0)} ms`.padEnd(18)}  ${`${r.medianCpuMs.toFixed(0)} ms`.padStart(9)}   ${r.peakMiB.toFixed(1).padStart(7)} MiB`,
    );
  }
  console.log(
    `import / tar -xzf: ${(rows[1]!.medianMs / rows[0]!.medianMs).toFixed(2)}× the time, ${(rows[1]!.medianCpuMs / rows[0]!.medianCpuMs).toFixed(2)}× the CPU (${rounds} rounds)`,
  );
}

const killIndex = process.argv.indexOf('--kills');
const importIndex = process.argv.indexOf('--import');
const chosen = killIndex !== -1 ? kills(Number(process.argv[killIndex + 1] ?? 200)) : importIndex !== -1 ? benchImport(process.argv[importIndex + 1] ?? '') : bench();
chosen.catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
