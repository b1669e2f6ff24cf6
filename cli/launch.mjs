#!/usr/bin/env node
// Run a TypeScript file fast: `node cli/launch.mjs <file.ts> [args...]`.
// The file is bundled through the compile cache (cli/compile.mjs), then run in
// this same process, as if node had been started on the bundle directly.
import { pathToFileURL } from 'node:url';
import { compile } from './compile.mjs';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  process.stderr.write('usage: node cli/launch.mjs <file.ts> [args...]\n');
  process.exit(2);
}
const bundle = await compile(entry);
process.argv = [process.argv[0] ?? process.execPath, bundle, ...args];
await import(pathToFileURL(bundle).href);
