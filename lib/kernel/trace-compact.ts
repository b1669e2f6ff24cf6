// --trace=compact: the trace for a projector, at most 100 columns wide.
//
//   parent · pid 4242       │ child · (--trace=full shows every argument)
//   ────────────────────────┼──────────────────────────────────────────────────
//   unshare(CLONE_NEWUTS|CLONE_NEWPID) = 0
//   spawn(node, ["solutions/04-mount.ts", "child", …]) → pid 4250
//                           │ mount("proc", "rootfs/proc", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, "") = 0
//                           │ mount("/dev/{X}", "rootfs/dev/{X}", "", MS_BIND, "") = 0
//                           │     X: null zero full random urandom tty
//                           │ fcntl({X}, F_SETFD, 0) = 0   X: 0 1 2
//
// The parent's lines start at the left edge, the child's in the column after
// the bar (the two never share a row, so a parent's line may be as wide as
// the trace). Paths are shown relative to the repository (`rootfs/proc`), or
// by the short name a folder was given (`layers`, `merged`, `cgroup-pids`),
// with one line saying so; arguments that do not fit are cut (in the middle
// for strings); a run of the same call that differs in one value (six /dev
// bind mounts, 25 dropped capabilities) is one line, with the values after `X:`.
import { writeSync } from 'node:fs';
import chalk from 'chalk';
import { REPO_ROOT } from '../paths.js';

/** Width of the compact trace, and the terminal width under which a bare --trace picks it. */
export const COMPACT_WIDTH = 100;
export const AUTO_COMPACT_BELOW = 120;

/** The compact trace's width when it is on (TRACE=compact:WIDTH), else undefined. */
export function compactWidth(): number | undefined {
  const match = /^compact:(\d+)$/.exec(process.env.TRACE ?? '');
  return match ? Math.max(60, Math.min(200, Number(match[1]))) : undefined;
}

/**
 * The TRACE value for a --trace option: "1" (the full trace) or
 * "compact:WIDTH". A bare --trace is compact on a terminal narrower than
 * AUTO_COMPACT_BELOW columns (the full lines are up to 250 columns and would
 * wrap), full otherwise (a wide terminal, a pipe, a file). Undefined: not a
 * --trace option we know.
 */
export function traceSetting(option: string, terminal: { isTTY?: boolean; columns?: number } = process.stderr): string | undefined {
  const columns = terminal.isTTY === true && terminal.columns ? terminal.columns : undefined;
  const compact = `compact:${Math.max(60, Math.min(COMPACT_WIDTH, columns ?? COMPACT_WIDTH))}`;
  if (option === '--trace=full') return '1';
  if (option === '--trace=compact') return compact;
  if (option === '--trace') return columns !== undefined && columns < AUTO_COMPACT_BELOW ? compact : '1';
  return undefined;
}

// ---- short names for paths --------------------------------------------------

const NAMES_VARIABLE = 'CFS_TRACE_NAMES';

