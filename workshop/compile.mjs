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
// Each bundle has its source map next to it (<bundle>.map): nothing reads it
// on the happy path; an error report maps its stack back to the .ts lines
// (lib/kernel/source-map.ts).
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
 * A file that does not compile (a syntax error, an import that does not
 * resolve): the participant's mistake, reported as such by the workshop
 * commands, with file:line:col. (Duck-typed by its name: each bundle has its
 * own copy of this class.)
 */
export class CompileError extends Error {
  /**
   * @param {string} message
   * @param {{ file: string, line: number, column: number, length: number, message: string, lineText: string }[]} diagnostics  line and column 1-based
   */
  constructor(message, diagnostics) {
    super(message);
    this.name = 'CompileError';
    this.diagnostics = diagnostics;
  }
}

/**
 * Bundle `entry` (a .ts file) unless an up-to-date bundle is cached; return the bundle's path.
 * @param {string} entry
 * @returns {Promise<string>}
 */
export async function compile(entry) {
  const source = resolve(entry);
  return build(`${basename(source).replace(/\.[cm]?[tj]s$/, '')}-${hash(source)}`, { entryPoints: [source] }, relative(REPO_ROOT, source));
}

/**
 * Bundle TypeScript given as text, as if it were the file `asFile` (imports
 * resolve from its folder): the generated, pristine exercises are checked
 * this way, whatever the participant's copy in steps/ holds.
 * @param {string} contents
 * @param {string} asFile
 * @returns {Promise<string>}
 */
export async function compileSource(contents, asFile) {
  const file = resolve(asFile);
  const name = `${basename(file).replace(/\.[cm]?[tj]s$/, '')}-text-${hash(`${file}\0${contents}`)}`;
  // esbuild names the text after sourcefile, relative to resolveDir: it then reads as the file it stands for.
  const stdin = { contents, resolveDir: dirname(file), sourcefile: basename(file), loader: /** @type {const} */ ('ts') };
  return build(name, { stdin }, relative(REPO_ROOT, file), relative(REPO_ROOT, file));
}

/**
 * The manifest of a bundle: every input file and the hash of its content.
 * @param {string} bundle
 * @returns {Record<string, string>}
 */
export function bundleInputs(bundle) {
  try {
    return JSON.parse(readFileSync(bundle.replace(/\.cjs$/, '.json'), 'utf8')).inputs;
  } catch {
    return {};
  }
}

/**
 * @param {string} name  the bundle's name in the cache
 * @param {{ entryPoints?: string[], stdin?: import('esbuild').StdinOptions }} input
 * @param {string} entryName  the entry as the repository names it (for messages and BUNDLED_ENTRY)
 * @param {string} [givenAsText]  the input given as text (not read from disk: its hash is in the name)
 * @returns {Promise<string>}
 */
async function build(name, input, entryName, givenAsText) {
  const dir = cacheDir();
  const bundle = join(dir, `${name}.cjs`);
  const manifestPath = join(dir, `${name}.json`);
  if (existsSync(bundle) && existsSync(`${bundle}.map`) && upToDate(manifestPath, entryName)) return bundle;

  const esbuild = await import('esbuild'); // only loaded on a cache miss
  const require = createRequire(join(REPO_ROOT, 'package.json'));
  const result = await esbuild.build({
    ...input,
    outfile: bundle,
    sourcemap: 'external',
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    metafile: true,
    absWorkingDir: REPO_ROOT,
    define: { BUNDLED_REPO_ROOT: JSON.stringify(REPO_ROOT), BUNDLED_ENTRY: JSON.stringify(entryName) },
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
  }).catch((/** @type {unknown} */ error) => {
    throw compileError(error, entryName);
  });
  const output = result.outputFiles.find((file) => file.path === bundle);
  const map = result.outputFiles.find((file) => file.path === `${bundle}.map`);
  if (!output || !map) throw new Error(`esbuild produced no output for ${entryName}`);
  /** @type {Manifest} */
  const manifest = { entry: entryName, inputs: {} };
  for (const input of Object.keys(result.metafile.inputs)) {
    if (input === '<stdin>' || input === givenAsText) continue; // given as text: its hash is in the bundle's name
    const file = resolve(REPO_ROOT, input);
    manifest.inputs[file] = hash(readFileSync(file, 'utf8'));
  }
  writeAtomically(`${bundle}.map`, map.text);
  writeAtomically(bundle, output.text);
  writeAtomically(manifestPath, JSON.stringify(manifest));
  return bundle;
}

/**
 * esbuild's failure as a CompileError naming each place (line and column 1-based).
 * @param {unknown} error
 * @param {string} entryName
 */
function compileError(error, entryName) {
  /** @type {{ errors?: { text: string, location: { file: string, line: number, column: number, length: number, lineText: string } | null }[] }} */
  const failure = /** @type {any} */ (error);
  if (!Array.isArray(failure?.errors)) return error;
  const diagnostics = failure.errors.map((item) => ({
    file: item.location ? resolve(REPO_ROOT, item.location.file) : resolve(REPO_ROOT, entryName),
    line: item.location?.line ?? 1,
    column: (item.location?.column ?? 0) + 1,
    length: Math.max(1, item.location?.length ?? 1),
    lineText: item.location?.lineText ?? '',
    message: item.text,
  }));
  return new CompileError(`${entryName} does not compile`, diagnostics);
}
