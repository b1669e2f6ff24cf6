// --trace: print every libc call as it happens, with decoded arguments,
// the result or errno, and which side of the runtime made it.
//
//   parent 4242 │ unshare(CLONE_NEWUTS|CLONE_NEWPID) = 0
//   child     1 │ sethostname("container", 9) = 0
//
// The runtime sets TRACE=1 for --trace, so the child (a new process) traces too.
// --trace=compact (TRACE=compact:WIDTH) is the projector's form: trace-compact.ts.
import { writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import chalk from 'chalk';
import { compactCall, compactFinal, compactNote, compactWidth, registerShortName, shortenPaths } from './trace-compact.js';

export { traceSetting } from './trace-compact.js';

export function tracing(): boolean {
  return process.env.TRACE === '1' || compact();
}

function compact(): boolean {
  return compactWidth() !== undefined;
}

/** "parent" or "child": the re-spawned runtime is started with `child` as its first argument. */
export function side(): 'parent' | 'child' {
  return process.argv[2] === 'child' ? 'child' : 'parent';
}

/** Render one argument the way C code would show it. */
export function showArg(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(showArg).join(', ')}]`;
  return String(value);
}

function prefix(): string {
  const who = side();
  const label = `${who.padEnd(6)} ${String(process.pid).padStart(6)} │`;
  return who === 'parent' ? chalk.cyan(label) : chalk.magenta(label);
}

function emit(line: string): void {
  // writeSync, not console.error: the line must be out before an execvp replaces us.
  // \r too on a terminal: it may be in raw mode (the runtime relaying a container's terminal).
  writeSync(2, `${prefix()} ${line}${isatty(2) ? '\r\n' : '\n'}`);
}

/** A call that returned: `mount("proc", "/proc", "proc", MS_NOSUID) = 0`. */
export function traceCall(call: string, args: string, result: string): void {
  if (compact()) return compactCall(side(), call, args, result);
  if (tracing()) emit(`${chalk.bold(call)}(${args}) = ${result}`);
}

/** A call that failed: `pivot_root(".", ".") = -1 EINVAL (Invalid argument)`. */
export function traceFailure(call: string, args: string, errnoName: string, message: string): void {
  if (compact()) return compactFinal(side(), call, args, `-1 ${errnoName} (${message})`, 'failed');
  if (tracing()) emit(`${chalk.bold(call)}(${args}) = ${chalk.red(`-1 ${errnoName} (${message})`)}`);
}

/** A call that does not return when it works (execvp). */
export function traceNoReturn(call: string, args: string, note: string): void {
  if (compact()) return compactFinal(side(), call, args, note, 'note');
  if (tracing()) emit(`${chalk.bold(call)}(${args}) ${chalk.dim(note)}`);
}

/** A step the runtime takes that is not a libc call (spawning, cgroup files, ...). */
export function traceNote(text: string): void {
  if (compact()) return compactNote(side(), text);
  if (tracing()) emit(chalk.dim(text));
}

/**
 * The compact trace shows paths under `folder` as `name/…` (a container's
 * layer folder as `layers`), after one line saying so. Nothing otherwise.
 */
export function traceShortName(folder: string, name: string): void {
  if (!compact()) return;
  const legend = `${name} = ${shortenPaths(folder)}`;
  if (registerShortName(folder, name)) compactNote(side(), legend, false);
}
