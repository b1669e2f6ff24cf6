// npm run watch N — re-check step N every time steps/0N-*.ts (or lib/) is saved.
//
// Folders are watched, not files: many editors (and `sed -i`) save by writing
// a temporary file and renaming it over the old one, after which a watch on
// the old file sees nothing more. Changes are debounced: an editor's save is
// often several writes, and a save during a check queues one more check.
// fs.watch does not fire on every file system (network and some VM shared
// folders): `--poll` compares modification times instead.
import chalk from 'chalk';
import { readdirSync, statSync, watch, watchFile, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { REPO_ROOT } from '../lib/paths.js';
import { exerciseFile } from '../workshop/steps.js';
import { checkStep } from '../workshop/check-runner.js';
import { enterDelegatedCgroup, main, requireStep } from './common.js';

/** Quiet time after the last change before checking. */
const DEBOUNCE_MS = 200;

main(async () => {
  const step = requireStep(process.argv[2], 'watch');
  await enterDelegatedCgroup(step);
  const file = exerciseFile(step);
  const usePolling = process.argv.includes('--poll');
  let running = false;
  let again = false;

  const recheck = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    console.clear();
    await checkStep(step).catch((error: unknown) => console.error(error));
    console.log(chalk.dim(`\nWatching steps/${step.stem}.ts${usePolling ? ' (polling)' : ''}. Save to re-check; Ctrl-C to stop.`));
    running = false;
    if (again) {
      again = false;
      void recheck();
    }
  };

  let timer: NodeJS.Timeout | undefined;
  const onChange = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => void recheck(), DEBOUNCE_MS);
  };

  const watchers: FSWatcher[] = [];
  if (!usePolling) {
    try {
      // The exercise's folder: a rename over the file is an event of the folder.
      watchers.push(watch(dirname(file), (_event, name) => name === basename(file) && onChange()));
      // lib/, recursively (instructors edit it; participants read it).
      watchers.push(watch(`${REPO_ROOT}/lib`, { recursive: true }, (_event, name) => typeof name === 'string' && name.endsWith('.ts') && onChange()));
    } catch {
      watchers.splice(0).forEach((watcher) => watcher.close());
    }
  }
  if (watchers.length === 0) {
    // Polling by path: a renamed-over file is a new modification time too.
    const libFiles = readdirSync(`${REPO_ROOT}/lib`, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.ts'));
    for (const path of [file, ...libFiles.map((name) => `${REPO_ROOT}/lib/${name}`)]) {
      watchFile(path, { interval: 500 }, (now, before) => now.mtimeMs !== before.mtimeMs && onChange());
    }
  }
  statSync(file); // a missing exercise is reported before the first check
  await recheck();
  return new Promise<number>(() => {}); // until Ctrl-C
});
