// Type-checking the participant's file before anything runs it, with
// TypeScript 7 (the native compiler, npm package `typescript` 7.x): about a
// quarter of a second for a step file and what it imports. A result is kept
// next to the bundle, keyed by the content of every input, so an unchanged
// file is never checked twice.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { REPO_ROOT } from '../lib/paths.js';
import { bundleInputs } from './compile.mjs';

/** One problem in a source file; line and column are 1-based. */
export interface SourceDiagnostic {
  file: string;
  line: number;
  column: number;
  length: number;
  message: string;
  /** e.g. "TS2345"; empty for syntax errors found by the bundler. */
  code: string;
}

/** The native `tsc` of typescript@7 for this platform (an optional dependency), or undefined. */
export function nativeTsc(): string | undefined {
  const require = createRequire(`${REPO_ROOT}/package.json`);
  try {
    const manifest = require.resolve(`@typescript/typescript-${process.platform}-${process.arch}/package.json`);
    const binary = join(dirname(manifest), 'lib', 'tsc');
    return existsSync(binary) ? binary : undefined;
  } catch {
    return undefined;
  }
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** `file(12,5): error TS2554: Expected 2 arguments, but got 1.` and its indented continuation lines. */
export function parseTscOutput(output: string, cwd: string): SourceDiagnostic[] {
  const diagnostics: SourceDiagnostic[] = [];
  for (const line of output.split('\n')) {
    const match = /^(.+?)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(line);
    if (match) {
      diagnostics.push({ file: resolve(cwd, match[1]!), line: Number(match[2]), column: Number(match[3]), length: 1, code: match[4]!, message: match[5]! });
    } else if (/^error (TS\d+): (.*)$/.test(line)) {
      const [, code = '', message = ''] = /^error (TS\d+): (.*)$/.exec(line) ?? [];
      diagnostics.push({ file: '', line: 0, column: 0, length: 1, code, message });
    } else if (/^\s+\S/.test(line) && diagnostics.length > 0) {
      diagnostics[diagnostics.length - 1]!.message += `\n${line.trim()}`;
    }
  }
  return diagnostics;
}

/** How long an identifier or token at `column` is, for the caret line (at least 1). */
function tokenLength(file: string, line: number, column: number): number {
  try {
    const text = readFileSync(file, 'utf8').split('\n')[line - 1] ?? '';
    const rest = text.slice(column - 1);
    const token = /^[\w$.[\]]+/.exec(rest)?.[0] ?? '';
    return Math.max(1, token.length);
  } catch {
    return 1;
  }
}

/**
 * Type-check `entry` (already bundled as `bundle`, whose manifest lists every
 * input): its errors, or [] when it is fine; undefined when TypeScript 7 is
 * not installed for this platform (then only the bundler's syntax check ran).
 */
export async function typecheck(entry: string, bundle: string): Promise<SourceDiagnostic[] | undefined> {
  const tsc = nativeTsc();
  if (!tsc) return undefined;
  const tsconfig = readFileSync(`${REPO_ROOT}/tsconfig.json`, 'utf8');
  const inputs = bundleInputs(bundle);
  const key = hash(JSON.stringify({ entry, inputs, tsconfig, tsc }));
  const cached = `${bundle.replace(/\.cjs$/, '')}.types.json`;
  try {
    // CFS_TYPECHECK_CACHE=off: check every time, as after an edit (npm run bench measures that).
    const previous = JSON.parse(readFileSync(cached, 'utf8')) as { key: string; diagnostics: SourceDiagnostic[] };
    if (previous.key === key && process.env.CFS_TYPECHECK_CACHE !== 'off') return previous.diagnostics;
  } catch {
    // not checked yet
  }
  // The repository's settings, for this one file (and what it imports) only.
  // lib: ES2022 alone (no DOM) halves the time: a step file runs in Node.
  const config = `${bundle.replace(/\.cjs$/, '')}.tsconfig.json`;
  writeFileSync(
    config,
    JSON.stringify({
      extends: `${REPO_ROOT}/tsconfig.json`,
      compilerOptions: { typeRoots: [`${REPO_ROOT}/node_modules/@types`], lib: ['ES2022'], noEmit: true },
      files: [resolve(entry)],
      include: [],
    }),
  );
  const output = await new Promise<string>((resolveOutput, reject) => {
    // One thread: on a busy machine (a room of laptops, a test suite) it takes less CPU, and no longer.
    execFile(tsc, ['-p', config, '--pretty', 'false', '--singleThreaded'], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      // Exit status 1 or 2: errors were found (they are on stdout).
      if (error && typeof error.code !== 'number') reject(error);
      else resolveOutput(stdout + stderr);
    });
  });
  const diagnostics = parseTscOutput(output, REPO_ROOT).map((d) => (d.file ? { ...d, length: tokenLength(d.file, d.line, d.column) } : d));
  const temporary = `${cached}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify({ key, diagnostics }));
  renameSync(temporary, cached);
  return diagnostics;
}