function registeredNames(): Record<string, string> {
  try {
    const names: unknown = JSON.parse(process.env[NAMES_VARIABLE] ?? '{}');
    return typeof names === 'object' && names !== null ? (names as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/**
 * Show paths under `folder` as `name/…` from now on, in this process and in
 * the child it spawns (the names travel in the environment, like TRACE).
 * Returns true when the name is new (the caller prints the legend once).
 */
export function registerShortName(folder: string, name: string): boolean {
  const names = registeredNames();
  if (names[folder] === name) return false;
  names[folder] = name;
  process.env[NAMES_VARIABLE] = JSON.stringify(names);
  return true;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Paths in `text` made short: registered folders by their names, the repository's paths relative to it. */
export function shortenPaths(text: string): string {
  const end = '(?=[/"\',}\\]\\s)]|$)';
  const names = Object.entries(registeredNames()).sort(([a], [b]) => b.length - a.length);
  for (const [folder, name] of names) text = text.replace(new RegExp(escapeRegExp(folder) + end, 'g'), name);
  return text.replace(new RegExp(escapeRegExp(`${REPO_ROOT}/`), 'g'), '').replace(new RegExp(escapeRegExp(REPO_ROOT) + end, 'g'), '.');
}

// ---- cutting arguments to fit ----------------------------------------------

/** Split `a, "b, c", [d, e]` at its top-level commas. */
export function splitArgs(args: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < args.length; i++) {
    const char = args[i];
    if (quoted) {
      if (char === '\\') i++;
      else if (char === '"') quoted = false;
    } else if (char === '"') quoted = true;
    else if (char === '[' || char === '{' || char === '(') depth++;
    else if (char === ']' || char === '}' || char === ')') depth--;
    else if (char === ',' && depth === 0 && args[i + 1] === ' ') {
      parts.push(args.slice(start, i));
      start = i + 2;
      i++;
    }
  }
  if (args.length > 0) parts.push(args.slice(start));
  return parts;
}

/** One argument cut to `length` characters (at least 5), keeping what says most. */
function cutPart(part: string, length: number): string {
  if (part.length <= length) return part;
  if (part.length >= 2 && part.startsWith('"') && part.endsWith('"')) {
    const keep = length - 3; // the two quotes and the ellipsis
    const head = Math.ceil(keep / 2);
    return `"${part.slice(1, 1 + head)}…${part.slice(part.length - 1 - (keep - head), -1)}"`;
  }
  if (part.includes('|')) {
    const cut = part.lastIndexOf('|', length - 2);
    return cut > 0 ? `${part.slice(0, cut + 1)}…` : `${part.slice(0, length - 1)}…`;
  }
  const closing = part.startsWith('[') ? ']' : part.startsWith('{') ? '}' : '';
  return `${part.slice(0, length - 1 - closing.length)}…${closing}`;
}

/** The arguments, joined, at most `room` characters: the longest ones are cut first. */
export function fitArgs(parts: readonly string[], room: number): string {
  const fitted = [...parts];
  const length = (): number => fitted.join(', ').length;
  // First no argument below 16 characters, then (if it still does not fit) down to 5.
  for (const shortest of [16, 5]) {
    while (length() > room) {
      let longest = -1;
      fitted.forEach((part, index) => {
        if (part.length > shortest && (longest === -1 || part.length > fitted[longest]!.length)) longest = index;
      });
      if (longest === -1) break;
      const target = Math.max(shortest, fitted[longest]!.length - (length() - room));
      const shorter = cutPart(fitted[longest]!, target);
      if (shorter.length >= fitted[longest]!.length) break;
      fitted[longest] = shorter;
    }
  }
  const joined = fitted.join(', ');
  return joined.length <= room ? joined : `${joined.slice(0, Math.max(0, room - 1))}…`;
}

/** `text` cut to `width` columns. */
function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

// ---- runs of the same call -------------------------------------------------

interface Call {
  call: string;
  parts: string[];
  result: string;
}

/** Where a prefix or suffix may end/start: between "words" of a path or a name. */
const BOUNDARY = /["/_.\-=]/;

/**
 * If every call is the same template with one value X put in (in one or more
 * arguments), that template and the values; otherwise undefined.
 */
export function commonTemplate(calls: readonly Call[]): { parts: string[]; values: string[] } | undefined {
  const first = calls[0];
  if (!first || calls.length < 2) return undefined;
  if (calls.some((c) => c.call !== first.call || c.result !== first.result || c.parts.length !== first.parts.length)) return undefined;
  let values: string[] | undefined;
  const parts: string[] = [];
  for (let position = 0; position < first.parts.length; position++) {
    const texts = calls.map((c) => c.parts[position]!);
    if (texts.every((text) => text === texts[0])) {
      parts.push(texts[0]!);
      continue;
    }
    const shortest = Math.min(...texts.map((text) => text.length));
    let prefix = 0;
    while (prefix < shortest && texts.every((text) => text[prefix] === texts[0]![prefix])) prefix++;
    while (prefix > 0 && !BOUNDARY.test(texts[0]![prefix - 1]!)) prefix--;
    let suffix = 0;
    while (suffix < shortest - prefix && texts.every((text) => text[text.length - 1 - suffix] === texts[0]![texts[0]!.length - 1 - suffix])) suffix++;
    while (suffix > 0 && !BOUNDARY.test(texts[0]![texts[0]!.length - suffix]!)) suffix--;
    const here = texts.map((text) => text.slice(prefix, text.length - suffix));
    if (here.some((value) => value === '' || /[|,\s]/.test(value))) return undefined;
    if (values && here.some((value, index) => value !== values![index])) return undefined;
    values = here;
    parts.push(`${texts[0]!.slice(0, prefix)}{X}${texts[0]!.slice(texts[0]!.length - suffix)}`);
  }
  return values ? { parts, values } : undefined;
}

// ---- output ----------------------------------------------------------------

export type Side = 'parent' | 'child';

let headerDone = false;
let pending: Call[] = [];
let flushScheduled = false;
let exitHooked = false;

/** The child's column starts here; the parent's lines start at 0 (and may be as wide as the trace). */
const CHILD_COLUMN = 24;

/** The width a line of `side` may take. */
function room(side: Side): number {
  const width = compactWidth() ?? COMPACT_WIDTH;
  return side === 'parent' ? width : width - CHILD_COLUMN - 2;
}

function write(side: Side, text: string): void {
  const gutter = `${' '.repeat(CHILD_COLUMN)}${chalk.dim('│')} `;
  if (!headerDone && side === 'parent') {
    headerDone = true;
    const width = compactWidth() ?? COMPACT_WIDTH;
    const left = cut(`parent · pid ${process.pid}`, CHILD_COLUMN - 1).padEnd(CHILD_COLUMN);
    const right = cut('child · (--trace=full shows every argument)', width - CHILD_COLUMN - 2);
    writeSync(2, `${chalk.bold(left)}${chalk.dim('│')} ${chalk.bold(right)}\n${chalk.dim(`${'─'.repeat(CHILD_COLUMN)}┼${'─'.repeat(width - CHILD_COLUMN - 1)}`)}\n`);
  }
  // writeSync, not console.error: the line must be out before an execvp replaces us.
  writeSync(2, `${side === 'child' ? gutter : ''}${text}\n`);
}

function colourCall(side: Side, call: string): string {
  return side === 'parent' ? chalk.cyan.bold(call) : chalk.magenta.bold(call);
}

/** Rows listing a run's values: `    X: a b c`, at most three rows, then `…+N`. */
function valueRows(values: readonly string[], width: number): string[] {
  const rows: string[] = [];
  let row = '    X:';
  for (const [index, value] of values.entries()) {
    const more = ` …+${values.length - index}`;
    const lastRow = rows.length === 2;
    if (row.length + 1 + value.length + (lastRow && index < values.length - 1 ? more.length + 1 : 0) > width) {
      if (lastRow) {
        rows.push(row + more);
        return rows;
      }
      rows.push(row);
      row = '      ';
    }
    row += ` ${value}`;
  }
  rows.push(row);
  return rows;
}

/** One call on one line: `call(args) = result`, or with `tail` instead of ` = result` (execvp's note). */
function writeCall(side: Side, c: Call, style: 'ok' | 'failed' | 'note' = 'ok', values?: string[]): void {
  const tail = style === 'note' ? ` ${c.result}` : ` = ${c.result}`;
  const width = room(side);
  // A note (execvp's "→ the command replaces this process") gives way to the arguments.
  const tailRoom = style === 'note' ? Math.min(tail.length, 24) : tail.length;
  const args = fitArgs(c.parts, width - c.call.length - 2 - tailRoom);
  const shownTail = cut(`${c.call}(${args})${tail}`, width).slice(c.call.length + 2 + args.length);
  const coloured = style === 'failed' ? chalk.red(shownTail) : style === 'note' ? chalk.dim(shownTail) : shownTail;
  const line = `${colourCall(side, c.call)}(${args})${coloured}`;
  const plainLength = c.call.length + 2 + args.length + shownTail.length;
  const sameRow = values ? `   X: ${values.join(' ')}` : '';
  if (values && plainLength + sameRow.length <= width) return write(side, line + chalk.dim(sameRow));
  write(side, line);
  if (values) for (const row of valueRows(values, width)) write(side, chalk.dim(row));
}

/** Write the calls held back (one line, or one line for the whole run). */
export function flushCompact(side: Side): void {
  const calls = pending;
  pending = [];
  if (calls.length === 0) return;
  const template = commonTemplate(calls);
  if (template) writeCall(side, { ...calls[0]!, parts: template.parts }, 'ok', template.values);
  else for (const c of calls) writeCall(side, c);
}

/**
 * A call that returned. It is held back until the next event (or the end of
 * the current synchronous stretch), so that a run of the same call becomes one line.
 */
export function compactCall(side: Side, call: string, args: string, result: string): void {
  const next: Call = { call, parts: splitArgs(shortenPaths(args)), result };
  if (pending.length > 0 && !commonTemplate([...pending, next])) flushCompact(side);
  pending.push(next);
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', () => flushCompact(side));
  }
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(() => {
      flushScheduled = false;
      flushCompact(side);
    }).unref();
  }
}

/** A call that failed (`result` is "-1 EINVAL (…)"), or one that does not return (`result` is its note): written at once. */
export function compactFinal(side: Side, call: string, args: string, result: string, style: 'failed' | 'note'): void {
  flushCompact(side);
  writeCall(side, { call, parts: splitArgs(shortenPaths(args)), result }, style);
}

/** A step that is not a libc call (spawning, a cgroup file, a folder); `shorten: false` keeps its paths whole. */
export function compactNote(side: Side, text: string, shorten = true): void {
  flushCompact(side);
  write(side, chalk.dim(cutMiddle(shorten ? shortenPaths(text) : text, room(side))));
}

/** `text` cut in the middle to `width` columns (a long path keeps its start and its end). */
function cutMiddle(text: string, width: number): string {
  if (text.length <= width) return text;
  const head = Math.ceil((width - 1) / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (width - 1 - head))}`;
}
