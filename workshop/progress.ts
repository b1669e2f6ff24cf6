// The participant's progress, kept in a small file that git ignores: what
// `npm run check` last found for each step, and where `npm run hint` is.
//
// Progress is what the checks say, nothing else: `check N` runs the checks of
// steps 1..N on step N's file, so passing all of step K's checks there counts
// for step K too (a participant who caught up by copying a solution into
// steps/, or skipped a step, is shown where the checks put them).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { REPO_ROOT } from '../lib/paths.js';
import { pristineExercise } from './exercises.js';
import { STEPS, exerciseFile, type Step } from './steps.js';

export const WORKSHOP_DIR = `${REPO_ROOT}/.workshop`;
const STATE_FILE = `${WORKSHOP_DIR}/state.json`;

export type CheckStatus = 'done' | 'failing';

/** What one `npm run check N` found. */
export interface CheckRecord {
  status: CheckStatus;
  when: string;
  /** What stopped it: the file did not compile, the step changed the host, the container did not start, or checks failed. */
  kind?: 'passed' | 'compile' | 'damage' | 'start' | 'checks';
  /** The steps all of whose checks passed in this run (1..N when it passed). */
  passedSteps?: number[];
  /** The failing checks, first failure first (what `npm run hint N` starts from). */
  failing?: { step: number; name: string }[];
  /** A hash of the file that was checked. */
  fileHash?: string;
  /** For a file that did not compile: where. */
  where?: string;
}

export interface State {
  checks: Record<string, CheckRecord>;
  /** Per step: the failing check the hints are about, and how many hints of it were shown. */
  hints: Record<string, { check: string; shown: number }>;
}

export function readState(): State {
  try {
    const state = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as Partial<State>;
    return { checks: state.checks ?? {}, hints: state.hints ?? {} };
  } catch {
    return { checks: {}, hints: {} };
  }
}

export function updateState(change: (state: State) => void): void {
  const state = readState();
  change(state);
  mkdirSync(WORKSHOP_DIR, { recursive: true });
  const temporary = `${STATE_FILE}.${process.pid}`;
  writeFileSync(temporary, JSON.stringify(state, null, 2) + '\n');
  renameSync(temporary, STATE_FILE);
}

export function fileHash(file: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16);
  } catch {
    return undefined;
  }
}

export type StepStatus = 'done' | 'failing' | 'todo';

export interface StepProgress {
  step: Step;
  status: StepStatus;
  /** Which check run says so: `check N` (N may be a later step). */
  by?: number;
  when?: string;
  /** The step's file changed since the check that judged it. */
  editedSince: boolean;
  /** Never checked, but the file is no longer the pristine exercise. */
  editedUnchecked: boolean;
}

/**
 * Every step's status, from the check records: done when some `check M`
 * (M ≥ N) passed all of step N's checks; failing when `check N` itself
 * failed last; else to do.
 */
export function stepProgress(state: State = readState()): StepProgress[] {
  return STEPS.map((step) => {
    const evidence = Object.entries(state.checks)
      .map(([number, record]) => ({ number: Number(number), record }))
      .filter(({ number, record }) => number >= step.number && (record.passedSteps ?? (record.status === 'done' ? [number] : [])).includes(step.number))
      .sort((a, b) => b.record.when.localeCompare(a.record.when))[0];
    const own = state.checks[step.number];
    const file = exerciseFile(step);
    const currentHash = fileHash(file);
    if (evidence) {
      const judged = state.checks[evidence.number]?.fileHash;
      const judgedFile = STEPS.find((s) => s.number === evidence.number);
      const editedSince = judged !== undefined && judgedFile !== undefined && fileHash(exerciseFile(judgedFile)) !== judged;
      return { step, status: 'done', by: evidence.number, when: evidence.record.when, editedSince, editedUnchecked: false };
    }
    if (own) return { step, status: 'failing', by: step.number, when: own.when, editedSince: own.fileHash !== undefined && own.fileHash !== currentHash, editedUnchecked: false };
    const edited = existsSync(file) && readFileSync(file, 'utf8') !== pristineExercise(step);
    return { step, status: 'todo', editedSince: false, editedUnchecked: edited };
  });
}
