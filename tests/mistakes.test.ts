// The mistake catalogue (workshop/mistakes.ts): classic mistakes of every
// step, each a small edit of the reference solution. For each, the real
// `npm run check N` (in a copy of the repository) must fail, name the cause,
// fit one screen, and leave the host untouched. The table is printed with
// the results; WORKSHOP.md's quotes of these outputs are compared here too.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { REPO_ROOT } from '../lib/paths.js';
import { MAX_LINES } from '../workshop/check-runner.js';
import { MISTAKES, runCatalogue, type MistakeOutcome } from '../workshop/mistakes.js';
import { checkTranscripts, describeMismatch, presentable } from '../workshop/transcripts.js';

describe('the mistake catalogue', () => {
  const outcomes = new Map<string, MistakeOutcome>();

  before(async () => {
    for (const outcome of await runCatalogue(MISTAKES, 2)) outcomes.set(outcome.mistake.id, outcome);
  });

  test(`has at least 30 mistakes, across steps 1–8`, () => {
    assert.ok(MISTAKES.length >= 30, `${MISTAKES.length} mistakes`);
    for (let step = 1; step <= 8; step++) assert.ok(MISTAKES.some((m) => m.step === step), `no mistake of step ${step}`);
    assert.equal(new Set(MISTAKES.map((m) => m.id)).size, MISTAKES.length, 'ids are unique');
  });

  for (const mistake of MISTAKES) {
    test(`step ${mistake.step}: ${mistake.title} (${mistake.id})`, () => {
      const outcome = outcomes.get(mistake.id)!;
      const shown = `\n--- npm run check ${mistake.step} said:\n${outcome.output}`;
      assert.ok(outcome.caught, `check ${mistake.step} passed the mistake (exit ${outcome.status})${shown}`);
      assert.ok(outcome.causeNamed, `the output does not name the cause (${mistake.cause})${shown}`);
      assert.ok(outcome.lines <= MAX_LINES, `${outcome.lines} lines, more than one screen${shown}`);
      assert.deepEqual(outcome.hostChanges, [], `the host changed${shown}`);
      assert.doesNotMatch(outcome.output, /bug in the workshop|unexpected error/, shown);
    });
  }

  test('the table', (t) => {
    const rows = MISTAKES.map((mistake) => {
      const o = outcomes.get(mistake.id)!;
      const yes = (ok: boolean) => (ok ? 'yes' : 'NO');
      return `| ${mistake.id} | ${mistake.step} | ${yes(o.caught)} | ${yes(o.causeNamed)} | ${o.lines} | ${yes(o.hostChanges.length === 0)} |`;
    });
    const table = ['| mistake | step | caught? | cause named? | lines | host untouched? |', '|---|---|---|---|---|---|', ...rows];
    for (const line of table) t.diagnostic(line);
  });

  test("WORKSHOP.md quotes these outputs as they are", async () => {
    const mistakeOutputs = new Map([...outcomes.values()].map((o) => [o.mistake.id, presentable(o.output, o.copy).replace(/\n$/, '').split('\n')]));
    const reports = await checkTranscripts(readFileSync(`${REPO_ROOT}/WORKSHOP.md`, 'utf8'), { mistakeOutputs, only: 'mistake' });
    const wrong = reports.filter((report) => !report.ok && report.block.kind === 'mistake');
    assert.ok(reports.some((report) => report.block.kind === 'mistake'), 'WORKSHOP.md quotes mistakes');
    assert.deepEqual(wrong.map(describeMismatch), [], '`npm run transcripts -- --write` updates them');
  });
});
