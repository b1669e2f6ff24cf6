// The container's environment, and the exact bytes the user typed.
//
// A container starts with an environment of its own, as Docker's do: PATH,
// HOSTNAME, HOME, and TERM when it has a terminal. Not the host's: its
// variables may hold secrets, and its PATH names folders of the host.
// `--env NAME=VALUE` adds a variable; `--env NAME` copies the host's.
//
// Arguments and values are bytes, and need not be UTF-8 (`$'caf\xe9'`). Node
// decodes its command line and environment into strings, turning such bytes
// into "�" for good: so the runtime reads them again, as bytes, from
// /proc/self/cmdline and /proc/self/environ.
import { readFileSync } from 'node:fs';

/** Docker's PATH for a container. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What Docker sets TERM to when the container has a terminal. */
const DEFAULT_TERM = 'xterm';

/** The NAME of `--env NAME[=VALUE]`: letters, digits and _, not starting with a digit. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The NUL-separated entries of a /proc file (cmdline, environ), as bytes; [] if it can't be read. */
function procEntries(path: string): Buffer[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return [];
  }
  const entries: Buffer[] = [];
  for (let start = 0; start < bytes.length; ) {
    let end = bytes.indexOf(0, start);
    if (end === -1) end = bytes.length;
    entries.push(bytes.subarray(start, end));
    start = end + 1;
  }
  return entries;
}

/**
 * The exact bytes of each of `args`, which are the end of this process's
 * command line as Node decoded it (some words in between may be missing: npm
 * run step takes `--solution` out). Matched from the end against
 * /proc/self/cmdline; a word not found there is taken as UTF-8.
 */
export function argumentBytes(args: readonly string[]): Buffer[] {
  const line = procEntries('/proc/self/cmdline');
  const bytes: Buffer[] = [];
  let next = line.length - 1;
  for (let index = args.length - 1; index >= 0; index--) {
    const arg = args[index]!;
    let found = next;
    while (found >= 0 && line[found]!.toString() !== arg) found--;
    if (found >= 0) {
      bytes.unshift(line[found]!);
      next = found - 1;
    } else {
      bytes.unshift(Buffer.from(arg));
    }
  }
  return bytes;
}

/**
 * The host's variables that `--env` entries ask for, as NAME=VALUE bytes:
 * `NAME=VALUE` as typed, `NAME` copied from this process's environment
 * (left out, like Docker does, when the host has no such variable).
 */
export function requestedVariables(entries: readonly Buffer[]): Buffer[] {
  const host = procEntries('/proc/self/environ');
  const fromHost = (name: string): Buffer | undefined => {
    const found = host.find((variable) => variable.subarray(0, name.length + 1).toString() === `${name}=`);
    if (found) return found;
    const value = process.env[name]; // set after this process started
    return value === undefined ? undefined : Buffer.from(`${name}=${value}`);
  };
  return entries.flatMap((entry) => {
    if (entry.includes('=')) return [entry];
    return fromHost(entry.toString()) ?? [];
  });
}

/** NAME of a NAME=VALUE entry. */
function nameOf(variable: Buffer): string {
  const equals = variable.indexOf('=');
  return variable.subarray(0, equals === -1 ? variable.length : equals).toString();
}

/**
 * The environment the container's command starts with: Docker's defaults,
 * then an image's Env (its config), then the variables asked for with --env
 * (each replacing one of the same name given before).
 */
export function containerEnvironment(
  requested: readonly Buffer[],
  { hostname, terminal, image = [] }: { hostname: string; terminal: boolean; image?: readonly string[] },
): Buffer[] {
  const defaults = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`, 'HOME=/root', ...(terminal ? [`TERM=${DEFAULT_TERM}`] : [])];
  const variables = new Map<string, Buffer>();
  for (const variable of [...[...defaults, ...image].map((text) => Buffer.from(text)), ...requested]) {
    const name = nameOf(variable);
    variables.delete(name); // keep the order in which they were last given
    variables.set(name, variable);
  }
  return [...variables.values()];
}
