// WORKSHOP.md cannot drift: every output it quotes is re-run here and
// compared (workshop/transcripts.ts); the quotes of `npm run check` on the
// catalogue's mistakes are compared in tests/mistakes.test.ts.
// `npm run transcripts -- --write` regenerates the blocks that differ.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { REPO_ROOT } from '../lib/paths.js';
import { checkTranscripts, describeMismatch, isElision, match, normalized, parseBlocks, type BlockReport } from '../workshop/transcripts.js';

describe('WORKSHOP.md', () => {
  const markdown = readFileSync(`${REPO_ROOT}/WORKSHOP.md`, 'utf8');
  let reports: BlockReport[] = [];

  before(async () => {
    reports = await checkTranscripts(markdown, { only: 'transcript' });
  });

  test('every quoted output is marked: a transcript, a mistake of the catalogue, or unchecked with a reason', () => {
    const unmarked = parseBlocks(markdown).filter((block) => block.kind === 'unmarked');
    assert.deepEqual(unmarked.map((block) => `WORKSHOP.md:${block.fence + 1}: ${block.lines[0]}`), []);
    for (const block of parseBlocks(markdown).filter((b) => b.kind === 'unchecked')) assert.ok(block.options.why, `WORKSHOP.md:${block.fence + 1} says why it is not checked`);
  });

  test('every transcript is what its commands print today', () => {
    const transcripts = reports.filter((report) => report.block.kind === 'transcript');
    assert.ok(transcripts.filter((report) => !report.skipped).length >= 15, 'the transcripts run');
    assert.deepEqual(transcripts.filter((report) => !report.ok).map(describeMismatch), []);
  });

  test('the comparison is not blind: a changed line, a changed PID, an elision', () => {
    const documented = ['$ npm run step 1 -- --trace true', 'parent  28597 │ spawn(…) → pid 28641', 'child   28641 │ execvp("true")', '28641'];
    const actual = ['$ npm run step 1 -- --trace true', 'parent   8496 │ spawn(…) → pid 8601', 'child    8601 │ execvp("true")', '8601'];
    assert.ok(match(documented, actual), 'PIDs differ on every run');
    assert.equal(match(documented, [...actual.slice(0, 3), '8602']), undefined, 'a number that is not a PID of the block');
    assert.equal(match(['a', 'b'], ['a', 'c']), undefined);
    assert.ok(match(['a', '… (left out)', 'd'], ['a', 'b', 'c', 'd']));
    assert.ok(isElision('   … (cgroup, as in step 5)'));
    assert.deepEqual(normalized(['checked 11/29/2026, 1:50:17 AM']), ['checked DATE']);
  });
});
