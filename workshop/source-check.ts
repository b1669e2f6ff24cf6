// The participant's file first: before any container runs it, `check`,
// `step` and `watch` bundle it (syntax) and type-check it (TypeScript 7). A
// mistake in it is shown once, as the participant's own, with file:line:col,
// the line and a caret under the spot — and nothing runs.
import chalk from 'chalk';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { compile } from './compile.mjs';
import { typecheck, type SourceDiagnostic } from './typecheck.js';

export type Prepared =
  | { ok: true; bundle: string; typeChecked: boolean }
  | { ok: false; kind: 'syntax' | 'type'; diagnostics: SourceDiagnostic[] };

interface CompileFailure {
  name: 'CompileError';
  diagnostics: SourceDiagnostic[];
}

function isCompileFailure(error: unknown): error is CompileFailure {
  return (error as { name?: string } | null)?.name === 'CompileError' && Array.isArray((error as CompileFailure).diagnostics);
}

/** Bundle and type-check `file`: its bundle, or the mistakes in it. */
export async function prepareFile(file: string): Promise<Prepared> {
  let bundle: string;
  try {
    bundle = await compile(file);
  } catch (error) {
    if (isCompileFailure(error)) return { ok: false, kind: 'syntax', diagnostics: error.diagnostics.map((d) => ({ ...d, code: '' })) };
    throw error;
  }
  const diagnostics = await typecheck(file, bundle);
  if (diagnostics && diagnostics.length > 0) return { ok: false, kind: 'type', diagnostics };
  return { ok: true, bundle, typeChecked: diagnostics !== undefined };
}

function sourceLine(file: string, line: number): string | undefined {
  try {
    return readFileSync(file, 'utf8').split('\n')[line - 1];
  } catch {
    return undefined;
  }
}

/**
 * The mistakes as a participant reads them: at most `max` of them, each as
 * `file:line:col — message`, the line, and a caret under the spot. The first
 * is the one to fix first (later ones are often its consequences).
 */
export function renderDiagnostics(diagnostics: SourceDiagnostic[], { cwd = process.cwd(), max = 2 } = {}): string[] {
  const out: string[] = [];
  for (const d of diagnostics.slice(0, max)) {
    const where = d.file ? `${relative(cwd, d.file) || d.file}:${d.line}:${d.column}` : 'tsconfig';
    const [first = '', ...more] = d.message.split('\n');
    out.push(`${chalk.red.bold('✗')} ${chalk.bold(where)} — ${first}${d.code ? chalk.dim(` (${d.code})`) : ''}`);
    for (const line of more.slice(0, 2)) out.push(`    ${line}`);
    const text = d.file ? sourceLine(d.file, d.line) : undefined;
    if (text !== undefined) {
      const number = String(d.line);
      const visible = text.replace(/\t/g, ' ');
      out.push(chalk.dim(`  ${number} │ `) + visible.slice(0, 160));
      out.push(chalk.dim(`  ${' '.repeat(number.length)} │ `) + ' '.repeat(Math.max(0, d.column - 1)) + chalk.red('^'.repeat(Math.min(d.length, 60))));
    }
  }
  if (diagnostics.length > max) {
    out.push(chalk.dim(`  (${diagnostics.length - max} more after ${max === 1 ? 'this one' : 'these'}: fix the first one first, the rest often follow from it)`));
  }
  return out;
}

/** One line saying what kind of mistake it is, for the line above the diagnostics. */
export function mistakeKind(prepared: Extract<Prepared, { ok: false }>, file: string): string {
  return prepared.kind === 'syntax'
    ? `${file} does not compile: a syntax error, so nothing can run it yet.`
    : `${file} has a type error: TypeScript found a call or value that cannot work, so nothing runs it yet.`;
}
