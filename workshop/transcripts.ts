// WORKSHOP.md cannot drift: every output it quotes is produced by the real
// commands. A quoted block is marked by an HTML comment just above it:
//
//   <!-- transcript -->                   `$ command` lines, each followed by its output;
//   <!-- transcript: setup=npm run check 3; as=nobody; needs=cgroup-v1; compare=names -->
//   <!-- mistake: mount-no-bind -->       the output of `npm run check N` for that
//                                         mistake of the catalogue (workshop/mistakes.ts)
//   <!-- unchecked: why -->               an output this repository cannot produce (a host tool)
//
// Commands run in a fresh copy of the repository (`npm run X -- …` as
// `node cli/launch.mjs cli/X.ts …`, without npm's banner), as root or as
// `nobody`. Outputs are compared after normalising what differs from run to
// run: PIDs, container ids, times and dates, the repository's path (shown as
// /home/you/containers-from-scratch-ts) and the machine's name (shown as vm).
// A line `…` (or `   … (what was left out)`) in the document stands for any
// number of lines. `npm run transcripts` checks every block;
// `npm run transcripts -- --write` rewrites the blocks that differ.
import { spawn } from 'node:child_process';
import { unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/paths.js';
import { cgroupLayout } from '../lib/container/cgroups.js';
import { giveCopyTo, inCopies } from './mistakes.js';

/** How the repository's folder is shown in WORKSHOP.md, wherever it really is. */
export const SHOWN_REPO = '/home/you/containers-from-scratch-ts';
/** How the machine's name is shown. */
export const SHOWN_HOST = 'vm';

export interface Block {
  kind: 'transcript' | 'mistake' | 'unchecked' | 'unmarked';
  /** 0-based line of the opening fence in the document. */
  fence: number;
  /** The lines between the fences. */
  lines: string[];
  /** Indentation of the fences (blocks inside list items). */
  indent: string;
  options: Record<string, string>;
  /** For a mistake block. */
  mistake?: string;
}

const MARKER = /^\s*<!--\s*(transcript|mistake|unchecked)(?::\s*(.*?))?\s*-->\s*$/;

/** The fenced blocks of a markdown document that quote output (no language, or `text`), with their markers. */
export function parseBlocks(markdown: string): Block[] {
  const all = markdown.split('\n');
  const blocks: Block[] = [];
  for (let index = 0; index < all.length; index++) {
    const open = /^(\s*)```(\w*)\s*$/.exec(all[index]!);
    if (!open) continue;
    const [, indent = '', language = ''] = open;
    let end = index + 1;
    while (end < all.length && all[end]!.trim() !== '```') end++;
    const lines = all.slice(index + 1, end).map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line));
    if (language === '' || language === 'text') {
      const marker = MARKER.exec(all[index - 1] ?? '');
      const block: Block = { kind: 'unmarked', fence: index, lines, indent, options: {} };
      if (marker) {
        block.kind = marker[1] as Block['kind'];
        if (block.kind === 'mistake') block.mistake = marker[2]?.trim();
        else if (block.kind === 'transcript' && marker[2]) {
          for (const part of marker[2].split(';')) {
            const [key, ...value] = part.split('=');
            if (key?.trim()) block.options[key.trim()] = value.join('=').trim();
          }
        } else if (block.kind === 'unchecked') block.options.why = marker[2] ?? '';
      }
      blocks.push(block);
    }
    index = end;
  }
  return blocks;
}

// ── Normalising ───────────────────────────────────────────────────────────────

