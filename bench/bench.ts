// npm run bench [-- --rounds N] [--json] [--quick]
// npm run bench -- --kills N
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
import chalk from 'chalk';
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
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

const killIndex = process.argv.indexOf('--kills');
(killIndex === -1 ? bench() : kills(Number(process.argv[killIndex + 1] ?? 200))).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
