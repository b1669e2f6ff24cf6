// npm run transcripts [-- --write]
//
// Re-runs every output WORKSHOP.md quotes (see workshop/transcripts.ts) and
// reports the blocks that no longer match; with --write, rewrites them from
// the real output (keeping blocks that still match as they are).
import chalk from 'chalk';
import { readFileSync, writeFileSync } from 'node:fs';
import { REPO_ROOT } from '../lib/paths.js';
import { MISTAKES, runCatalogue } from '../workshop/mistakes.js';
import { checkTranscripts, describeMismatch, parseBlocks, presentable, replaceBlocks, rewritten } from '../workshop/transcripts.js';
import { main } from './common.js';

main(async () => {
  const write = process.argv.includes('--write');
  const file = `${REPO_ROOT}/WORKSHOP.md`;
  const markdown = readFileSync(file, 'utf8');
  const wanted = new Set(parseBlocks(markdown).flatMap((block) => (block.mistake ? [block.mistake] : [])));
  const outcomes = await runCatalogue(MISTAKES.filter((mistake) => wanted.has(mistake.id)));
  const mistakeOutputs = new Map(outcomes.map((o) => [o.mistake.id, presentable(o.output, o.copy).replace(/\n$/, '').split('\n')]));
  const reports = await checkTranscripts(markdown, { mistakeOutputs });
  const wrong = reports.filter((report) => !report.ok);
  for (const report of reports) {
    const what = report.block.kind === 'mistake' ? `mistake ${report.block.mistake}` : report.block.kind;
    if (report.skipped) console.log(chalk.dim(`  - WORKSHOP.md:${report.line} ${what}: not compared (${report.skipped})`));
    else if (report.ok) console.log(`  ${chalk.green('✓')} WORKSHOP.md:${report.line} ${what}`);
    else console.log(`  ${chalk.red('✗')} WORKSHOP.md:${report.line} ${what}: ${report.problem}`);
  }
  if (write) {
    const replacements = wrong.filter((report) => report.actual).map((report) => ({ block: report.block, lines: rewritten(report.block, report.actual!) }));
    writeFileSync(file, replaceBlocks(markdown, replacements));
    console.log(`${replacements.length} block(s) rewritten from the real output. Re-add elisions (…) where a block got too long.`);
    return 0;
  }
  for (const report of wrong) console.log('\n' + describeMismatch(report));
  if (wrong.length > 0) console.log(`\n${wrong.length} block(s) differ: \`npm run transcripts -- --write\` rewrites them.`);
  return wrong.length > 0 ? 1 : 0;
});