const ANSI = /\x1b\[[0-9;]*m/g;

/** What a reader of the document sees: colours gone, the copy's and the repository's paths and the machine's name replaced. */
export function presentable(text: string, copy: string): string {
  let out = text.replace(ANSI, '');
  for (const path of [copy, REPO_ROOT]) out = out.split(path).join(SHOWN_REPO);
  const machine = hostname();
  if (machine !== SHOWN_HOST) out = out.replace(new RegExp(`\\b${machine.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`, 'g'), SHOWN_HOST);
  return out;
}

/** Lines as compared: what changes from run to run replaced by placeholders. */
export function normalized(lines: string[], compare = 'exact'): string[] {
  const pids = new Set<string>();
  for (const line of lines) {
    const trace = /^(?:parent|child)\s+(\d+) │/.exec(line);
    if (trace && trace[1] !== '1') pids.add(trace[1]!);
    const spawned = /→ pid (\d+)/.exec(line);
    if (spawned) pids.add(spawned[1]!);
  }
  return lines.map((original) => {
    let line = original
      .replace(/\bcfs-\d+-[0-9a-f]+\b/g, 'cfs-ID')
      .replace(/\bcfs-(written|keep|host-only)-[0-9a-f]+\b/g, 'cfs-$1-X')
      .replace(/^(parent|child)\s+\d+ │/, '$1 N │')
      .replace(/got "\d+\\n"/g, 'got "N\\n"')
      .replace(/→ pid \d+/g, '→ pid N')
      .replace(/copied, [\d.]+ s, [\d.]+ [kMGT]?B\/s/, 'copied, T s, R')
      .replace(/checked [^;()]*?\d{1,2}:\d\d(:\d\d)?( ?[AP]M)?/g, 'checked DATE')
      .replace(/^(\s*)\d+( \?\s+)\d\d:\d\d:\d\d /, '$1N$2T ')
      .replace(/^\d+:(\w*:)/, 'N:$1')
      .replace(/(socket\([^)]*\) = )\d+/, '$1FD')
      .replace(/\b(ioctl|close)\(\d+/g, '$1(FD')
      .replace(/(rootfs\/: )\d+ programs, \d+ libraries; \d+ files copied \(\d+ unchanged\)/, '$1N programs')
      .replace(/\s+$/, '');
    for (const pid of pids) line = line.replace(new RegExp(`\\b${pid}\\b`, 'g'), 'N');
    if (compare === 'names') line = line.trim().split(/\s+/).slice(0, 2).join(' ');
    return line;
  });
}

/** Is this document line an elision (`…`, or `… (what was left out)`)? */
export function isElision(line: string): boolean {
  return /^\s*…(\s.*)?$/.test(line);
}

/**
 * Do the document's lines match the actual ones? Elisions match any number
 * of lines. Returns the actual line each document line matched (for
 * rewriting), or undefined.
 */
export function match(documented: string[], actual: string[], compare = 'exact'): number[] | undefined {
  const doc = normalized(documented, compare);
  const real = normalized(actual, compare);
  const memo = new Map<string, number[] | undefined>();
  const walk = (d: number, a: number): number[] | undefined => {
    const key = `${d},${a}`;
    if (memo.has(key)) return memo.get(key);
    let found: number[] | undefined;
    if (d === doc.length) found = a === real.length ? [] : undefined;
    else if (isElision(documented[d]!)) {
      for (let skip = a; skip <= real.length && !found; skip++) {
        const rest = walk(d + 1, skip);
        if (rest) found = [a, ...rest];
      }
    } else if (a < real.length && doc[d] === real[a]) {
      const rest = walk(d + 1, a + 1);
      if (rest) found = [a, ...rest];
    }
    memo.set(key, found);
    return found;
  };
  return walk(0, 0);
}

// ── Running a transcript ──────────────────────────────────────────────────────

/** `npm run X [--] args` as the workshop runs it, without npm (and its banner). */
const NPM = `npm() {
  [ "$1" = run ] || { echo "npm $1: only npm run is supported here" >&2; return 127; }
  shift; script=$1; shift; dashes=
  for arg do
    shift
    if [ -z "$dashes" ] && [ "$arg" = "--" ]; then dashes=1; continue; fi
    set -- "$@" "$arg"
  done
  node cli/launch.mjs "cli/$script.ts" "$@"
}`;

const MARK = '@@transcript';

/** The commands of a transcript block: its `$ ` lines. */
export function commandsOf(block: Block): string[] {
  return block.lines.filter((line) => line.startsWith('$ ')).map((line) => line.slice(2));
}

/** Can this machine produce the block? A reason when it cannot. */
export function unmetNeed(block: Block): string | undefined {
  const need = block.options.needs;
  if (!need) return undefined;
  if (need === 'cgroup-v1' || need === 'cgroup-v2') {
    try {
      const version = cgroupLayout().version;
      return `cgroup-v${version}` === need ? undefined : `this machine has cgroup v${version}, the block shows ${need}`;
    } catch {
      return `this machine has no usable cgroups, the block shows ${need}`;
    }
  }
  if (need === 'root') return process.getuid?.() === 0 ? undefined : 'needs root';
  return undefined;
}

/** Run the block's commands in `copy` (a fresh or reset copy of the repository); its output as the document would show it. */
export async function runTranscript(block: Block, copy: string): Promise<string[]> {
  {
    const asNobody = block.options.as === 'nobody';
    if (block.options.rootfs === 'fresh') unlinkSync(join(copy, 'rootfs')); // build a rootfs of its own
    if (asNobody) giveCopyTo(copy, 65534, 65534);
    const commands = commandsOf(block);
    const script = [
      NPM,
      ...(block.options.setup ? block.options.setup.split('&&').map((command) => `${command.trim()} >/dev/null 2>&1`) : []),
      '__s=0',
      ...commands.map((command, index) => `printf '\\n${MARK} ${index}\\n'; (exit $__s); ${command} 2>&1; __s=$?`),
      `printf '\\n${MARK} end\\n'`,
    ].join('\n');
    const argv = asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', script] : ['sh', '-c', script];
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), {
        cwd: copy,
        env: { ...process.env, FORCE_COLOR: '0', ...(asNobody ? { HOME: '/tmp' } : {}) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let text = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('error', reject);
      child.on('close', () => {
        clearTimeout(timer);
        resolve(text);
      });
    });
    const lines: string[] = [];
    const parts = output.split(new RegExp(`\\n${MARK} (\\d+|end)\\n`));
    for (let index = 0; index < commands.length; index++) {
      lines.push(`$ ${commands[index]}`);
      const text = parts[2 * index + 2] ?? '';
      if (text !== '') lines.push(...presentable(text, copy).replace(/\n$/, '').split('\n'));
    }
    if (asNobody) giveCopyTo(copy, 0, 0);
    return lines;
  }
}

