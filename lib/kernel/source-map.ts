// Stack traces that point at the .ts files, not at the compiled bundle.
//
// The workshop runs each step as one bundled .cjs file (workshop/compile.mjs),
// with its source map next to it (<bundle>.map). Nothing reads the map while
// things work; when an error is reported, its stack frames are mapped back
// to the TypeScript file, line and column the participant wrote.
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { REPO_ROOT } from '../paths.js';

export interface Frame {
  /** The function, when the stack names one. */
  name: string;
  /** Absolute path of the (original, when mapped) source file. */
  file: string;
  /** 1-based. */
  line: number;
  column: number;
  /** That line of the source, when the source map carries it. */
  sourceLine?: string;
}

const maps = new Map<string, { map: SourceMap; sources: string[]; contents: (string | null)[] } | undefined>();

function mapOf(bundle: string) {
  if (!maps.has(bundle)) {
    try {
      const payload = JSON.parse(readFileSync(`${bundle}.map`, 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      maps.set(bundle, { map: new SourceMap(payload as never), sources: payload.sources, contents: payload.sourcesContent ?? [] });
    } catch {
      maps.set(bundle, undefined);
    }
  }
  return maps.get(bundle);
}

/** Where a position of a bundle comes from (1-based in and out); the position itself when there is no map. */
export function originalFrame(frame: Frame): Frame {
  const entry = mapOf(frame.file);
  if (!entry) return frame;
  const found = entry.map.findEntry(frame.line - 1, frame.column - 1) as { originalSource?: string; originalLine?: number; originalColumn?: number };
  if (found.originalSource === undefined || found.originalLine === undefined) return frame;
  const index = entry.sources.indexOf(found.originalSource);
  const text = index >= 0 ? entry.contents[index] : null;
  return {
    name: frame.name,
    file: resolve(dirname(frame.file), found.originalSource),
    line: found.originalLine + 1,
    column: (found.originalColumn ?? 0) + 1,
    sourceLine: text?.split('\n')[found.originalLine],
  };
}

/** The frames of `error.stack` ("    at name (file:line:col)"), mapped to the sources. */
export function stackFrames(error: Error): Frame[] {
  const frames: Frame[] = [];
  for (const line of (error.stack ?? '').split('\n')) {
    const match = /^\s+at (?:(.*?) \()?(?:file:\/\/)?(\/[^():]+):(\d+):(\d+)\)?$/.exec(line);
    if (!match) continue;
    frames.push(originalFrame({ name: match[1] ?? '', file: match[2]!, line: Number(match[3]), column: Number(match[4]) }));
  }
  return frames;
}

/** A step file (steps/ or solutions/): code a participant (or an instructor) wrote. */
export function isStepFile(file: string): boolean {
  const path = relative(REPO_ROOT, file);
  return /^(steps|solutions)\/[^/]+\.ts$/.test(path);
}

/** The stack as text, with every frame at its .ts position (for --debug). */
export function mappedStack(error: Error): string {
  const header = (error.stack ?? String(error)).split('\n').filter((line) => !/^\s+at /.test(line));
  const frames = stackFrames(error).map((frame) => `    at ${frame.name ? `${frame.name} (` : ''}${relative(process.cwd(), frame.file) || frame.file}:${frame.line}:${frame.column}${frame.name ? ')' : ''}`);
  return [...header, ...frames].join('\n');
}
