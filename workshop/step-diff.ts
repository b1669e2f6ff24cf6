// What a step adds over the previous one, in the two forms the instructor
// projects: the compact view (only the code a step adds or changes, for
// `npm run diff N -- --compact` and the slides) and the side-by-side view of
// the whole file (the slides). Both are data here; cli/diff.ts colours them
// for the terminal and workshop/room/slides.ts turns them into HTML.
import chalk from 'chalk';
import { structuredPatch } from 'diff';
import { readFileSync } from 'node:fs';
import { plainSolution } from './exercises.js';
import { STEPS, solutionFile } from './steps.js';

/** The plain reference of step `number` (markers removed); empty before step 1. */
export function plainSolutionOf(number: number): string {
  const step = STEPS.find((s) => s.number === number);
  return step ? plainSolution(readFileSync(solutionFile(step), 'utf8')) : '';
}

/**
 * `source` without its comments (line and block), keeping strings and
 * template literals intact. Lines left empty by it are dropped, and so are
 * blank lines: what remains is the code, one statement per line as written.
 * (Regular-expression literals are not recognised; the step files have none.)
 */
export function codeLines(source: string): string[] {
  let out = '';
  let index = 0;
  // Each open template literal's `${` depth, innermost last.
  const templates: number[] = [];
  let braces = 0;
  while (index < source.length) {
    const char = source[index]!;
    const next = source[index + 1];
    const inTemplate = templates.length > 0 && templates[templates.length - 1] === braces;
    if (inTemplate) {
      if (char === '\\') {
        out += source.slice(index, index + 2);
        index += 2;
      } else if (char === '`') {
        templates.pop();
        out += char;
        index++;
      } else if (char === '$' && next === '{') {
        braces++;
        out += '${';
        index += 2;
      } else {
        out += char;
        index++;
      }
    } else if (char === '/' && next === '/') {
      while (index < source.length && source[index] !== '\n') index++;
    } else if (char === '/' && next === '*') {
      const end = source.indexOf('*/', index + 2);
      const comment = source.slice(index, end === -1 ? source.length : end + 2);
      out += '\n'.repeat(comment.split('\n').length - 1); // keep the line structure
      index += comment.length;
    } else if (char === '"' || char === "'") {
      let end = index + 1;
      while (end < source.length && source[end] !== char && source[end] !== '\n') end += source[end] === '\\' ? 2 : 1;
      out += source.slice(index, end + 1);
      index = end + 1;
    } else if (char === '`') {
      templates.push(braces);
      out += char;
      index++;
    } else {
      if (char === '{') braces++;
      if (char === '}') braces--;
      out += char;
      index++;
    }
  }
  return out
    .split('\n')
    .map((line) => line.trimEnd())
    .filter((line) => line.trim() !== '');
}

/** The names each module is imported for: { "../lib/kernel/libc.js": ["execvp", "unshare"] }. */
export function importedNames(lines: readonly string[]): Map<string, string[]> {
  const names = new Map<string, string[]>();
  for (const match of lines.join('\n').matchAll(/^import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*'([^']+)';?/gm)) {
    const list = match[1]!.split(',').map((name) => name.trim()).filter(Boolean);
    names.set(match[2]!, [...(names.get(match[2]!) ?? []), ...list]);
  }
  return names;
}

/** The lines after the last import statement. */
function bodyOf(lines: readonly string[]): string[] {
  let end = 0;
  let inImport = false;
  lines.forEach((line, index) => {
    if (/^import\b/.test(line)) inImport = true;
    if (inImport && /;\s*$/.test(line)) {
      inImport = false;
      end = index + 1;
    }
  });
  return lines.slice(end);
}

export type DiffLineKind = 'add' | 'remove' | 'context';

export interface CompactHunk {
  /** The function or method the change is in: "child(container)". */
  where: string;
  lines: { kind: DiffLineKind; text: string }[];
}

export interface CompactDiff {
  /** Per module, the names the new step imports that the old one did not (and the reverse). */
  imports: { module: string; added: string[]; removed: string[] }[];
  hunks: CompactHunk[];
}

