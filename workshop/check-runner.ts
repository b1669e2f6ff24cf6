// `npm run check N` (and `npm run watch N`): the participant's file first,
// then the checks, reported the workshop way — one failure, one message, on
// one screen (at most 30 lines):
//
//   1. the file does not compile or type-check: that error, once, with
//      file:line:col, the line and a caret; no container runs;
//   2. the step changed the host (in its sandbox): what it did and why;
//   3. the container did not start: the runtime's own explanation, once;
//   4. else one line per check of this step (earlier steps' passing checks
//      on one line), the first failure in detail with its concept-level hint.
import chalk from 'chalk';
import { relative } from 'node:path';
import { CheckFailure, NotStarted, checksUpTo, makeContext, type Check } from './checks.js';
import { reproduceCommand, runtimeFile, type RunResult, type Target } from './harness.js';
import { REPO_ROOT } from '../lib/paths.js';
import { fileHash, stepProgress, updateState, type CheckRecord } from './progress.js';
import { mistakeKind, prepareFile, renderDiagnostics } from './source-check.js';
import { startCause } from './diagnoses.js';
import { sandboxAvailable } from './sandbox.js';
import { STEPS, type Step } from './steps.js';
import { reportToRoom, type CheckResult } from './room/client.js';

/** A failing check's report never grows past one screen. */
export const MAX_LINES = 30;

interface Outcome {
  check: Check;
  error?: unknown;
}

export function progressBar(): string {
  const done = stepProgress().filter((progress) => progress.status === 'done').length;
  const width = 24;
  const filled = Math.round((done / STEPS.length) * width);
  return `${chalk.green('█'.repeat(filled))}${chalk.dim('░'.repeat(width - filled))} ${done}/${STEPS.length} steps done`;
}

function indent(lines: string[], prefix: string): string[] {
  return lines.flatMap((line) => line.split('\n')).map((line) => prefix + line);
}

