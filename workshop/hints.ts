// Hints keyed to the failure: `npm run hint N` starts from the first check
// that failed in the last `npm run check N`, and climbs three levels —
// the concept (the check's own hint, which `check` already showed), the call
// (which function, with which flags, where), the code (the line itself). The
// call and code levels are the `// hint:` lines of the TODO the check is about,
// in solutions/ (the first of them is already in the exercise file, so it is
// never repeated).
import { CHECKS, type Check } from './checks.js';
import { todosOf, type Todo } from './exercises.js';
import { STEPS, type Step } from './steps.js';

export type HintLevel = 'concept' | 'call' | 'code';

export interface Hint {
  level: HintLevel;
  text: string;
  /** The TODO (or check) it is about. */
  about: string;
}

/** The TODOs of `check`'s step that the check is about. */
export function todosOfCheck(check: Check): Todo[] {
  const step = STEPS.find((s) => s.number === check.step);
  if (!step) return [];
  const todos = todosOf(step);
  return check.todos.flatMap((key) => todos.filter((todo) => todo.task.toLowerCase().includes(key.toLowerCase())));
}

/** A TODO's hints beyond the one in the exercise file: [call?, code]. */
function deeperHints(todo: Todo): Hint[] {
  const rest = todo.hints.slice(1);
  if (rest.length === 0) return [];
  const code = rest[rest.length - 1]!;
  const calls = rest.slice(0, -1);
  return [...calls.map((text) => ({ level: 'call' as const, text, about: todo.task })), { level: 'code' as const, text: code, about: todo.task }];
}

/** The ladder for a failing check: its concept, then the calls, then the code of its TODOs. */
export function ladderForCheck(check: Check): Hint[] {
  const deeper = todosOfCheck(check).flatMap(deeperHints);
  return [
    { level: 'concept', text: check.hint, about: check.name },
    ...deeper.filter((hint) => hint.level === 'call'),
    ...deeper.filter((hint) => hint.level === 'code'),
  ];
}

/** Without a failing check: the step's TODOs, each past the hint its exercise file already shows. */
export function ladderForStep(step: Step): Hint[] {
  const deeper = todosOf(step).flatMap(deeperHints);
  return [...deeper.filter((hint) => hint.level === 'call'), ...deeper.filter((hint) => hint.level === 'code')];
}

export function checkNamed(name: string): Check | undefined {
  return CHECKS.find((check) => check.name === name);
}