/** Where a body line is: the nearest function or method header above it, less indented. */
function enclosing(lines: readonly string[], index: number): string {
  const indent = (line: string): number => line.length - line.trimStart().length;
  const own = indent(lines[index] ?? '');
  for (let i = index - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (indent(line) >= own) continue;
    const header = /^\s*(?:export\s+)?(?:async\s+)?(?:function\s+)?([A-Za-z_$][\w$]*)\s*\(([^)]*)\)[^{]*\{\s*$/.exec(line);
    if (header && !['if', 'for', 'while', 'switch', 'catch'].includes(header[1]!)) return `${header[1]}(${header[2]})`;
  }
  return 'top level';
}

/**
 * Only the code a step adds or changes: comments, blank lines and the header
 * left out; new imports as one list per module; each change with one line of
 * context and the function it is in.
 */
export function compactDiff(oldSource: string, newSource: string): CompactDiff {
  const oldLines = codeLines(oldSource);
  const newLines = codeLines(newSource);
  const oldImports = importedNames(oldLines);
  const newImports = importedNames(newLines);
  const imports = [...new Set([...newImports.keys(), ...oldImports.keys()])]
    .map((module) => {
      const before = oldImports.get(module) ?? [];
      const after = newImports.get(module) ?? [];
      return { module, added: after.filter((name) => !before.includes(name)), removed: before.filter((name) => !after.includes(name)) };
    })
    .filter((entry) => entry.added.length > 0 || entry.removed.length > 0);
  const oldBody = bodyOf(oldLines);
  const newBody = bodyOf(newLines);
  const text = (lines: string[]): string => lines.map((line) => `${line}\n`).join('');
  const patch = structuredPatch('old', 'new', text(oldBody), text(newBody), '', '', { context: 1 });
  const hunks = patch.hunks.map((hunk) => {
    const lines = hunk.lines
      .filter((line) => !line.startsWith('\\'))
      .map((line) => ({ kind: (line[0] === '+' ? 'add' : line[0] === '-' ? 'remove' : 'context') as DiffLineKind, text: line.slice(1) }));
    const firstChange = lines.findIndex((line) => line.kind !== 'context');
    // The first changed line's place in the new body (a removal: where it was).
    const newIndex = hunk.newStart - 1 + lines.slice(0, Math.max(firstChange, 0)).filter((line) => line.kind === 'context').length;
    const where = enclosing(newBody, Math.min(newIndex, newBody.length - 1));
    return { where, lines };
  });
  return { imports, hunks };
}

export interface SideBySideRow {
  kind: 'same' | 'change' | 'add' | 'remove' | 'gap';
  left?: { number: number; text: string };
  right?: { number: number; text: string };
}

/** The whole file's diff as rows of (old line | new line), with three lines of context around changes. */
export function sideBySide(oldSource: string, newSource: string): SideBySideRow[] {
  const patch = structuredPatch('old', 'new', oldSource, newSource, '', '', { context: 3 });
  const rows: SideBySideRow[] = [];
  for (const hunk of patch.hunks) {
    if (rows.length > 0 || hunk.oldStart > 1) rows.push({ kind: 'gap' });
    let oldNumber = hunk.oldStart;
    let newNumber = hunk.newStart;
    const lines = hunk.lines.filter((line) => !line.startsWith('\\'));
    for (let i = 0; i < lines.length; ) {
      if (lines[i]![0] === ' ') {
        const text = lines[i]!.slice(1);
        rows.push({ kind: 'same', left: { number: oldNumber++, text }, right: { number: newNumber++, text } });
        i++;
        continue;
      }
      // A block of removals followed by additions: pair them up, line by line.
      const removed: string[] = [];
      const added: string[] = [];
      while (i < lines.length && lines[i]![0] === '-') removed.push(lines[i++]!.slice(1));
      while (i < lines.length && lines[i]![0] === '+') added.push(lines[i++]!.slice(1));
      for (let k = 0; k < Math.max(removed.length, added.length); k++) {
        const left = k < removed.length ? { number: oldNumber++, text: removed[k]! } : undefined;
        const right = k < added.length ? { number: newNumber++, text: added[k]! } : undefined;
        rows.push({ kind: left && right ? 'change' : left ? 'remove' : 'add', ...(left ? { left } : {}), ...(right ? { right } : {}) });
      }
    }
  }
  return rows;
}

/** The compact view's width: a projector terminal. */
export const COMPACT_WIDTH = 100;

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/** `names` as import lines of at most `width` columns. */
function importLines(sign: string, module: string, names: string[], width: number): string[] {
  const lines: string[] = [];
  let line = `${sign} import { `;
  for (const [index, name] of names.entries()) {
    const piece = `${name}${index < names.length - 1 ? ', ' : ` } from '${module}'`}`;
    if (line.length + piece.length > width && line.trim() !== `${sign} import {`) {
      lines.push(line.trimEnd());
      line = `${sign}          `;
    }
    line += piece;
  }
  lines.push(line);
  return lines;
}

/** The compact diff for a terminal: one line per added/changed code line, coloured. */
export function renderCompact(title: string, diff: CompactDiff, width = COMPACT_WIDTH): string {
  if (diff.imports.length === 0 && diff.hunks.length === 0) return chalk.dim(`${title}: no code changes.`);
  const out = [chalk.bold(cut(title, width))];
  for (const { module, added, removed } of diff.imports) {
    if (added.length > 0) out.push(...importLines('+', module, added, width).map((line) => chalk.green(line)));
    if (removed.length > 0) out.push(...importLines('-', module, removed, width).map((line) => chalk.red(line)));
  }
  for (const hunk of diff.hunks) {
    out.push(chalk.cyan(`@ ${hunk.where}`));
    const indent = Math.min(...hunk.lines.map((line) => line.text.length - line.text.trimStart().length));
    for (const { kind, text } of hunk.lines) {
      const line = cut(`${kind === 'add' ? '+' : kind === 'remove' ? '-' : ' '}   ${text.slice(indent)}`, width);
      out.push(kind === 'add' ? chalk.green(line) : kind === 'remove' ? chalk.red(line) : chalk.dim(line));
    }
  }
  return out.join('\n');
}
