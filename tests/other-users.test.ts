// Another user of the same machine (a workshop room's shared server) must not
// get code run in someone else's container or commands: the folders the
// runtime and the compile cache keep must be the caller's alone. The attacker
// runs as `nobody` (or another unprivileged uid), as on a real machine.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { layersFolder, unsafeFolder } from '../lib/container/overlay.js';
import { REPO_ROOT } from '../lib/paths.js';
import { compile } from '../workshop/compile.mjs';
import { runContainer, stepNumbered, waitFor } from '../workshop/harness.js';

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
/** A second unprivileged user, with no account: setpriv only needs the number. */
const OTHER = 4242;

/** `command` as user `uid` (and group), with a clean environment of our choosing. */
function as(uid: number, command: string[], env: NodeJS.ProcessEnv = {}): string[] {
  return ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'env', '-i', `PATH=${process.env.PATH}`, 'HOME=/tmp', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...command];
}

/** A folder every user may write, like /tmp (sticky, 1777): where the attacks of issue 11 happened. */
function sharedTmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cfs-shared-'));
  chmodSync(dir, 0o1777);
  return dir;
}

describe('container layers: another user cannot swap them', { skip: !isRoot && 'needs root (to be the victim, and to become nobody)' }, () => {
  test("nobody pre-creating $TMPDIR/containers-from-scratch and swapping a container's upper layer runs nothing in root's container", async () => {
    const shared = sharedTmp();
    const id = `cfs-victim-${randomBytes(3).toString('hex')}`;
    // The attacker: make the folder the runtime used to share, then swap root's fresh folder for one
    // whose upper layer has an /bin/sh of theirs, as soon as it appears.
    const attack = [
      'base="$1/containers-from-scratch"; id="$2"',
      'mkdir -m 777 "$base" || exit 1',
      `evil='#!/bin/bash\necho "hijacked: uid $(id -u)"'`,
      'while [ "$SECONDS" -lt 20 ]; do',
      '  if [ -d "$base/$id" ] && mv "$base/$id" "$base/$id.orig" 2>/dev/null; then',
      '    mkdir -p "$base/$id/upper/bin" "$base/$id/work" "$base/$id/merged"',
      '    printf "%s\\n" "$evil" > "$base/$id/upper/bin/sh"; chmod 755 "$base/$id/upper/bin/sh"; echo swapped; exit 0',
      '  fi',
      'done',
    ].join('\n');
    const [program, ...args] = as(NOBODY, ['bash', '-c', attack, 'attack', shared, id]);
    const attacker = spawn(program!, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let attackerOutput = '';
    attacker.stdout.on('data', (chunk) => (attackerOutput += chunk));
    try {
      assert.ok(await waitFor(() => existsSync(join(shared, 'containers-from-scratch')), 5000), 'the attacker is ready');
      const result = await runContainer(stepNumbered(6), 'solutions', ['sh', '-c', 'echo "normal: uid $(id -u)"'], { options: ['--id', id], env: { TMPDIR: shared } });
      assert.equal(result.stdout, 'normal: uid 0\n', `the container ran someone else's code (${attackerOutput.trim() || 'no swap seen'}):\n${result.stdout}${result.stderr}`);
      assert.equal(result.status, 0, result.stderr);
      assert.ok(!layersFolder().startsWith(shared), `root's layers must not be in ${shared}`);
    } finally {
      try {
        process.kill(-attacker.pid!, 'SIGKILL');
      } catch {
        // already done
      }
      rmSync(shared, { recursive: true, force: true });
    }
  });

  test('a layers folder that is not the caller\'s alone is refused, with the reason', () => {
    const shared = sharedTmp();
    try {
      const theirs = join(shared, 'theirs');
      mkdirSync(theirs, { mode: 0o700 });
      chownSync(theirs, NOBODY, NOBODY);
      assert.match(unsafeFolder(theirs) ?? '', /belongs to uid 65534, not to you \(uid 0\)/);
      const open = join(shared, 'open');
      mkdirSync(open);
      chmodSync(open, 0o777);
      assert.match(unsafeFolder(open) ?? '', /can be written by others \(mode 777\)/);
      const link = join(shared, 'link');
      symlinkSync(open, link);
      assert.match(unsafeFolder(link) ?? '', /is a symbolic link/);
      const mine = join(open, 'mine'); // ours and 0700, but in a folder anyone can rename things in
      mkdirSync(mine, { mode: 0o700 });
      assert.match(unsafeFolder(mine) ?? '', /can be changed by another user/);
      const safe = join(shared, 'safe'); // in a sticky folder, like /tmp
      mkdirSync(safe, { mode: 0o700 });
      assert.equal(unsafeFolder(safe), undefined);
    } finally {
      rmSync(shared, { recursive: true, force: true });
    }
  });
});

describe('compile cache: another user cannot plant a bundle', { skip: !isRoot && 'needs root (to become nobody and another user)' }, () => {
  test("a bundle planted in nobody's fallback cache folder by another user is refused, not run", () => {
    const shared = sharedTmp();
    try {
      // What the cache would call the bundle of cli/progress.ts (workshop/compile.mjs): anyone can compute it.
      const entry = resolve(REPO_ROOT, 'cli/progress.ts');
      const name = `progress-${createHash('sha256').update(entry).digest('hex').slice(0, 16)}`;
      const folder = join(shared, `containers-from-scratch-${NOBODY}`);
      const plant = `mkdir -m 777 "${folder}" && echo 'console.log("PLANTED by uid " + process.getuid())' > "${folder}/${name}.cjs" && echo '{"inputs":{}}' > "${folder}/${name}.json"`;
      const [p, ...pArgs] = as(OTHER, ['sh', '-c', plant]);
      assert.equal(spawnSync(p!, pArgs).status, 0, 'the attacker planted the bundle');
      // nobody cannot write the repository's node_modules/.cache: the cache falls back to $TMPDIR.
      const [v, ...vArgs] = as(NOBODY, [process.execPath, 'cli/launch.mjs', 'cli/progress.ts'], { TMPDIR: shared });
      const victim = spawnSync(v!, vArgs, { cwd: REPO_ROOT, encoding: 'utf8' });
      assert.doesNotMatch(victim.stdout, /PLANTED/, 'nobody ran the planted bundle');
      assert.equal(victim.status, 125, victim.stderr);
      assert.match(victim.stderr, new RegExp(`refusing to use the compile cache ${folder}: .*belongs to uid ${OTHER}`));
      assert.match(victim.stderr, /TMPDIR/);
      assert.doesNotMatch(victim.stderr, /\n\s+at /);
    } finally {
      rmSync(shared, { recursive: true, force: true });
    }
  });

  test('a manifest that names no input (or another entry) never counts as up to date', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfs-compile-'));
    const entry = join(dir, 'entry.ts');
    writeFileSync(entry, 'console.log("built from the source");\n');
    const bundle = await compile(entry);
    const manifest = bundle.replace(/\.cjs$/, '.json');
    try {
      for (const planted of [{ inputs: {} }, { entry: '/elsewhere.ts', inputs: JSON.parse(readFileSync(manifest, 'utf8')).inputs }]) {
        writeFileSync(bundle, 'console.log("planted");\n');
        writeFileSync(manifest, JSON.stringify(planted));
        assert.match(readFileSync(await compile(entry), 'utf8'), /built from the source/, JSON.stringify(planted));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(bundle, { force: true });
      rmSync(manifest, { force: true });
    }
  });
});
