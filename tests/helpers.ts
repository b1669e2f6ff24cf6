// Helpers shared by the test files (the check harness itself is workshop/harness.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { cpSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { TestContext } from 'node:test';
import { REPO_ROOT } from '../lib/paths.js';
import { compile } from '../workshop/compile.mjs';
import { hostProcesses, runtimeFile, slowness, waitFor } from '../workshop/harness.js';
import { STEPS, type Step } from '../workshop/steps.js';

/**
 * A copy of the repository in a temporary folder, for tests that change files
 * or state (steps/, .workshop/, a missing rootfs/). node_modules is shared, and
 * so is rootfs/ unless `withRootfs` is false. The caller removes the folder.
 */
export function copyOfRepository({ withRootfs = true } = {}): string {
  const copy = mkdtempSync(`${tmpdir()}/cfs-repo-`);
  for (const entry of ['cli', 'lib', 'workshop', 'rootfs-builder', 'solutions', 'steps', 'tests', 'package.json', 'tsconfig.json']) {
    cpSync(`${REPO_ROOT}/${entry}`, `${copy}/${entry}`, { recursive: true });
  }
  symlinkSync(`${REPO_ROOT}/node_modules`, `${copy}/node_modules`);
  if (withRootfs) symlinkSync(`${REPO_ROOT}/rootfs`, `${copy}/rootfs`);
  return copy;
}

/** What a finished program printed, and its exit status. */
export interface Output {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Collect a spawned program's stdout and stderr until it ends (spawn it with stdout and stderr piped). */
export function outputOf(child: ChildProcess): Promise<Output> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

// ── Runtimes started in the background, ended on every path ────────────────

/** Wait for `condition`, or fail naming what did not happen (the wait grows on slow machines: slowness()). */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  if (!(await waitFor(condition, timeoutMs * slowness()))) throw new Error(`timed out waiting for ${what}`);
}

export function exited(child: ChildProcess): Promise<{ status: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ status: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.on('exit', (status, signal) => resolve({ status, signal })));
}

/** A `sleep` with a unique duration, so the test can find exactly its processes. */
export function uniqueSleep(): string[] {
  return ['sleep', `${randomInt(100_000, 999_999)}`];
}

/** SIGKILL `child` if it still runs, and every process whose command line is one of `commands`. */
export async function end(child: ChildProcess, commands: string[][]): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await exited(child);
  for (const pid of commands.flatMap((command) => hostProcesses(command))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * Start `node <compiled step> run -- command...` in the background. Whatever
 * happens to the test (a failed assertion, a wait or the test's timeout running
 * out), the runtime and every process named in `kill` (the container's, by
 * their unique command lines) are ended when it finishes: node:test would
 * otherwise wait for them forever.
 */
export async function startRuntime(t: TestContext, command: string[], kill: string[][], step: Step = STEPS[STEPS.length - 1]!): Promise<ChildProcess> {
  const bundle = await compile(runtimeFile(step, 'solutions'));
  const runtime = spawn(process.execPath, [bundle, 'run', '--', ...command], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => end(runtime, kill));
  return runtime;
}
