// Every behaviour the workshop checks, once, with the step that introduces it.
// A step's test suite runs the checks of that step and of every step before
// it; `npm run check N` runs the same checks on the participant's file and
// shows each check's hint when it fails.
import { randomBytes } from 'node:crypto';
import { hostname as hostHostname, tmpdir } from 'node:os';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { DEFAULT_ROOTFS } from '../lib/paths.js';
import { lines, runContainer, type RunOptions, type RunResult, type Target } from './harness.js';
import type { Step } from '../lib/steps.js';

export interface Check {
  /** The step that introduces this behaviour. */
  step: number;
  name: string;
  /** What to look at when it fails (npm run check shows it). */
  hint: string;
  run(context: CheckContext): Promise<void>;
}

export interface CheckContext {
  step: Step;
  target: Target;
  /** Run a command in a container of this step. */
  run(command: string[], options?: RunOptions): Promise<RunResult>;
  /** hostname, $$ and `ls -a /` from one shared container run. */
  probe(): Promise<Probe>;
}

export interface Probe {
  hostname: string;
  pid: string;
  rootListing: string[];
  result: RunResult;
}

/** A failed check: expected vs actual, and the command that shows it by hand. */
export class CheckFailure extends Error {
  constructor(what: string, expected: string, actual: string, result?: RunResult) {
    const lines = [`expected ${what} ${expected}, got ${actual}`];
    if (result) {
      if (result.stderr.trim()) lines.push(`stderr: ${result.stderr.trim().split('\n').slice(0, 6).join('\n        ')}`);
      lines.push(`reproduce: ${result.reproduce}`);
    }
    super(lines.join('\n'));
    this.name = 'CheckFailure';
  }
}

function expectEqual(what: string, expected: string | number | null, actual: string | number | null, result?: RunResult): void {
  if (expected !== actual) throw new CheckFailure(what, JSON.stringify(expected), JSON.stringify(actual), result);
}

/** The command exited 0; otherwise fail with what it printed. */
function expectSuccess(result: RunResult): void {
  expectEqual('exit status', 0, result.status, result);
}

const PROBE_SCRIPT = 'hostname; echo $$; ls -a /';

/** `defaults` apply to every container of this context (e.g. asUser, for the rootless suite). */
export function makeContext(step: Step, target: Target, defaults: RunOptions = {}): CheckContext {
  let probe: Promise<Probe> | undefined;
  const run = (command: string[], options?: RunOptions) => runContainer(step, target, command, { ...defaults, ...options });
  return {
    step,
    target,
    run,
    probe() {
      probe ??= run(['sh', '-c', PROBE_SCRIPT]).then((result) => {
        expectSuccess(result);
        const [hostname = '', pid = '', ...rootListing] = lines(result.stdout);
        return { hostname, pid, rootListing, result };
      });
      return probe;
    },
  };
}

