// The layout is the architecture: every import points down, never up.
//
//   lib/paths.ts ← lib/kernel ← lib/host ← lib/container ← rootfs-builder ← workshop ← cli, bench
//
// and a step file (steps/, solutions/) imports only from lib/kernel and lib/container.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from '../lib/paths.js';

/** Lower layers first; a file may import from its own layer and the ones before it. */
const LAYERS = ['lib/paths.ts', 'lib/kernel', 'lib/host', 'lib/container', 'rootfs-builder', 'workshop', 'cli', 'bench'];

function layerOf(file: string): number {
  return LAYERS.findIndex((layer) => file === layer || file.startsWith(`${layer}/`));
}

function sourceFiles(folder: string): string[] {
  return readdirSync(join(REPO_ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.(ts|mjs)$/.test(name))
    .map((name) => join(folder, name));
}

/** The repository-relative files `file` imports (relative imports only; packages are not layers). */
export function importsOf(file: string, source = readFileSync(join(REPO_ROOT, file), 'utf8')): string[] {
  const specifiers = [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((match) => match[1]!);
  return specifiers.map((specifier) => relative(REPO_ROOT, resolve(REPO_ROOT, dirname(file), specifier)).replace(/\.js$/, '.ts'));
}

describe('layers', () => {
  test('no import points from a lower layer to a higher one', () => {
    const wrong: string[] = [];
    for (const layer of LAYERS.filter((name) => !name.endsWith('.ts'))) {
      for (const file of sourceFiles(layer)) {
        for (const imported of importsOf(file)) {
          const from = layerOf(file);
          const to = layerOf(imported);
          if (to === -1 || to > from) wrong.push(`${file} imports ${imported}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  test('step files import only from lib/kernel and lib/container', () => {
    const wrong: string[] = [];
    for (const file of [...sourceFiles('steps'), ...sourceFiles('solutions')]) {
      for (const imported of importsOf(file)) {
        if (!imported.startsWith('lib/kernel/') && !imported.startsWith('lib/container/')) wrong.push(`${file} imports ${imported}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  test('an upward import is caught (the check itself works)', () => {
    const imports = importsOf('lib/kernel/libc.ts', `import { x } from '../../workshop/steps.js';\nconst y = await import('../container/runtime.js');`);
    assert.deepEqual(imports, ['workshop/steps.ts', 'lib/container/runtime.ts']);
    assert.ok(layerOf(imports[0]!) > layerOf('lib/kernel/libc.ts'));
    assert.ok(layerOf(imports[1]!) > layerOf('lib/kernel/libc.ts'));
  });
});
