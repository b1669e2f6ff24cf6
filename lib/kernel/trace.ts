// --trace: print every libc call as it happens, with decoded arguments,
// the result or errno, and which side of the runtime made it.
//
//   parent 4242 │ unshare(CLONE_NEWUTS|CLONE_NEWPID) = 0
//   child     1 │ sethostname("container", 9) = 0
//
// The runtime sets TRACE=1 for --trace, so the child (a new process) traces too.
// --trace=compact (TRACE=compact:WIDTH) is the projector's form: trace-compact.ts.
//
// The check harness also asks for the same record, uncoloured, in a file
// (CFS_CALL_LOG): when a check finds the host changed, it tells the
// participant which call did it, from which side (workshop/diagnoses.ts).
import { appendFileSync, writeSync } from 'node:fs';
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

/** One line to the call log, when the check harness asked for one: `parent 4242 unshare(CLONE_NEWUTS) = 0`. */
function log(line: string): void {
  const file = process.env.CFS_CALL_LOG;
  if (!file) return;
  try {
    appendFileSync(file, `${side()} ${process.pid} ${line.replace(/\n/g, ' ')}\n`); // O_APPEND: parent and child lines never mix
  } catch {
    // the log is a diagnostic aid: never a reason to fail
  }
}

/** A call that returned: `mount("proc", "/proc", "proc", MS_NOSUID) = 0`. */
export function traceCall(call: string, args: string, result: string): void {
  log(`${call}(${args}) = ${result}`);
  if (compact()) return compactCall(side(), call, args, result);
  if (tracing()) emit(`${chalk.bold(call)}(${args}) = ${result}`);
}

/** A call that failed: `pivot_root(".", ".") = -1 EINVAL (Invalid argument)`. */
export function traceFailure(call: string, args: string, errnoName: string, message: string): void {
  log(`${call}(${args}) = -1 ${errnoName} (${message})`);
  if (compact()) return compactFinal(side(), call, args, `-1 ${errnoName} (${message})`, 'failed');
  if (tracing()) emit(`${chalk.bold(call)}(${args}) = ${chalk.red(`-1 ${errnoName} (${message})`)}`);
}

/** A call that does not return when it works (execvp). */
export function traceNoReturn(call: string, args: string, note: string): void {
  log(`${call}(${args}) ${note}`);
  if (compact()) return compactFinal(side(), call, args, note, 'note');
  if (tracing()) emit(`${chalk.bold(call)}(${args}) ${chalk.dim(note)}`);
}

/** A step the runtime takes that is not a libc call (spawning, cgroup files, ...). */
export function traceNote(text: string): void {
  log(`# ${text}`);
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
