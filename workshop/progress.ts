// The participant's progress, kept in a small file that git ignores:
// what `npm run check` last found for each step, and how many hints were shown.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { REPO_ROOT } from '../lib/paths.js';

export const WORKSHOP_DIR = `${REPO_ROOT}/.workshop`;
const STATE_FILE = `${WORKSHOP_DIR}/state.json`;

export type CheckStatus = 'done' | 'failing';

export interface State {
  checks: Record<string, { status: CheckStatus; when: string }>;
  hintsShown: Record<string, number>;
}

export function readState(): State {
  try {
    const state = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as Partial<State>;
    return { checks: state.checks ?? {}, hintsShown: state.hintsShown ?? {} };
  } catch {
    return { checks: {}, hintsShown: {} };
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
