// Every behaviour the workshop checks, once, with the step that introduces it.
// A step's test suite runs the checks of that step and of every step before
// it; `npm run check N` runs the same checks on the participant's file and
// shows each check's hint when it fails.
import { randomBytes } from 'node:crypto';
import { hostname as hostHostname, tmpdir } from 'node:os';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { capabilitiesIn, dangerousCapabilities } from '../lib/container/capabilities.js';
import { CGROUP_PARENT, Cgroup, cgroupLayout } from '../lib/container/cgroups.js';
import { layersOf } from '../lib/container/overlay.js';
import { generatedId } from '../lib/container/stale.js';
import { DEFAULT_ROOTFS } from '../lib/paths.js';
import { hostProcesses, lines, runContainer, waitFor, type RunOptions, type RunResult, type Target } from './harness.js';
import type { Step } from './steps.js';

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
  /** One container run shared by the checks that ask for the same `name` (each run costs two node starts). */
  once(name: string, command: string[], options?: RunOptions): Promise<RunResult>;
}

export interface Probe {
  hostname: string;
  pid: string;
  rootListing: string[];
  /** The host's mount table, and the listing of rootfs/, just before and just after the run. */
  hostMountsBefore: string;
  hostMountsAfter: string;
  rootfsBefore: string;
  rootfsAfter: string;
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

/** A long list, cut for a one-line message. */
function summarize(items: string[], shown = 8): string {
  const head = items.slice(0, shown).join(', ');
  return items.length > shown ? `${head}, … (${items.length} in all)` : head;
}

/** The pid of a process that has exited (for fake leftovers of a killed run). */
function deadPid(): number {
  const { pid } = spawnSync('true');
  if (pid === undefined) throw new Error('could not start `true`');
  return pid;
}

/** The interface names in /proc/net/dev ("  eth0: 1234 ..." after two header lines). */
function interfacesIn(procNetDev: string): string[] {
  return lines(procNetDev)
    .slice(2)
    .map((line) => line.split(':')[0]?.trim() ?? '')
    .filter(Boolean);
}

const PROBE_SCRIPT = 'hostname; echo $$; ls -a /';

/** `defaults` apply to every container of this context (e.g. asUser, for the rootless suite). */
export function makeContext(step: Step, target: Target, defaults: RunOptions = {}): CheckContext {
  const shared = new Map<string, Promise<RunResult>>();
  let probe: Promise<Probe> | undefined;
  const run = (command: string[], options?: RunOptions) => runContainer(step, target, command, { ...defaults, ...options });
  const once = (name: string, command: string[], options?: RunOptions): Promise<RunResult> => {
    if (!shared.has(name)) shared.set(name, run(command, options));
    return shared.get(name)!;
  };
  return {
    step,
    target,
    run,
    once,
    probe() {
      probe ??= (async () => {
        const rootfsListing = () => readdirSync(DEFAULT_ROOTFS).sort().join(' ');
        const [hostMountsBefore, rootfsBefore] = [readFileSync('/proc/self/mountinfo', 'utf8'), rootfsListing()];
        const result = await run(['sh', '-c', PROBE_SCRIPT]);
        const [hostMountsAfter, rootfsAfter] = [readFileSync('/proc/self/mountinfo', 'utf8'), rootfsListing()];
        expectSuccess(result);
        const [hostname = '', pid = '', ...rootListing] = lines(result.stdout);
        return { hostname, pid, rootListing, hostMountsBefore, hostMountsAfter, rootfsBefore, rootfsAfter, result };
      })();
      return probe;
    },
  };
}

/** Step 1's checks share one run: output, stdin and the exit status of one command. */
const HELLO = 'hello from the container\n';
const TYPED = 'typed into the container\n';
function basicRun(context: CheckContext): Promise<RunResult> {
  return context.once('basic', ['sh', '-c', `printf '${HELLO.trim()}\\n'; cat; exit 3`], { input: TYPED });
}

export const CHECKS: Check[] = [
  // Step 1: exec
  {
    step: 1,
    name: 'runs the command and passes its output through',
    hint: 'The child must execvp(command[0], command): argv[0] is the program name, and the array ends with NULL (lib/kernel/libc.ts builds it).',
    async run(context) {
      const result = await basicRun(context);
      expectEqual('first line of output', HELLO, result.stdout.slice(0, HELLO.length), result);
    },
  },
  {
    step: 1,
    name: "exits with the command's own exit status",
    hint: "The parent returns spawnChild()'s promise: the child's exit status becomes the runtime's.",
    async run(context) {
      const result = await basicRun(context);
      expectEqual('exit status', 3, result.status, result);
    },
  },
  {
    step: 1,
    name: 'stdin reaches the command',
    hint: 'Node opens stdio close-on-exec: the child must clear FD_CLOEXEC on fds 0-2 before execvp (execvp in lib/kernel/libc.ts does).',
    async run(context) {
      const result = await basicRun(context);
      expectEqual('output (what `cat` read from stdin after the first line)', TYPED, result.stdout.slice(HELLO.length), result);
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
    name: 'the old root is detached: only the container\'s own mounts are left',
    hint: "After pivotRoot('.', '.'), the host's root sits on top of the new one: umount2('.', MNT_DETACH) detaches it, and every host mount with it.",
    async run({ run }) {
      const result = await run(['cat', '/proc/self/mountinfo']);
      expectSuccess(result);
      const mountPoints = lines(result.stdout).map((line) => line.split(' ')[4] ?? '');
      const roots = mountPoints.filter((point) => point === '/').length;
      const foreign = mountPoints.filter((point) => point !== '/' && !/^\/(proc|dev|sys)(\/|$)/.test(point));
      if (roots !== 1 || foreign.length > 0) {
        throw new CheckFailure('mount points inside', 'one "/" and mounts under /proc, /dev and /sys only', summarize(mountPoints), result);
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
      if (!onlyTheContainer) throw new CheckFailure('`ps -e` inside to list', '"1 sh" and ps itself', summarize(processes), result);
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
    async run({ probe }) {
      const { hostMountsBefore, hostMountsAfter, rootfsBefore, rootfsAfter, result } = await probe();
      const count = (mountinfo: string) => lines(mountinfo).length;
      expectEqual('number of host mounts after the run', count(hostMountsBefore), count(hostMountsAfter), result);
      expectEqual('rootfs/ listing after the run', rootfsBefore, rootfsAfter, result);
    },
  },
  // Step 5: cgroups
  {
    step: 5,
    name: 'a fork bomb stops at --pids-max, and leaves no process behind',
    hint:
      'The parent creates the cgroup and writes pids.max (createCgroup, limitPids) before spawning; the child joins it ' +
      '(existingCgroup(container.id).join()) before execvp. Processes outside the cgroup are not counted.',
    async run({ run }) {
      const sleep = `30.${randomBytes(3).readUIntBE(0, 3)}`; // a duration no other process uses
      const result = await run(['sh', '-c', `for i in $(seq 50); do sleep ${sleep} & echo started; done`], {
        options: ['--pids-max', '20'],
        timeoutMs: 45_000, // bash as sh retries a failed fork for 15 s; dash and busybox give up at once
      });
      const started = lines(result.stdout).filter((line) => line === 'started').length;
      if (started >= 20) {
        throw new CheckFailure('the number of `sleep`s a loop of 50 could start under --pids-max 20 to be', 'under 20 (the shell counts too)', `${started}: no limit`, result);
      }
      if (!/fork|resource temporarily unavailable/i.test(result.stderr)) {
        throw new CheckFailure('the shell to report', 'a failed fork', JSON.stringify(result.stderr), result);
      }
      const left = hostProcesses(['sleep', sleep]).length;
      if (left > 0) throw new CheckFailure(`\`sleep ${sleep}\` processes on the host after the run`, 'none', String(left), result);
    },
  },
  {
    step: 5,
    name: 'a process allocating past --memory is killed (exit 137), one under it is not',
    hint:
      'limitMemory(parseSize(container.memory)) in the parent, and the child must be in the cgroup (join) before execvp. ' +
      'The OOM killer sends SIGKILL: 128 + 9 = 137.',
    async run({ run }) {
      // dd allocates one buffer of bs bytes, and fills it from /dev/zero.
      const [over, under] = await Promise.all([
        run(['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'], { options: ['--memory', '32M'] }),
        run(['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=8M', 'count=1'], { options: ['--memory', '32M'] }),
      ]);
      expectEqual('dd with a 64M buffer under --memory 32M to be OOM-killed: exit status', 137, over.status, over);
      expectEqual('dd with an 8M buffer under --memory 32M to succeed: exit status', 0, under.status, under);
    },
  },
  {
    step: 5,
    name: 'the command runs in a cgroup of its own, named after the container id',
    hint: 'The child joins with existingCgroup(container.id).join(), first thing: it writes "0" (itself) to cgroup.procs in every hierarchy.',
    async run({ run }) {
      const id = generatedId('cfs-check'); // cfs-check-<our pid>-…: a later run removes what a killed check left
      const result = await run(['cat', '/proc/self/cgroup'], { options: ['--id', id] });
      expectSuccess(result);
      const layout = cgroupLayout();
      const wanted = layout.version === 2 ? [''] : ['pids', 'memory'];
      for (const controller of wanted) {
        const line = lines(result.stdout).find((l) => l.split(':')[1]?.split(',').includes(controller));
        const expected = `/${CGROUP_PARENT}/${id}`;
        if (!line?.endsWith(`:${expected}`)) {
          throw new CheckFailure(`the ${controller || 'cgroup v2'} line of /proc/self/cgroup inside`, `to end with ${expected}`, JSON.stringify(line ?? ''), result);
        }
      }
    },
  },
  {
    step: 5,
    name: "no cgroup is left behind, nor one of a killed run",
    hint:
      'After spawnChild() resolves, `await cgroup.remove()`; before creating the cgroup, `await removeStaleCgroups()` ' +
      'removes those whose runtime pid (cfs-<pid>-…) no longer exists.',
    async run({ run }) {
      const layout = cgroupLayout();
      const stale = new Cgroup(layout, `cfs-${deadPid()}-${randomBytes(2).toString('hex')}`);
      for (const folder of stale.folders) mkdirSync(folder, { recursive: true });
      const id = generatedId('cfs-check');
      try {
        const result = await run(['true'], { options: ['--id', id] });
        expectSuccess(result);
        for (const folder of new Cgroup(layout, id).folders) {
          if (existsSync(folder)) throw new CheckFailure(`${folder} after the run`, 'to be removed', 'it is still there', result);
        }
        for (const folder of stale.folders) {
          if (existsSync(folder)) throw new CheckFailure(`${folder} (a killed run's cgroup: its pid is gone) after a new run`, 'to be removed', 'it is still there', result);
        }
      } finally {
        await stale.remove(100);
      }
    },
  },

  // Step 6: overlay filesystem
  {
    step: 6,
    name: 'a file written inside is gone after exit, and never appears in rootfs/',
    hint:
      "The child mounts an overlay (mount('overlay', layers.merged, 'overlay', 0, overlayOptions(container, layers))) " +
      'and makes layers.merged the new root instead of bind-mounting the rootfs: writes then go to the upper layer.',
    async run({ run }) {
      const file = `/tmp/cfs-written-${randomBytes(4).toString('hex')}`;
      try {
        const first = await run(['sh', '-c', `echo hi > ${file} && cat ${file}`]);
        expectEqual('output of writing and reading a file inside', 'hi\n', first.stdout, first);
        if (existsSync(DEFAULT_ROOTFS + file)) throw new CheckFailure(`rootfs${file} on the host`, 'not to exist', 'the container wrote it into rootfs/', first);
        const second = await run(['sh', '-c', `test -e ${file} && echo still there || echo gone`]);
        expectEqual(`${file} in the next container`, 'gone\n', second.stdout, second);
      } finally {
        rmSync(DEFAULT_ROOTFS + file, { force: true });
      }
    },
  },
  {
    step: 6,
    name: "two containers running at once don't see each other's files",
    hint: 'Each container needs its own upper layer: createLayers(container.id) in the parent, layersOf(container.id) in the child.',
    async run({ run }) {
      const id = generatedId('cfs-check');
      const file = `/tmp/cfs-mine-${randomBytes(4).toString('hex')}`;
      let readerDone = (): void => {};
      const holdStdinUntil = new Promise<void>((resolve) => (readerDone = resolve));
      // The writer writes, then waits on stdin until the reader has looked.
      const writer = run(['sh', '-c', `echo mine > ${file}; read _`], { options: ['--id', id], holdStdinUntil });
      try {
        // Wait until it is written: in the writer's upper layer (or, without an overlay, in rootfs/).
        const written = await waitFor(() => existsSync(layersOf(id).upper + file) || existsSync(DEFAULT_ROOTFS + file), 10_000);
        if (!written) throw new CheckFailure(`the first container to write ${file}`, 'within 10 s', 'nothing written', await writer);
        const reader = await run(['sh', '-c', `test -e ${file} && echo visible || echo hidden`]);
        expectEqual(`${file}, written by another running container, in this one`, 'hidden\n', reader.stdout, reader);
      } finally {
        readerDone();
        await writer;
        rmSync(DEFAULT_ROOTFS + file, { force: true });
      }
    },
  },
  {
    step: 6,
    name: "deleting a rootfs file inside doesn't delete it on the host",
    hint: 'Deleting a lower-layer file inside an overlay only records a "whiteout" in the upper layer: mount the overlay instead of bind-mounting the rootfs.',
    async run({ run }) {
      const file = `/tmp/cfs-keep-${randomBytes(4).toString('hex')}`;
      writeFileSync(DEFAULT_ROOTFS + file, 'keep');
      try {
        const result = await run(['sh', '-c', `rm ${file} && test ! -e ${file} && echo deleted`]);
        expectEqual(`output of deleting ${file} inside`, 'deleted\n', result.stdout, result);
        if (!existsSync(DEFAULT_ROOTFS + file)) throw new CheckFailure(`rootfs${file} on the host after \`rm\` inside`, 'to still exist', 'it was deleted', result);
      } finally {
        rmSync(DEFAULT_ROOTFS + file, { force: true });
      }
    },
  },
  {
    step: 6,
    name: 'no overlay folder is left behind, nor one of a killed run',
    hint:
      'removeLayers(container.id) after the child exits; removeStaleLayers() before createLayers() removes the folders ' +
      'whose runtime pid (cfs-<pid>-…) no longer exists.',
    async run({ run }) {
      const stale = layersOf(`cfs-${deadPid()}-${randomBytes(2).toString('hex')}`);
      mkdirSync(stale.upper, { recursive: true });
      const id = generatedId('cfs-check');
      try {
        const result = await run(['true'], { options: ['--id', id] });
        expectSuccess(result);
        if (existsSync(layersOf(id).dir)) throw new CheckFailure(`${layersOf(id).dir} after the run`, 'to be removed', 'it is still there', result);
        if (existsSync(stale.dir)) throw new CheckFailure(`${stale.dir} (a killed run's layers: its pid is gone) after a new run`, 'to be removed', 'it is still there', result);
      } finally {
        rmSync(stale.dir, { recursive: true, force: true });
      }
    },
  },

  // Step 7: network namespace
  {
    step: 7,
    name: "the only network interface is lo: none of the host's is visible",
    hint: 'unshare(CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWNET) in the parent: the child is born in the new network namespace, which only has lo.',
    async run({ run }) {
      const result = await run(['cat', '/proc/net/dev']);
      expectSuccess(result);
      const inside = interfacesIn(result.stdout);
      if (inside.join(' ') !== 'lo') {
        const host = interfacesIn(readFileSync('/proc/net/dev', 'utf8'));
        throw new CheckFailure('interfaces in /proc/net/dev inside', '"lo" only', `${JSON.stringify(inside.join(' '))} (the host has ${host.join(' ')})`, result);
      }
    },
  },
  {
    step: 7,
    name: 'lo is UP',
    hint:
      "In the child: socket(AF_INET, SOCK_DGRAM, 0), then setInterfaceFlags(fd, 'lo', getInterfaceFlags(fd, 'lo') | IFF_UP). " +
      "To see it, /sys must be a sysfs mounted in the new network namespace: mount('sysfs', `${root}/sys`, 'sysfs', MS_RDONLY | ...).",
    async run({ run }) {
      const result = await run(['cat', '/sys/class/net/lo/flags']);
      expectSuccess(result);
      const flags = Number.parseInt(result.stdout.trim(), 16);
      if (!(flags & 1)) throw new CheckFailure('/sys/class/net/lo/flags inside', 'to include IFF_UP (0x1)', JSON.stringify(result.stdout.trim()), result);
    },
  },

  // Step 8: capabilities
  {
    step: 8,
    name: '`hostname foo` fails with EPERM (Operation not permitted)',
    hint: 'Drop CAP_SYS_ADMIN (with the others of dangerousCapabilities()) from the bounding set with prctl(PR_CAPBSET_DROP, …) just before execvp.',
    async run({ run }) {
      const result = await run(['sh', '-c', 'hostname foo; echo "status $?"; hostname']);
      const [status = '', name = ''] = lines(result.stdout);
      if (status === 'status 0') throw new CheckFailure('`hostname foo` inside', 'to fail', 'it worked', result);
      expectEqual('hostname after the attempt', 'container', name, result);
      // sethostname() fails with EPERM; the hostname program words it its own way.
      if (!/not permitted|must be root/i.test(result.stderr)) throw new CheckFailure('the error', 'to be EPERM (not permitted)', JSON.stringify(result.stderr), result);
    },
  },
  {
    step: 8,
    name: '`mount -t tmpfs x /tmp` fails with EPERM (Operation not permitted)',
    hint: 'mount(2) needs CAP_SYS_ADMIN: drop it from the bounding set after the runtime\'s own mounts (pivot_root, /proc…), right before execvp.',
    async run({ run }) {
      const result = await run(['sh', '-c', 'mount -t tmpfs x /tmp; echo "status $?"; cat /proc/mounts']);
      const [status = '', ...mounts] = lines(result.stdout);
      if (status === 'status 0' || mounts.some((line) => line.split(' ')[1] === '/tmp')) {
        throw new CheckFailure('`mount -t tmpfs x /tmp` inside', 'to fail', 'it mounted', result);
      }
      // mount(2) fails with EPERM; util-linux's mount words it "permission denied".
      if (!/not permitted|permission denied|must be superuser/i.test(result.stderr)) throw new CheckFailure('the error', 'to be EPERM', JSON.stringify(result.stderr), result);
    },
  },
  {
    step: 8,
    name: 'the dangerous capabilities are gone from the bounding and effective sets',
    hint: 'for (const capability of dangerousCapabilities()) prctl(PR_CAPBSET_DROP, capability.number, …), in the child, after the mounts and before execvp.',
    async run({ run }) {
      const result = await run(['cat', '/proc/self/status']);
      expectSuccess(result);
      const dangerous = new Set(dangerousCapabilities().map((capability) => capability.name));
      for (const set of ['CapBnd', 'CapEff']) {
        const mask = new RegExp(`^${set}:\\s*([0-9a-f]+)$`, 'm').exec(result.stdout)?.[1] ?? '0';
        const kept = capabilitiesIn(mask).filter((name) => dangerous.has(name));
        if (kept.length > 0) throw new CheckFailure(`${set} inside`, 'without the dangerous capabilities', `it still has ${kept.join(', ')}`, result);
      }
    },
  },
  {
    step: 8,
    name: '/proc/sys is read-only: root cannot change kernel settings through it',
    hint:
      "Files in /proc/sys only check permissions, which uid 0 passes without capabilities. Bind-mount /proc/sys onto itself, then " +
      "remount it read-only: mount(path, path, '', MS_BIND), then mount(path, path, '', MS_BIND | MS_REMOUNT | MS_RDONLY | ...).",
    async run({ run }) {
      const result = await run(['sh', '-c', 'echo foo > /proc/sys/kernel/hostname; hostname']);
      expectEqual('hostname after writing /proc/sys/kernel/hostname', 'container\n', result.stdout, result);
      if (!/read-only/i.test(result.stderr)) throw new CheckFailure('the error', 'to say "Read-only file system"', JSON.stringify(result.stderr), result);
    },
  },
  {
    step: 8,
    name: 'ordinary commands still work',
    hint: 'Only drop the capabilities listed by dangerousCapabilities(): a container still needs to write files, read /proc, kill its own processes.',
    async run({ run }) {
      const result = await run(['sh', '-c', 'echo ok > /tmp/f && cat /tmp/f && id -u && kill -0 1 && ls / > /dev/null && echo done']);
      expectEqual('output', 'ok\n0\ndone\n', result.stdout, result);
      expectSuccess(result);
    },
  },

];

export function checksUpTo(step: number): Check[] {
  return CHECKS.filter((check) => check.step <= step);
}
