// npm run rootfs [-- [--target DIR] [--from FILE.tar[.gz]] [--force] [--max-size SIZE] [--keep-setuid] [--debug]]
// (or: npx tsx rootfs-builder/cli.ts ...)
//
// Builds the containers' root filesystem (rootfs/ by default) from the host's
// programs, or imports it from an archive with --from. Exit status: 0 done,
// 1 failed (nothing changed), 2 a usage error (nothing was read or written).
import chalk from 'chalk';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EXIT, reportError, WorkshopError } from '../lib/kernel/errors.js';
import { sizeInBytes } from '../lib/container/options.js';
import { DEFAULT_ROOTFS } from '../lib/paths.js';
import { buildRootfs, checkRootfs, importTarball } from './build.js';
import { checkTarget } from './import.js';
import { removeStaleStaging } from './staging.js';

const USAGE = `usage: npm run rootfs -- [--target DIR] [--from FILE.tar[.gz]] [--force] [--max-size SIZE] [--keep-setuid] [--debug]

  --target DIR    where to put the root filesystem (default: rootfs/ in the repository)
  --from FILE     import an archive (docker export, Alpine minirootfs; .tar or .tar.gz) instead of copying the host's programs
  --force         replace the target (the new one replaces it only once it is complete)
  --max-size SIZE stop an import that unpacks to more than SIZE (e.g. 2G; default: the free space of the target's disk)
  --keep-setuid   keep setuid/setgid bits and file capabilities even where other users of this machine can reach them
  --debug         show stack traces`;

/** Runs the command line; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  try {
    const options = parseOptions(argv);
    if (options.help) {
      console.log(USAGE);
      return 0;
    }
    const target = resolve(options.target ?? DEFAULT_ROOTFS);
    const log = (line: string) => console.log(chalk.dim(`  ${line}`));
    const replace = options.force ?? false;
    const maxBytes = options['max-size'] === undefined ? undefined : maxSize(options['max-size']);
    removeStaleStaging(target, log); // leftovers of interrupted builds and imports (it may put back a rootfs)
    checkTarget(target, replace ? 'replace' : options.from ? 'refuse' : 'update'); // before anything is read or written

    if (options.from) {
      console.log(`importing ${options.from} into ${target}`);
      await importTarball(options.from, target, { log, replace, maxBytes, keepSetuid: options['keep-setuid'] });
    } else {
      if (maxBytes !== undefined || options['keep-setuid']) throw usage('--max-size and --keep-setuid only apply to an import (--from FILE)');
      console.log(`building ${target} from this host's programs`);
      buildRootfs(target, { log, replace });
    }

    const check = checkRootfs(target);
    if (!check.ok) throw new WorkshopError(`${target} is not usable: ${check.problem}`, check.fix);
    console.log(chalk.green('✓ ') + `root filesystem ready: ${target}`);
    return 0;
  } catch (error) {
    const code = reportError(error);
    return code === EXIT.usage ? EXIT.usage : 1;
  }
}

function usage(message: string): WorkshopError {
  return new WorkshopError(message, USAGE, EXIT.usage);
}

function parseOptions(argv: string[]) {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        target: { type: 'string' },
        from: { type: 'string' },
        force: { type: 'boolean' },
        'max-size': { type: 'string' },
        'keep-setuid': { type: 'boolean' },
        debug: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.target === '') throw usage('--target is empty');
    if (values.from === '') throw usage('--from is empty');
    return values;
  } catch (error) {
    if (error instanceof WorkshopError) throw error;
    throw usage((error as Error).message);
  }
}

function maxSize(text: string): number {
  const bytes = sizeInBytes(text);
  if (bytes === undefined || bytes === 0) throw usage(`--max-size must be a size like 500M or 2G, not ${JSON.stringify(text)}`);
  return bytes;
}

// Run only when started as a program (npx tsx rootfs-builder/cli.ts), not when
// imported: by tests, or by cli/rootfs.ts (npm run rootfs), whose compiled
// bundle has no import.meta.url.
if (process.argv[1] && import.meta.url && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