export const CHECKS: Check[] = [
  // Step 1: exec
  {
    step: 1,
    name: 'runs the command and passes its output through',
    hint: 'The child must execvp(command[0], command): argv[0] is the program name, and the array ends with NULL (lib/libc.ts builds it).',
    async run({ run }) {
      const result = await run(['echo', 'hello from the container']);
      expectEqual('output', 'hello from the container\n', result.stdout, result);
      expectSuccess(result);
    },
  },
  {
    step: 1,
    name: "exits with the command's own exit status",
    hint: "The parent returns spawnChild()'s promise: the child's exit status becomes the runtime's.",
    async run({ run }) {
      const result = await run(['sh', '-c', 'exit 3']);
      expectEqual('exit status', 3, result.status, result);
    },
  },
  {
    step: 1,
    name: 'stdin reaches the command',
    hint: 'Node opens stdio close-on-exec: the child must clear FD_CLOEXEC on fds 0-2 before execvp (execvp in lib/libc.ts does).',
    async run({ run }) {
      const result = await run(['cat'], { input: 'typed into the container\n' });
      expectEqual('output', 'typed into the container\n', result.stdout, result);
    },
  },
  {
    step: 1,
    name: 'a command that does not exist exits 127 with an explanation',
    hint: 'execvp fails with ENOENT: the runtime reports it and exits 127, like a shell.',
    async run({ run }) {
      const result = await run(['no-such-command-here']);
      expectEqual('exit status', 127, result.status, result);
      if (!/not found/i.test(result.stderr)) throw new CheckFailure('an explanation on stderr', 'mentioning "not found"', JSON.stringify(result.stderr), result);
      if (/\n\s+at /.test(result.stderr)) throw new CheckFailure('stderr', 'without a stack trace', JSON.stringify(result.stderr), result);
    },
  },

  // Step 2: UTS namespace
  {
    step: 2,
    name: 'the hostname inside is "container"',
    hint: 'unshare(CLONE_NEWUTS) in the parent before spawnChild(), then sethostname(container.hostname) in the child before execvp.',
    async run({ probe }) {
      const { hostname, result } = await probe();
      expectEqual('hostname', 'container', hostname, result);
    },
  },
  {
    step: 2,
    name: "the host's hostname is unchanged",
    hint: 'If the host got renamed, sethostname ran in the host UTS namespace: unshare(CLONE_NEWUTS) must come before spawnChild().',
    async run({ probe }) {
      const before = hostHostname();
      await probe();
      expectEqual("host's hostname after the run", before, hostHostname());
    },
  },
  {
    step: 2,
    name: '--hostname NAME sets another hostname',
    hint: 'The child should use container.hostname, not a hard-coded name.',
    async run({ run }) {
      const result = await run(['hostname'], { options: ['--hostname', 'pod-7'] });
      expectEqual('hostname', 'pod-7\n', result.stdout, result);
    },
  },

  // Step 3: PID namespace
  {
    step: 3,
    name: 'the command is PID 1',
    hint: 'unshare(CLONE_NEWUTS | CLONE_NEWPID) in the parent: the next process it spawns is PID 1 of the new namespace, and execvp keeps the pid.',
    async run({ probe }) {
      const { pid, result } = await probe();
      expectEqual('$$ inside', '1', pid, result);
    },
  },

  // Step 4: mount namespace + pivot_root
  {
    step: 4,
    name: '/ is the rootfs',
    hint: 'Bind-mount the rootfs onto itself, chdir into it, pivotRoot(".", "."), umount2(".", MNT_DETACH), chdir("/").',
    async run({ probe }) {
      const { rootListing, result } = await probe();
      const expected = ['.', '..', ...readdirSync(DEFAULT_ROOTFS)].sort();
      expectEqual('`ls -a /`', expected.join(' '), [...rootListing].sort().join(' '), result);
    },
  },
  {
    step: 4,
    name: "the host's files are unreachable",
    hint: 'After pivot_root the old root is still mounted at "." until umount2(".", MNT_DETACH) detaches it.',
    async run({ run }) {
      const marker = `${tmpdir()}/cfs-host-only-${randomBytes(4).toString('hex')}`;
      writeFileSync(marker, 'host');
      try {
        const result = await run(['sh', '-c', `test -e ${marker} && echo visible || echo hidden`]);
        expectEqual(`a host file (${marker}) inside`, 'hidden\n', result.stdout, result);
      } finally {
        rmSync(marker, { force: true });
      }
    },
  },
  {
    step: 4,
    name: 'ps shows only the container, the command as PID 1',
    hint: 'Mount a new proc on <rootfs>/proc in the child (it is in the new PID namespace) before pivot_root.',
    async run({ run }) {
      const result = await run(['sh', '-c', 'ps -e -o pid=,comm=']);
      expectSuccess(result);
      const processes = lines(result.stdout).map((line) => line.trim().replace(/\s+/, ' '));
      const onlyTheContainer = processes.length === 2 && processes.includes('1 sh') && processes.some((p) => /^\d+ ps$/.test(p));
      if (!onlyTheContainer) throw new CheckFailure('`ps -e` inside to list', '"1 sh" and ps itself', processes.join(', '), result);
    },
  },
  {
    step: 4,
    name: '/dev has the usual devices',
    hint: 'mountMinimalDev(rootfs) before pivot_root: a tmpfs on /dev with null, zero, full, random, urandom and tty bound from the host.',
    async run({ run }) {
      const result = await run(['sh', '-c', 'echo discarded > /dev/null && head -c 4 /dev/zero | wc -c && ls /dev']);
      expectSuccess(result);
      const [zeros, ...devices] = lines(result.stdout);
      expectEqual('bytes read from /dev/zero', '4', zeros?.trim() ?? '', result);
      for (const device of ['null', 'zero', 'full', 'random', 'urandom', 'tty']) {
        if (!devices.includes(device)) throw new CheckFailure('/dev to contain', device, devices.join(' '), result);
      }
    },
  },
  {
    step: 4,
    name: "no mount appears on the host and rootfs/ is untouched",
    hint: "Make / private (mount('none', '/', '', MS_REC | MS_PRIVATE)) in the child's own mount namespace (unshare(CLONE_NEWNS) in the child) before mounting anything.",
    async run({ run }) {
      const mountsBefore = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length;
      const rootfsBefore = readdirSync(DEFAULT_ROOTFS).sort().join(' ');
      const result = await run(['true']);
      expectSuccess(result);
      expectEqual('number of host mounts after the run', mountsBefore, readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length, result);
      expectEqual('rootfs/ listing after the run', rootfsBefore, readdirSync(DEFAULT_ROOTFS).sort().join(' '), result);
    },
  },
];

export function checksUpTo(step: number): Check[] {
  return CHECKS.filter((check) => check.step <= step);
}
