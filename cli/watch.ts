// npm run watch N — re-check step N every time steps/0N-*.ts (or lib/) is saved.
// fs.watch does not fire on every file system (network and some VM shared
// folders): there, it falls back to polling the file's modification time.
import chalk from 'chalk';
import { readdirSync, statSync, watch, watchFile, type FSWatcher } from 'node:fs';
import { REPO_ROOT } from '../lib/paths.js';
import { exerciseFile } from '../workshop/steps.js';
import { checkStep } from '../workshop/check-runner.js';
import { enterDelegatedCgroup, main, requireStep } from './common.js';

main(async () => {
  const step = requireStep(process.argv[2], 'watch');
  await enterDelegatedCgroup(step);
  const libFiles = readdirSync(`${REPO_ROOT}/lib`, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.ts'));
  const files = [exerciseFile(step), ...libFiles.map((name) => `${REPO_ROOT}/lib/${name}`)];
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
    timer = setTimeout(() => void recheck(), 150); // editors save in several writes
  };

  const watchers: FSWatcher[] = [];
  if (!usePolling) {
    try {
      for (const file of files) watchers.push(watch(file, onChange));
    } catch {
      watchers.splice(0).forEach((watcher) => watcher.close());
    }
  }
  if (watchers.length === 0) {
    // Polling: compare modification times every half second.
    for (const file of files) watchFile(file, { interval: 500 }, (now, before) => now.mtimeMs !== before.mtimeMs && onChange());
  }
  statSync(exerciseFile(step)); // a missing exercise is reported before the first check
  await recheck();
  return new Promise<number>(() => {}); // until Ctrl-C
});
