// A progress bar per layer while an image is pulled (cli-progress draws
// them on a terminal); without a terminal (CI, a pipe), one line per layer
// once it is done.
//
//   0123456789ab ████████████░░░░░░░░ 12.1/24.3 MiB  6.2 MiB/s  downloading
import cliProgress from 'cli-progress';
import { formatBytes } from './unpack.js';
import type { DownloadProgress } from './registry.js';

export interface LayerProgress extends DownloadProgress {
  /** The layer was there already: nothing to download or unpack. */
  cached(why: string): void;
  /** What happens now (e.g. "unpacking"). */
  stage(text: string): void;
  /** Finished, with a summary. */
  done(summary: string): void;
}

export class PullProgress {
  private readonly bars: cliProgress.MultiBar | undefined;

  constructor(
    private readonly log: (line: string) => void,
    tty = process.stdout.isTTY === true,
  ) {
    this.bars = tty
      ? new cliProgress.MultiBar(
          { format: '  {layer} {bar} {amount} {speed} {stage}', barsize: 24, hideCursor: true, clearOnComplete: false, stopOnComplete: false, autopadding: true, linewrap: false },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  }

  /** A bar for one layer, named by the first 12 hex digits of its digest. */
  layer(name: string): LayerProgress {
    const bar = this.bars?.create(1, 0, { layer: name, amount: '', speed: '', stage: 'waiting' });
    let total = 0;
    let value = 0;
    let started = 0;
    let startedAt = 0;
    let downloadedAt = 0;
    const seconds = (): number => ((downloadedAt || Date.now()) - startedAt) / 1000;
    const speed = (): string => {
      const elapsed = seconds();
      return elapsed > 0 && value > started ? `${formatBytes((value - started) / elapsed)}/s` : '';
    };
    const amount = (): string => `${formatBytes(value)}/${formatBytes(total)}`;
    const log = this.log;
    return {
      start(size, already) {
        total = size;
        value = already;
        started = already;
        startedAt = Date.now();
        bar?.setTotal(Math.max(size, 1));
        bar?.update(already, { amount: amount(), stage: already > 0 ? `resumed at ${formatBytes(already)}` : 'downloading' });
      },
      advance(bytes) {
        value += bytes;
        bar?.update(value, { amount: amount(), speed: speed() });
      },
      cached(why) {
        bar?.update(1, { amount: '', speed: '', stage: why });
        if (!bar) log(`layer ${name}: ${why}`);
      },
      stage(text) {
        downloadedAt ||= Date.now();
        bar?.update({ stage: text });
      },
      done(summary) {
        const downloaded = value > started ? `${formatBytes(value - started)} downloaded in ${seconds().toFixed(1)} s (${speed()}), ` : '';
        bar?.update({ speed: speed(), stage: summary });
        if (!bar) log(`layer ${name}: ${downloaded}${summary}`);
      },
    };
  }

  stop(): void {
    this.bars?.stop();
  }
}
