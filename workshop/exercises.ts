// Exercises are derived from the solutions, never maintained by hand twice.
//
// In solutions/0N-*.ts, what step N adds is marked like this:
//
//     // TODO(step 3): also create a PID namespace, so that the child is PID 1 in it.
//     // hint: unshare() takes several CLONE_NEW* flags OR-ed together with |.
//     // hint: unshare(CLONE_NEWUTS | CLONE_NEWPID) — ...   (more specific hints follow)
//     //>> unshare(CLONE_NEWUTS);                            (exercise-only code, optional)
//     unshare(CLONE_NEWUTS | CLONE_NEWPID);                 (the solution's code)
//     // END TODO
//
// The exercise keeps the TODO line and the first hint, puts the `//>>` lines
// in place of the solution's code (so it still runs, like the previous step),
// and drops the rest. The solution, shown without the markers, is plain code.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { REPO_ROOT } from '../lib/paths.js';
import { solutionFile, type Step } from './steps.js';

const TODO = /^(\s*)\/\/ TODO\(step (\d+)\): (.*)$/;
const HINT = /^\s*\/\/ hint: (.*)$/;
const PLACEHOLDER = /^(\s*)\/\/>> ?(.*)$/;
const END = /^\s*\/\/ END TODO\s*$/;

export interface Todo {
  step: number;
  /** What to do, in one line. */
  task: string;
  /** From gentle to explicit. */
  hints: string[];
  /** 1-based line of the TODO in the solution file. */
  line: number;
}

interface Region extends Todo {
  indent: string;
  placeholder: string[];
  solution: string[];
}

type Part = { kind: 'code'; line: string } | { kind: 'region'; region: Region };

function parse(source: string, file: string): Part[] {
  const parts: Part[] = [];
  const lines = source.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] ?? '';
    const todo = TODO.exec(line);
    if (!todo) {
      if (END.test(line)) throw new Error(`${file}:${index + 1}: END TODO without a TODO(step N) before it`);
      parts.push({ kind: 'code', line });
      continue;
    }
    const region: Region = { indent: todo[1] ?? '', step: Number(todo[2]), task: todo[3] ?? '', hints: [], line: index + 1, placeholder: [], solution: [] };
    for (index++; ; index++) {
      const inner = lines[index];
      if (inner === undefined) throw new Error(`${file}:${region.line}: TODO(step ${region.step}) has no END TODO`);
      if (END.test(inner)) break;
      const hint = HINT.exec(inner);
      const placeholder = PLACEHOLDER.exec(inner);
      if (hint) region.hints.push(hint[1] ?? '');
      else if (placeholder) region.placeholder.push(`${placeholder[1] ?? ''}${placeholder[2] ?? ''}`);
      else region.solution.push(inner);
    }
    parts.push({ kind: 'region', region });
  }
  return parts;
}

/** The exercise for `step`, generated from its solution's source. */
export function exerciseSource(solution: string, step: Step): string {
  const file = `solutions/${step.stem}.ts`;
  const out: string[] = [];
  let bannerDone = false;
  for (const part of parse(solution, file)) {
    if (part.kind === 'code') {
      out.push(part.line);
      // Right after the header comment: what to do with this file.
      if (part.line === ' */' && !bannerDone) {
        out.push(...exerciseBanner(step.number));
        bannerDone = true;
      }
    } else if (part.region.step !== step.number) {
      out.push(...part.region.solution);
    } else {
      const { indent, task, hints, placeholder } = part.region;
      out.push(`${indent}// TODO(step ${step.number}): ${task}`);
      if (hints[0]) out.push(`${indent}// hint: ${hints[0]}`);
      out.push(...placeholder);
    }
  }
  return out.join('\n');
}

function exerciseBanner(n: number): string[] {
  return [
    `// Your exercise: do the step ${n} TODOs below, then \`npm run check ${n}\`.`,
    `// Stuck? \`npm run hint ${n}\`. Start over: \`npm run reset ${n}\`.`,
  ];
}

/** The solution as plain code: markers, hints and exercise-only lines removed. */
export function plainSolution(solution: string): string {
  const out: string[] = [];
  for (const part of parse(solution, 'solution')) {
    if (part.kind === 'code') out.push(part.line);
    else out.push(...part.region.solution);
  }
  return out.join('\n');
}

/** The TODOs of `step`, with their hints, read from its solution. */
export function todosOf(step: Step): Todo[] {
  const file = solutionFile(step);
  return parse(readFileSync(file, 'utf8'), relative(REPO_ROOT, file)).flatMap((part) =>
    part.kind === 'region' && part.region.step === step.number ? [part.region] : [],
  );
}

/** The generated exercise for `step`, from the solution on disk. */
export function pristineExercise(step: Step): string {
  return exerciseSource(readFileSync(solutionFile(step), 'utf8'), step);
}

/**
 * Keep a copy of the participant's file before it is replaced (reset,
 * catch-up): .workshop/backups/<stem>.<time>.ts. Returns the backup's path.
 */
export function backUp(file: string, stem: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const backups = `${REPO_ROOT}/.workshop/backups`;
  mkdirSync(backups, { recursive: true });
  const backup = `${backups}/${stem}.${new Date().toISOString().replace(/[:.]/g, '-')}.ts`;
  copyFileSync(file, backup);
  return backup;
}
