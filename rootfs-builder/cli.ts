// npm run rootfs [-- [--target DIR] [--from FILE.tar[.gz]] [--force] [--debug]]
// (or: npx tsx rootfs-builder/cli.ts ...)
//
// Builds the containers' root filesystem (rootfs/ by default) from the host's
// programs, or imports it from a tarball with --from.
import chalk from 'chalk';
import { readdirSync, realpathSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { reportError, WorkshopError } from '../lib/kernel/errors.js';
import { DEFAULT_ROOTFS } from '../lib/paths.js';
import { buildRootfs, checkRootfs, importTarball } from './build.js';
import { lstatIfExists } from './safe-fs.js';

const USAGE = `usage: npm run rootfs -- [--target DIR] [--from FILE.tar[.gz]] [--force] [--debug]

  --target DIR   where to put the root filesystem (default: rootfs/ in the repository)
  --from FILE    import a tarball (docker export, Alpine minirootfs) instead of copying the host's programs
  --force        delete the target first and start from scratch
  --debug        show stack traces`;

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
    if (options.force) removeRootfs(target);

    if (options.from) {
      console.log(`importing ${options.from} into ${target}`);
      importTarball(options.from, target, { log });
    } else {
      console.log(`building ${target} from this host's programs`);
      buildRootfs(target, { log });
    }

    const check = checkRootfs(target);
    if (!check.ok) throw new WorkshopError(`${target} is not usable: ${check.problem}`, check.fix);
    console.log(chalk.green('✓ ') + `root filesystem ready: ${target}`);
    return 0;
  } catch (error) {
    reportError(error);
    return 1;
  }
}

function parseOptions(argv: string[]) {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        target: { type: 'string' },
        from: { type: 'string' },
        force: { type: 'boolean' },
        debug: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    return values;
  } catch (error) {
    throw new WorkshopError((error as Error).message, USAGE);
  }
}

/** --force: delete the target, but only if it looks like a root filesystem (or is empty): never a folder given by mistake. */
function removeRootfs(target: string): void {
  const stat = lstatIfExists(target);
  if (!stat) return;
  const isEmpty = stat.isDirectory() && readdirSync(target).length === 0;
  const looksLikeRootfs = realpathSync(target) !== '/' && ['proc', 'dev'].every((name) => lstatIfExists(join(target, name))?.isDirectory());
  if (!isEmpty && !looksLikeRootfs) {
    throw new WorkshopError(
      `--force refuses to delete ${target}: it does not look like a root filesystem (no proc/ and dev/ folders)`,
      'Check --target. If that folder really should go, delete it yourself.',
    );
  }
  rmSync(target, { recursive: true });
}

// Run only when started as a program (npx tsx rootfs-builder/cli.ts), not when
// imported: by tests, or by cli/rootfs.ts (npm run rootfs), whose compiled
// bundle has no import.meta.url.
if (process.argv[1] && import.meta.url && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
