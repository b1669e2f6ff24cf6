// npm run bench [-- --rounds N] [--json] [--quick]
// npm run bench -- --import FILE.tar.gz [--rounds N]
//
// Container start-to-exit latency for `true`, per step, next to baselines
// measured in the same run: the machine is noisy, so only ratios measured
// side by side mean something. Cases are interleaved round by round, and each
// is reported as median and spread (min–max), and as a ratio to `node -e 0`.
//
// With --import: `npm run rootfs -- --from FILE` next to `tar -xzf FILE`, time
// and peak memory (the largest resident size of any process of the command).
import chalk from 'chalk';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { compile } from '../workshop/compile.mjs';
import { REPO_ROOT } from '../lib/paths.js';
import { STEPS, solutionFile } from '../workshop/steps.js';

interface Case {
  name: string;
  command: string[];
  /** Fewer rounds for slow cases. */
  everyNthRound?: number;
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
    { name: `npm run check ${last.number} (all checks of steps 1–${last.number}, solution)`, command: [node, 'cli/launch.mjs', 'bench/check-solution.ts', String(last.number)], everyNthRound: 3 },
  );
  return list;
}

function timeOnce(command: string[]): number {
  const [program, ...args] = command;
  const started = process.hrtime.bigint();
  const result = spawnSync(program!, args, { cwd: REPO_ROOT, stdio: 'ignore', env: { ...process.env, TRACE: '' } });
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
  for (const c of list) timeOnce(c.command); // warm-up: caches, page cache
  for (let round = 0; round < rounds; round++) {
    for (const c of list) {
      if (round % (c.everyNthRound ?? 1) === 0) samples.get(c)!.push(timeOnce(c.command));
    }
    if (!process.argv.includes('--json')) process.stderr.write(chalk.dim(`\rround ${round + 1}/${rounds}`));
  }
  if (!process.argv.includes('--json')) process.stderr.write('\r' + ' '.repeat(20) + '\r');

  const floor = median(samples.get(list[0]!)!);
  const rows = list.map((c) => {
    const values = samples.get(c)!;
    return { name: c.name, runs: values.length, medianMs: median(values), minMs: Math.min(...values), maxMs: Math.max(...values), ratioToNode: median(values) / floor };
  });

  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ rounds, node: process.version, rows }, null, 2));
  } else {
    const width = Math.max(...rows.map((row) => row.name.length));
    console.log(chalk.bold(`${'case'.padEnd(width)}   median      spread (min–max)     × node -e 0`));
    for (const row of rows) {
      const spread = `${row.minMs.toFixed(0)}–${row.maxMs.toFixed(0)} ms`;
      console.log(`${row.name.padEnd(width)}  ${`${row.medianMs.toFixed(0)} ms`.padStart(8)}   ${spread.padEnd(18)}  ${row.ratioToNode.toFixed(2).padStart(6)}×  ${chalk.dim(`(${row.runs} runs)`)}`);
    }
  }
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

const importIndex = process.argv.indexOf('--import');
(importIndex === -1 ? bench() : benchImport(process.argv[importIndex + 1] ?? '')).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
