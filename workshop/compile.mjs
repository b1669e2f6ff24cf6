// The compile cache that makes `npm run step` start fast.
//
// Running TypeScript through tsx costs a loader and an extra node process on
// every start, and the runtime starts node twice (parent, then child). So each
// entry file is bundled once with esbuild (it ships with tsx) into a single
// .mjs file, and reused while none of the files that went into it change:
// the cache is keyed by the content of every input, so editing a step (or
// lib/) is picked up on the next run, with no build step to remember.
// Bundles are CommonJS: Node starts a CommonJS file ~30 ms sooner than an ES
// module, twice per container (entry files therefore avoid top-level await).
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** @type {string | undefined} */
// @ts-ignore -- replaced by esbuild's `define` when this file is itself bundled
const bundledRepoRoot = typeof BUNDLED_REPO_ROOT === 'string' ? BUNDLED_REPO_ROOT : undefined;

/** The repository's folder. */
export const REPO_ROOT = bundledRepoRoot ?? fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

/** Packages that stay outside the bundle: native code (lib/kernel/ffi.ts loads ffi-rs itself) and the bundler. */
const EXTERNAL = ['ffi-rs', 'esbuild'];

/**
 * Why `folder` must not hold bundles we run, or undefined when only this user can write it.
 * Whoever can write a bundle there runs code as the next user of the cache (root included).
 * @param {string} folder
 * @param {{ ownedByMe: boolean }} options  the per-user folder must be ours; the repository's may be its owner's
 * @returns {string | undefined}
 */
export function untrustedCacheDir(folder, { ownedByMe }) {
  const parent = statSync(dirname(folder));
  const uid = process.getuid?.() ?? 0;
  // Who may rename entries of the parent could swap the folder: it must be sticky (/tmp) or its owner's alone.
  if (!(parent.mode & 0o1000) && ((parent.mode & 0o022) !== 0 || (ownedByMe && parent.uid !== 0 && parent.uid !== uid))) {
    return `${dirname(folder)} can be changed by other users (mode ${(parent.mode & 0o7777).toString(8)})`;
  }
  const stat = lstatSync(folder);
  if (stat.isSymbolicLink() || !stat.isDirectory()) return `${folder} is not a plain folder`;
  if (ownedByMe && stat.uid !== uid) return `${folder} belongs to uid ${stat.uid}, not to you (uid ${uid})`;
  if ((stat.mode & 0o022) !== 0) return `${folder} can be written by other users (mode ${(stat.mode & 0o777).toString(8)})`;
  return undefined;
}

/**
 * Where bundles live: node_modules/.cache when we may write there (root), else a
 * per-user temp folder, created 0700 (never through a symlink) and only used
 * while it is this user's alone.
 */
function cacheDir() {
  const inRepo = join(REPO_ROOT, 'node_modules', '.cache', 'containers-from-scratch');
  try {
    mkdirSync(inRepo, { recursive: true });
    accessSync(inRepo, constants.W_OK);
    if (untrustedCacheDir(inRepo, { ownedByMe: false }) === undefined) return inRepo;
  } catch {
    // not ours to write: the per-user folder below
  }
  const perUser = join(tmpdir(), `containers-from-scratch-${process.getuid?.() ?? 'user'}`);
  try {
    mkdirSync(perUser, { mode: 0o700 }); // EEXIST on anything already there, a symlink included
  } catch (error) {
    if (/** @type {NodeJS.ErrnoException} */ (error).code !== 'EEXIST') throw error;
  }
  const problem = untrustedCacheDir(perUser, { ownedByMe: true });
  if (problem) {
    throw new Error(
      `refusing to use the compile cache ${perUser}: ${problem}, so another user could put code there that you would run.\n` +
        `  Remove it (or ask its owner to), or set TMPDIR to a folder of your own, then run again.`,
    );
  }
  return perUser;
}

/** @param {string} text */
function hash(text) {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/**
 * @typedef {{ entry: string, inputs: Record<string, string> }} Manifest  the entry it was bundled from; input path → content hash
 */

/**
 * @param {string} manifestPath
 * @param {string} source  the entry file: a manifest about another entry, or naming no input, is not up to date
 * @returns {boolean} true when every input still has the content it was bundled from
 */
function upToDate(manifestPath, source) {
  try {
    /** @type {Manifest} */
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const inputs = Object.entries(manifest.inputs ?? {});
    if (manifest.entry !== source || inputs.length === 0 || inputs.some(([, digest]) => typeof digest !== 'string')) return false;
    return inputs.every(([file, digest]) => hash(readFileSync(file, 'utf8')) === digest);
  } catch {
    return false; // no manifest yet, or an input is gone
  }
}

/** Write a file so that readers see the old or the new content, never half of it. */
function writeAtomically(/** @type {string} */ path, /** @type {string} */ content) {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, content);
  renameSync(temporary, path);
}

/**
 * Bundle `entry` (a .ts file) unless an up-to-date bundle is cached; return the bundle's path.
 * @param {string} entry
 * @returns {Promise<string>}
 */
export async function compile(entry) {
  const source = resolve(entry);
  const name = `${basename(source).replace(/\.[cm]?[tj]s$/, '')}-${hash(source)}`;
  const dir = cacheDir();
  const bundle = join(dir, `${name}.cjs`);
  const manifestPath = join(dir, `${name}.json`);
  if (existsSync(bundle) && upToDate(manifestPath, source)) return bundle;

  const esbuild = await import('esbuild'); // only loaded on a cache miss
  const require = createRequire(join(REPO_ROOT, 'package.json'));
  const result = await esbuild.build({
    entryPoints: [source],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    metafile: true,
    absWorkingDir: REPO_ROOT,
    define: { BUNDLED_REPO_ROOT: JSON.stringify(REPO_ROOT), BUNDLED_ENTRY: JSON.stringify(relative(REPO_ROOT, source)) },
    logLevel: 'silent',
    plugins: [
      {
        // Keep native packages outside, but by absolute path so the bundle runs from any folder.
        name: 'external-by-path',
        setup(build) {
          const filter = new RegExp(`^(${EXTERNAL.join('|')})$`);
          build.onResolve({ filter }, (args) => ({ path: require.resolve(args.path), external: true }));
        },
      },
    ],
  });
  const output = result.outputFiles[0];
  if (!output) throw new Error(`esbuild produced no output for ${entry}`);
  /** @type {Manifest} */
  const manifest = { entry: source, inputs: {} };
  for (const input of Object.keys(result.metafile.inputs)) {
    const file = resolve(REPO_ROOT, input);
    manifest.inputs[file] = hash(readFileSync(file, 'utf8'));
  }
  writeAtomically(bundle, output.text);
  writeAtomically(manifestPath, JSON.stringify(manifest));
  return bundle;
}
