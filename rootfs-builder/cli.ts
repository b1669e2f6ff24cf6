// npm run rootfs [-- [--target DIR] [--from FILE.tar[.gz]] [--force] [--max-size SIZE] [--keep-setuid] [--debug]]
// npm run rootfs -- --image REF [--target DIR [--force]] [--plain-http]
// (or: npx tsx rootfs-builder/cli.ts ...)
//
// Builds the containers' root filesystem (rootfs/ by default) from the host's
// programs, or imports it from an archive with --from. Pulls an image into the
// image store with --image (or loads one with --from, when the archive is a
// `docker save` or an OCI layout). Exit status: 0 done, 1 failed (nothing
// changed), 2 a usage error (nothing was read or written).
import chalk from 'chalk';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EXIT, reportError, WorkshopError } from '../lib/kernel/errors.js';
import { parseReference, type ImageRecord } from '../lib/container/image.js';
import { sizeInBytes } from '../lib/container/options.js';
import { DEFAULT_ROOTFS, IMAGES_DIR } from '../lib/paths.js';
import { buildRootfs, checkRootfs, importTarball } from './build.js';
import { archiveKind, loadImageArchive } from './image-archive.js';
import { ImageStore } from './image-store.js';
import { checkTarget } from './import.js';
import { PullProgress } from './progress.js';
import { familiarName, pullImage } from './pull.js';
import { removeStaleStaging } from './staging.js';

const USAGE = `usage: npm run rootfs -- [--target DIR] [--from FILE.tar[.gz]] [--force] [--max-size SIZE] [--keep-setuid] [--debug]
       npm run rootfs -- --image REF [--target DIR] [--plain-http]

  --target DIR    where to put the root filesystem (default: rootfs/ in the repository)
  --from FILE     import an archive (docker export, Alpine minirootfs; .tar or .tar.gz) instead of copying the host's programs;
                  a \`docker save\` archive or an OCI image layout (a .tar or a folder) is loaded into the image store, like --image
  --image REF     pull an image from a registry into the image store (e.g. alpine:3.20, debian:bookworm-slim, localhost:5000/x:1);
                  then run it: npm run step 6 -- --image REF. With --target DIR, its layers are also merged into DIR
  --plain-http    allow plain HTTP to a registry that is not on this machine (localhost always may)
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
    if (options.image !== undefined && options.from !== undefined) throw usage('--image pulls an image and --from loads one: give one of them');
    if (options['plain-http'] && options.image === undefined) throw usage('--plain-http only applies to a pull (--image REF)');
    // Images go to the image store; --target (only when given) also gets their layers merged into one folder.
    const imageTarget = options.target === undefined ? undefined : target;
    if (options.image !== undefined) {
      parseReference(options.image); // a bad name is a usage error, before anything is read or written
      if (imageTarget) checkImageTarget(imageTarget, replace, log);
      const progress = new PullProgress(log);
      console.log(`pulling ${options.image} into ${IMAGES_DIR}`);
      const record = await pullImage(options.image, { plainHttp: options['plain-http'], log, progress, maxBytes });
      return await imagesReady([record], imageTarget, { replace, maxBytes, keepSetuid: options['keep-setuid'], log });
    }
    if (options.from !== undefined && (await archiveKind(options.from)) === 'image') {
      if (imageTarget) checkImageTarget(imageTarget, replace, log);
      console.log(`loading the image archive ${options.from} into ${IMAGES_DIR}`);
      const records = await loadImageArchive(options.from, { log, progress: new PullProgress(log), maxBytes });
      return await imagesReady(records, imageTarget, { replace, maxBytes, keepSetuid: options['keep-setuid'], log });
    }
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
        image: { type: 'string' },
        'plain-http': { type: 'boolean' },
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

function checkImageTarget(target: string, replace: boolean, log: (line: string) => void): void {
  removeStaleStaging(target, log);
  checkTarget(target, replace ? 'replace' : 'refuse');
}

/** Say what was pulled or loaded, and how to run it; merge its layers into --target when given. */
async function imagesReady(
  records: ImageRecord[],
  target: string | undefined,
  options: { replace: boolean; maxBytes?: number; keepSetuid?: boolean; log: (line: string) => void },
): Promise<number> {
  for (const record of records) {
    const config = record.config;
    const command = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
    console.log(chalk.green('✓ ') + `image ${familiarName(record.name)} (${record.platform}, id ${record.id.slice(7, 19)}): ${record.layers.length} layer${record.layers.length === 1 ? '' : 's'}`);
    options.log(`runs by default: ${command.length > 0 ? JSON.stringify(command) : '(no command: an interactive shell)'}${config.WorkingDir ? ` in ${config.WorkingDir}` : ''}${config.User ? `, as user "${config.User}" (reported, not applied: this runtime runs as root)` : ''}`);
    if (config.Env.length > 0) options.log(`environment: ${config.Env.join(' ')}`);
  }
  if (target) {
    const record = records[0]!;
    console.log(`merging the layers of ${familiarName(record.name)} into ${target}`);
    await new ImageStore(undefined, options.maxBytes).flatten(record, target, { replace: options.replace, keepPrivileges: options.keepSetuid });
    const check = checkRootfs(target);
    if (!check.ok) options.log(`note: ${target} is not a root filesystem the workshop's steps can use as --rootfs: ${check.problem}`);
    console.log(chalk.green('✓ ') + `root filesystem ready: ${target}`);
  }
  const name = familiarName(records[0]!.name);
  console.log(`run it: ${chalk.bold(`npm run step 6 -- --image ${name}`)}   (its own command; or add one: … --image ${name} sh)`);
  return 0;
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