/** A block's lines rewritten to the actual output: kept as written where they match, else the actual output in full. */
export function rewritten(block: Block, actual: string[]): string[] {
  const compare = block.options.compare ?? 'exact';
  return match(block.lines, actual, compare) ? block.lines : actual;
}

/** Replace the blocks' lines in the document (blocks given with their new lines). */
export function replaceBlocks(markdown: string, replacements: { block: Block; lines: string[] }[]): string {
  const all = markdown.split('\n');
  for (const { block, lines } of [...replacements].sort((a, b) => b.block.fence - a.block.fence)) {
    const end = block.fence + 1 + block.lines.length;
    all.splice(block.fence + 1, end - block.fence - 1, ...lines.map((line) => (line === '' ? '' : block.indent + line)));
  }
  return all.join('\n');
}

// ── A whole document ──────────────────────────────────────────────────────────

export interface BlockReport {
  block: Block;
  /** 1-based line of the opening fence, for messages. */
  line: number;
  ok: boolean;
  /** Why it was not compared, when it was not. */
  skipped?: string;
  actual?: string[];
  problem?: string;
}

/**
 * Compare every quoted output of `markdown` with the real thing. Mistake
 * blocks are compared with `mistakeOutputs` (id → output as shown), when given.
 */
export async function checkTranscripts(
  markdown: string,
  { concurrency = 2, mistakeOutputs, only }: { concurrency?: number; mistakeOutputs?: Map<string, string[]>; only?: 'transcript' | 'mistake' } = {},
): Promise<BlockReport[]> {
  const blocks = parseBlocks(markdown).filter((block) => !only || block.kind === only || block.kind === 'unmarked');
  const reports: BlockReport[] = [];
  const transcripts = blocks.filter((block) => block.kind === 'transcript' && !unmetNeed(block));
  const outputs = await inCopies(transcripts, concurrency, runTranscript);
  const results = new Map(transcripts.map((block, index) => [block, outputs[index]!]));
  for (const block of blocks) {
    const line = block.fence + 1;
    if (block.kind === 'unmarked') {
      reports.push({ block, line, ok: false, problem: 'an output block without a marker: add <!-- transcript -->, <!-- mistake: id --> or <!-- unchecked: why --> above it' });
    } else if (block.kind === 'unchecked') {
      reports.push({ block, line, ok: true, skipped: block.options.why || 'unchecked' });
    } else if (block.kind === 'transcript') {
      const need = unmetNeed(block);
      if (need) {
        reports.push({ block, line, ok: true, skipped: need });
        continue;
      }
      const actual = results.get(block)!;
      const ok = match(block.lines, actual, block.options.compare) !== undefined;
      reports.push({ block, line, ok, actual, problem: ok ? undefined : 'the commands print something else now' });
    } else {
      const actual = block.mistake ? mistakeOutputs?.get(block.mistake) : undefined;
      if (!actual) {
        reports.push({ block, line, ok: mistakeOutputs === undefined, skipped: mistakeOutputs === undefined ? 'mistakes not run' : undefined, problem: `no mistake ${block.mistake} in the catalogue` });
        continue;
      }
      const ok = match(block.lines, actual) !== undefined;
      reports.push({ block, line, ok, actual, problem: ok ? undefined : `\`npm run check\` on the mistake ${block.mistake} prints something else now` });
    }
  }
  return reports;
}

/** A short diff for a message: the document's lines, then the actual ones. */
export function describeMismatch(report: BlockReport): string {
  const documented = report.block.lines.map((line) => `  - ${line}`).slice(0, 40);
  const actual = (report.actual ?? []).map((line) => `  + ${line}`).slice(0, 40);
  return [`WORKSHOP.md:${report.line}: ${report.problem}`, ...documented, ...actual].join('\n');
}