/** The useful part of a runtime's stderr: no blank lines, no "(add --debug …)", at most `max` lines. */
function stderrLines(stderr: string, max: number, cut = true): string[] {
  const useful = stderr
    .split('\n')
    .map((line) => line.replace(/\s+$/, ''))
    .filter((line) => line.trim() !== '' && !/^\s*\(add --debug/.test(line) && !line.startsWith('@@cfs'))
    .map((line) => (cut && line.length > 160 ? `${line.slice(0, 159)}…` : line));
  return useful.length > max ? [...useful.slice(0, max - 1), `… (${useful.length - max + 1} more lines)`] : useful;
}

function label(check: Check): string {
  return `${chalk.dim(`[step ${check.step}]`)} ${check.name}`;
}

function failureDetail(error: unknown): { detail: string[]; result?: RunResult } {
  if (error instanceof CheckFailure) return { detail: error.detail, result: error.result };
  return { detail: [`the check itself failed: ${error instanceof Error ? error.message : String(error)}`] };
}

/** Check `step` (and the steps before it); print the report; true when everything passed. */
export async function checkStep(step: Step, target: Target = 'steps'): Promise<boolean> {
  const file = runtimeFile(step, target);
  const shown = relative(process.cwd(), file) || relative(REPO_ROOT, file);
  const out: string[] = [chalk.bold(`Checking step ${step.number} — ${step.title}`) + chalk.dim(` (${shown})`)];
  const record: CheckRecord = { status: 'failing', when: new Date().toISOString(), fileHash: fileHash(file) };

  // 1. The participant's file first.
  const prepared = await prepareFile(file);
  if (!prepared.ok) {
    out.push(chalk.red(mistakeKind(prepared, shown)), ...renderDiagnostics(prepared.diagnostics));
    const first = prepared.diagnostics[0];
    Object.assign(record, { kind: 'compile', failing: [], passedSteps: [], where: first?.file ? `${relative(REPO_ROOT, first.file)}:${first.line}:${first.column}` : shown });
    return finish(step, target, out, record, `Fix that line in ${shown}, then \`npm run check ${step.number}\` again. (No container was started.)`);
  }

  if (!prepared.typeChecked) out.push(chalk.dim('  (not type-checked: TypeScript 7 has no compiler for this platform here; only the syntax was checked)'));
  if (!sandboxAvailable(process.getuid?.() !== 0)) {
    out.push(chalk.dim("  (no sandbox: util-linux `unshare` is missing or refused, so the checks run on the host and watch its hostname and mounts instead)"));
  }

  // 2–4. The checks, all at once: they share the containers of one context.
  const checks = checksUpTo(step.number);
  const context = makeContext(step, target);
  const outcomes: Outcome[] = await Promise.all(
    checks.map((check) =>
      check.run(context).then(
        () => ({ check }),
        (error: unknown) => ({ check, error }),
      ),
    ),
  );
  const failed = outcomes.filter((o) => o.error !== undefined);
  // This step's failures first: the first one is shown in detail, and `npm run hint` starts from it.
  record.failing = [...failed.filter((o) => o.check.step === step.number), ...failed.filter((o) => o.check.step !== step.number)].map(({ check }) => ({ step: check.step, name: check.name }));
  record.passedSteps = STEPS.filter((s) => s.number <= step.number && outcomes.every((o) => o.check.step !== s.number || o.error === undefined)).map((s) => s.number);

  const damage = failed.filter((o) => o.error instanceof CheckFailure && o.error.damage);
  const notStarted = failed.find((o) => o.error instanceof NotStarted);
  if (damage.length > 0) {
    record.kind = 'damage';
    record.failing = damage.map(({ check }) => ({ step: check.step, name: check.name }));
    for (const { check, error } of damage) {
      const [title = '', ...explanation] = (error as CheckFailure).detail;
      out.push(`  ${chalk.red('✗')} ${label(check)}`);
      out.push(...indent([chalk.red.bold(title), ...explanation], '      '));
      out.push(chalk.yellow(`      hint: ${check.hint}`));
    }
  } else if (notStarted) {
    record.kind = 'start';
    const { result } = failureDetail(notStarted.error);
    const status = result?.signal ? `killed by ${result.signal}` : `exit status ${result?.status}`;
    out.push(`  ${chalk.red('✗')} The container did not run its command (${status}), so none of the ${checks.length} checks could run.`);
    const paragraph = result ? result.stderr.indexOf('✗') : -1;
    if (result && paragraph >= 0) {
      // The runtime explained it: its own paragraph, whose hint fits what the step did so far.
      out.push(...indent(stderrLines(result.stderr.slice(paragraph), 12, false), '      '));
    } else {
      const cause = result ? startCause(result) : undefined;
      if (cause) out.push(`      ${cause}`);
      const stderr = stderrLines(result?.stderr ?? '', cause ? 1 : 3);
      if (stderr.length > 0) out.push(`      stderr: ${stderr.join('\n              ')}`);
      out.push(chalk.yellow(`      hint: ${notStarted.check.hint}`));
    }
    out.push(chalk.dim(`      reproduce: ${reproduceCommand(step, target, ['true'])}`));
  } else {
    record.kind = failed.length === 0 ? 'passed' : 'checks';
    out.push(...checkLines(step, outcomes));
  }

  if (failed.length === 0) {
    record.status = 'done';
    const following = STEPS.find((s) => s.number === step.number + 1);
    const next = following ? `Next: step ${following.number}, ${following.title}: edit steps/${following.stem}.ts, then \`npm run check ${following.number}\`.` : 'That was the last step: you built a container runtime!';
    return finish(step, target, out, record, `${chalk.green.bold(`✓ Step ${step.number} done!`)} The reference is solutions/${step.stem}.ts (\`npm run diff ${step.number} -- --mine\` compares it with yours).\n${next}`, outcomes);
  }
  const count = record.kind === 'checks' ? `${failed.length} of ${outcomes.length} checks failed.` : `Step ${step.number} is not done.`;
  return finish(step, target, out, record, `${chalk.red.bold(`✗ ${count}`)} Fix ${shown}, then \`npm run check ${step.number}\` again (\`npm run hint ${step.number}\` helps).`, outcomes);
}

/**
 * One line per check of this step; earlier steps' checks on one line when
 * they all pass; the first failure in detail. Fits MAX_LINES with the header
 * and footer.
 */
function checkLines(step: Step, outcomes: Outcome[]): string[] {
  const out: string[] = [];
  const earlier = outcomes.filter((o) => o.check.step < step.number);
  const earlierPassed = earlier.filter((o) => o.error === undefined).length;
  if (earlier.length > 0) {
    const steps = step.number === 2 ? '[step 1]' : `[steps 1–${step.number - 1}]`;
    const all = earlierPassed === earlier.length ? `all ${earlier.length}` : `${earlierPassed} of ${earlier.length}`;
    out.push(`  ${earlierPassed === earlier.length ? chalk.green('✓') : chalk.red('✗')} ${chalk.dim(steps)} ${all} checks of the earlier steps pass`);
  }
  // Earlier steps: only their failures; this step: every check.
  const listed = outcomes.filter((o) => o.check.step === step.number || o.error !== undefined);
  // The failure shown in detail: this step's first (the step being worked on is the likeliest cause), else the first.
  const firstFailure = listed.find((o) => o.error !== undefined && o.check.step === step.number) ?? listed.find((o) => o.error !== undefined);
  // Room for the one-line checks: 30, minus the header, the detail block (≤ 9), a blank line, the summary (≤ 2) and the progress bar.
  let room = MAX_LINES - 1 - out.length - 14;
  let hidden = 0;
  for (const outcome of listed) {
    if (outcome !== firstFailure) {
      const mark = outcome.error === undefined ? chalk.green('✓') : chalk.red('✗');
      if (room-- > 0) out.push(`  ${mark} ${label(outcome.check)}`);
      else hidden++;
      continue;
    }
    out.push(`  ${chalk.red('✗')} ${label(outcome.check)}`);
    const { detail, result } = failureDetail(outcome.error);
    const block = [...detail.slice(0, 2)];
    if (result) {
      const stderr = stderrLines(result.stderr, 3);
      if (stderr.length > 0) block.push(`stderr: ${stderr.join('\n        ')}`);
      block.push(chalk.dim(`reproduce: ${result.reproduce}`));
    }
    out.push(...indent(block, '      '));
    out.push(chalk.yellow(`      hint: ${outcome.check.hint}`));
  }
  if (hidden > 0) out.push(chalk.dim(`  … and ${hidden} more checks`));
  return out;
}

/** What the room learns of this run: each check's name and pass/fail; a file that did not compile is one failing entry. */
function roomResult(step: Step, outcomes: Outcome[]): CheckResult {
  if (outcomes.length === 0) return { step: step.number, checks: [{ step: step.number, name: `steps/${step.stem}.ts compiles`, passed: false, error: Object.assign(new Error('does not compile'), { name: 'CompileError' }) }] };
  return { step: step.number, checks: outcomes.map(({ check, error }) => ({ step: check.step, name: check.name, passed: error === undefined, error })) };
}

async function finish(step: Step, target: Target, out: string[], record: CheckRecord, summary: string, outcomes: Outcome[] = []): Promise<boolean> {
  if (target === 'steps') {
    updateState((state) => {
      state.checks[step.number] = record;
    });
  }
  const footer = ['', ...summary.split('\n'), progressBar()];
  // One screen, whatever happened: the head of the report, then the footer.
  const body = out.length + footer.length > MAX_LINES ? [...out.slice(0, MAX_LINES - footer.length - 1), chalk.dim('  … (cut to fit one screen)')] : out;
  console.log([...body, ...footer].join('\n'));
  // The instructor's room, if this checkout joined one (npm run join): at most 300 ms, never an error.
  if (target === 'steps') await reportToRoom(roomResult(step, outcomes));
  return record.status === 'done';
}
