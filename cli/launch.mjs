#!/usr/bin/env node
// Run a TypeScript file fast: `node cli/launch.mjs <file.ts> [args...]`.
// The file is bundled through the compile cache (workshop/compile.mjs), then run in
// this same process, as if node had been started on the bundle directly.
import { createRequire } from 'node:module';
import { compile } from '../workshop/compile.mjs';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  process.stderr.write('usage: node cli/launch.mjs <file.ts> [args...]\n');
  process.exit(2);
}
const bundle = await compile(entry).catch((/** @type {Error} */ error) => {
  // A refused cache folder (workshop/compile.mjs) or a file esbuild cannot read: one paragraph, exit 125.
  process.stderr.write(`✗ ${process.env.CFS_DEBUG === '1' || args.includes('--debug') ? error.stack : error.message}\n`);
  process.exit(125);
});
process.argv = [process.argv[0] ?? process.execPath, bundle, ...args];
// require, not import(): Node would first scan the whole CommonJS bundle for its export names.
createRequire(import.meta.url)(bundle);
