// Helpers of the cgroup-v2 suites (npm run test:v2 runs them in a guest whose
// only cgroup hierarchy is v2: tools/v2vm/).
import { spawn } from 'node:child_process';
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../../lib/paths.js';
import { STEPS, exerciseFile, solutionFile } from '../../workshop/steps.js';
import { copyOfRepository, outputOf, type Output } from '../helpers.js';

export type CommandResult = Output;

/** `npm run <command> <args>` the way npm runs it (node cli/launch.mjs cli/<command>.ts), as this user. */
export function workshop(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CommandResult> {
  const child = spawn(process.execPath, ['cli/launch.mjs', `cli/${command}.ts`, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, FORCE_COLOR: '0', TRACE: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: options.timeoutMs ?? 120_000,
    killSignal: 'SIGKILL',
  });
  return outputOf(child);
}

export function show(result: CommandResult): string {
  return `exit ${result.status}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
}

/** A participant's checkout that has done every step: a copy of the repository with the solutions in steps/. The caller removes it. */
export function finishedCheckout(): string {
  const copy = copyOfRepository();
  for (const step of STEPS) cpSync(solutionFile(step), join(copy, relative(REPO_ROOT, exerciseFile(step))));
  return copy;
}

/** What a cgroup looks like from outside: every folder below it, and the controllers it enables for its children. */
export function cgroupState(dir: string): { folders: string[]; subtreeControl: string } {
  const folders = readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
  return { folders, subtreeControl: readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').trim() };
}

/** The cgroup v2 path of this process, as /proc/self/cgroup says it ("0::/user.slice/…"). */
export function ownCgroupPath(): string {
  return /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '';
}
