// Before `npm test` (the "pretest" script): build rootfs/ if needed, and fill
// the compile cache with every runtime and command the tests start, one after
// the other in this process. Otherwise the test files, running in parallel,
// would each bundle the same files at the same time on a fresh clone.
import { readdirSync } from 'node:fs';
import { compile } from '../workshop/compile.mjs';
import { main as buildRootfs } from '../rootfs-builder/cli.js';
import { REPO_ROOT } from '../lib/paths.js';

const COMMANDS = ['step', 'check', 'hint', 'progress', 'reset', 'diff', 'watch', 'doctor', 'rootfs'];

async function prepare(): Promise<number> {
  const status = await buildRootfs([]);
  if (status !== 0) return status;
  const runtimes = ['solutions', 'steps'].flatMap((folder) =>
    readdirSync(`${REPO_ROOT}/${folder}`)
      .filter((name) => name.endsWith('.ts'))
      .map((name) => `${REPO_ROOT}/${folder}/${name}`),
  );
  for (const file of [...runtimes, ...COMMANDS.map((name) => `${REPO_ROOT}/cli/${name}.ts`)]) await compile(file);
  return 0;
}

void prepare().then((status) => process.exit(status));
