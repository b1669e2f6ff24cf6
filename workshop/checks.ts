// Every behaviour the workshop checks, once, with the step that introduces it.
// A step's test suite runs the checks of that step and of every step before
// it; `npm run check N` runs the same checks on the participant's file.
//
// Containers are what costs time, so the checks share them. One "main"
// container runs a shell script made of one section per check that only
// needs to look at something (the hostname, PID 1, the root listing, /dev,
// the capabilities…), in an order where nothing a section does disturbs the
// next; a handful of other containers cover what needs options of its own
// (--hostname, --pids-max/--memory), a failing exec, or a second container
// running at the same time. Every run goes through the harness's sandbox
// (harness.ts): what a run did to the host is a finding of the checks that
// own it ("the host's hostname is unchanged", …), explained from the run's
// own kernel calls (diagnoses.ts).
import { randomBytes } from 'node:crypto';
import { hostname as hostHostname, tmpdir } from 'node:os';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { capabilitiesIn, dangerousCapabilities } from '../lib/container/capabilities.js';
import { MASKED_PATHS, READONLY_PATHS } from '../lib/container/kernel-files.js';
import { CLONE_NEWUSER, syscallNumberOn } from '../lib/kernel/constants.js';
import { printfFormat, syscallProbe } from './syscall-probe.js';
import { CGROUP_PARENT, Cgroup, cgroupLayout } from '../lib/container/cgroups.js';
import { LAYERS_PARENT, layersOf } from '../lib/container/overlay.js';
import { DEFAULT_ROOTFS, REPO_ROOT } from '../lib/paths.js';
import { ensureDefaultRootfs } from '../rootfs-builder/build.js';
import { childrenOf, hostProcesses, lines, namespaceOf, reproduceCommand, runContainer, type RunOptions, type RunResult, type Target } from './harness.js';
import { hostnameCause, mountDamage, parentCgroupCause, parentMountNamespaceCause } from './diagnoses.js';
import { parseMountinfoLine } from './sandbox.js';
import { generatedId, idNaming } from '../lib/container/stale.js';
import type { Step } from './steps.js';

export interface Check {
  /** The step that introduces this behaviour. */
  step: number;
  name: string;
  /**
   * What the failure means, at the level of the concept (never the code):
   * `npm run check` shows it; `npm run hint` starts from it and gets more specific.
   */
  hint: string;
  /** The TODOs of its step it is about: a word or phrase of each TODO's task line. */
  todos: string[];
  run(context: CheckContext): Promise<void>;
}

/** A failed check: what was expected, what happened, and the run that shows it. */
export class CheckFailure extends Error {
  constructor(
    readonly detail: string[],
    readonly result?: RunResult,
    /** The step changed the host (in its sandbox): reported before anything else. */
    readonly damage = false,
  ) {
    super(detail.join('\n'));
    this.name = 'CheckFailure';
  }

  static expected(what: string, expected: string, actual: string, result?: RunResult): CheckFailure {
    return new CheckFailure([`expected ${what} ${expected}, got ${actual}`], result);
  }
}

function expectEqual(what: string, expected: string | number | null, actual: string | number | null, result?: RunResult): void {
  if (expected !== actual) throw CheckFailure.expected(what, JSON.stringify(expected), JSON.stringify(actual), result);
}

/** The command exited 0; otherwise fail with what it printed. */
function expectSuccess(result: RunResult): void {
  expectEqual('exit status', 0, result.status, result);
}

/** A long list, cut for a one-line message. */
function summarize(items: string[], shown = 6): string {
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

// ── The main container: one section per check that only looks ──────────────

/** One section's output: what the section's command printed, and its exit status. */
export interface Section {
  stdout: string;
  stderr: string;
  status: number | undefined;
}

export interface MainRun {
  result: RunResult;
  /** By section name; a section that never ran is missing. */
  sections: Map<string, Section>;
  /** What the runtime printed outside the sections (its own errors, warnings). */
  runtimeStderr: string;
  /** Found while the container ran (step ≥ 4): where the runtime's own process is. */
  runtime: { found: boolean; ownMountNamespace?: boolean; inContainerCgroup?: boolean };
  /** Step ≥ 6: a second container, run while this one still runs. */
  reader?: RunResult;
  paths: { hostOnly: string; written: string; kept: string };
  rootfsBefore: string;
  rootfsAfter: string;
  /** Step ≥ 6: did the file written inside land in rootfs/, and did the rm inside delete rootfs/'s file? */
  writtenInRootfs: boolean;
  keptGone: boolean;
  /** The fake leftovers of a killed run made before it (step ≥ 5 / 6): still there after it? */
  staleCgroupLeft?: string;
  staleLayersLeft?: string;
}

const HELLO = 'hello from the container\n';
const TYPED = 'typed into the container\n';
const MARK = '@@cfs';
const READY = `\n${MARK} ready\n`;

interface SectionDefinition {
  step: number;
  name: string;
  command: (paths: MainRun['paths']) => string;
  /** After the container was held (and looked at) while running. */
  afterHold?: boolean;
}

const SECTIONS: SectionDefinition[] = [
  { step: 1, name: 'hello', command: () => `printf '${HELLO.trim()}\\n'` },
  { step: 1, name: 'stdin', command: () => `IFS= read -r line; printf '%s\\n' "$line"` },
  { step: 2, name: 'hostname', command: () => 'hostname' },
  { step: 3, name: 'pid', command: () => 'echo $$' },
  { step: 4, name: 'root', command: () => 'ls -a /' },
  { step: 4, name: 'host-file', command: ({ hostOnly }) => `test -e ${hostOnly} && echo visible || echo hidden` },
  { step: 4, name: 'mountinfo', command: () => 'cat /proc/self/mountinfo' },
  { step: 4, name: 'ps', command: () => 'ps -e -o pid=,comm=' },
  // /dev/zero is only read once it is a character device: the checks never write into rootfs/dev.
  { step: 4, name: 'dev', command: () => 'if test -c /dev/zero; then head -c 4 /dev/zero | wc -c; else echo none; fi; ls /dev' },
  { step: 5, name: 'cgroup', command: () => 'cat /proc/self/cgroup' },
  { step: 6, name: 'write', command: ({ written }) => `echo hi > ${written} && cat ${written}` },
  { step: 6, name: 'delete', command: ({ kept }) => `rm ${kept} && test ! -e ${kept} && echo deleted` },
  { step: 7, name: 'net-dev', command: () => 'cat /proc/net/dev' },
  { step: 7, name: 'lo-flags', command: () => 'cat /sys/class/net/lo/flags' },
  { step: 8, name: 'status', command: () => 'cat /proc/self/status' },
  { step: 8, name: 'ordinary', command: () => 'echo ok > /tmp/f && cat /tmp/f && id -u && kill -0 1 && ls / > /dev/null && echo done' },
  // Sections that would change the container if the step let them: last.
  { step: 8, name: 'sethostname', command: () => 'hostname foo; echo "status $?"; hostname', afterHold: true },
  { step: 8, name: 'procsys', command: () => 'echo foo > /proc/sys/kernel/hostname; hostname', afterHold: true },
  { step: 8, name: 'mount', command: () => 'mount -t tmpfs x /tmp; echo "status $?"; cat /proc/mounts', afterHold: true },
];

/** The main container is looked at while it runs from step 4 on (where the runtime's own process is). */
const HOLD_FROM_STEP = 4;

function sectionScript(definitions: SectionDefinition[], paths: MainRun['paths'], hold: boolean): string {
  const out = [`s() { printf '\\n${MARK} %s\\n' "$1"; printf '\\n${MARK} %s\\n' "$1" >&2; }`, `e() { printf '\\n${MARK}-end %s\\n' "$1"; }`];
  const section = (d: SectionDefinition) => out.push(`s ${d.name}; { ${d.command(paths)}; }; e $?`);
  definitions.filter((d) => !d.afterHold).forEach(section);
  if (hold) out.push(`printf '${READY.replace(/\n/g, '\\n')}'; IFS= read -r _`);
  definitions.filter((d) => d.afterHold).forEach(section);
  out.push('exit 3');
  return out.join('\n');
}

/** Split a section script's stdout and stderr into sections. */
export function splitSections(stdout: string, stderr: string): { sections: Map<string, Section>; runtimeStderr: string } {
  const sections = new Map<string, Section>();
  const starts = [...stdout.matchAll(new RegExp(`\\n${MARK} ([\\w-]+)\\n`, 'g'))];
  for (const [index, start] of starts.entries()) {
    const name = start[1]!;
    if (name === 'ready') continue;
    const from = start.index! + start[0].length;
    const until = index + 1 < starts.length ? starts[index + 1]!.index! : stdout.length;
    const body = stdout.slice(from, until);
    const end = new RegExp(`\\n${MARK}-end (\\d+)\\n?$`).exec(body);
    sections.set(name, { stdout: end ? body.slice(0, end.index) : body, stderr: '', status: end ? Number(end[1]) : undefined });
  }
  const parts = stderr.split(new RegExp(`\\n${MARK} ([\\w-]+)\\n`));
  let runtimeStderr = parts[0] ?? '';
  for (let index = 1; index < parts.length; index += 2) {
    const section = sections.get(parts[index]!);
    if (section) section.stderr = parts[index + 1] ?? '';
    else runtimeStderr += parts[index + 1] ?? '';
  }
  // (What the runtime prints at exit, after the last section, ends up in that section's stderr.)
  return { sections, runtimeStderr };
}

// ── The context: the containers one check run shares ──────────────────────────

export interface CheckContext {
  step: Step;
  target: Target;
  /** Run a command in a container of this step (its result is kept for the host checks). */
  run(command: string[], options?: RunOptions): Promise<RunResult>;
  /** One container run shared by the checks that ask for the same `name`. */
  once(name: string, command: string[], options?: RunOptions): Promise<RunResult>;
  /** Like once, but started only once the main container has started its command (else: not started). */
  onceStarted(name: string, command: string[], options?: RunOptions): Promise<RunResult>;
  /** The main container of this step. */
  main(): Promise<MainRun>;
  /** One section of the main container; a CheckFailure when it never ran. */
  section(name: string): Promise<Section & { main: MainRun; result: RunResult }>;
  /** The containers that need options of their own. */
  hostnameOption(): Promise<RunResult>;
  notFound(): Promise<RunResult>;
  limits(): Promise<Limits>;
  /** Every container of this step's checks, once all have finished (the host checks look at all of them). */
  everyRun(): Promise<RunResult[]>;
  /** The host's hostname when the context was made. */
  hostHostname: string;
  /** The host's mounts that are this checkout's business (under the repository, rootfs/ or this process's layer folders), then. */
  hostMounts: string[];
}

export interface Limits {
  result: RunResult;
  sections: Map<string, Section>;
  sleep: string;
  sleepsLeft: number;
}

/** The main container never reached its sections: the container did not start. */
export class NotStarted extends CheckFailure {}

/** `defaults` apply to every container of this context (e.g. asUser, for the rootless suite). */
export function makeContext(step: Step, target: Target, defaults: RunOptions = {}): CheckContext {
  ensureDefaultRootfs(); // before anything lists rootfs/: a fresh clone has none yet
  const shared = new Map<string, Promise<RunResult>>();
  const all: Promise<RunResult>[] = [];
  const hostHostnameBefore = hostHostname();
  const hostMountsBefore = ourHostMounts();
  const run = (command: string[], options?: RunOptions): Promise<RunResult> => {
    const result = runContainer(step, target, command, { ...defaults, ...options });
    all.push(result.catch(() => undefined as never));
    return result;
  };
  const once = (name: string, command: string[], options?: RunOptions): Promise<RunResult> => {
    if (!shared.has(name)) shared.set(name, run(command, options));
    return shared.get(name)!;
  };
  let main: Promise<MainRun> | undefined;
  let limits: Promise<Limits> | undefined;
  // The other containers start once the main one has started its command: when it cannot start, one
  // message says why, and no CPU goes to containers that would fail the same way.
  let started = (_: boolean): void => {};
  const gate = new Promise<boolean>((resolve) => (started = resolve));
  const gated = (name: string, command: string[], options?: RunOptions): Promise<RunResult> =>
    (shared.get(name) ??
      shared.set(
        name,
        (async () => {
          void context.main();
          if (!(await gate)) throw notStarted(await context.main());
          return run(command, options);
        })(),
      ).get(name))!;
  const context: CheckContext = {
    step,
    target,
    run,
    once,
    onceStarted: (name, command, options) => gated(name, command, options),
    hostHostname: hostHostnameBefore,
    hostMounts: hostMountsBefore,
    main: () =>
      (main ??= mainRun(step, run, (stdout) => stdout.includes(`\n${MARK} `) && started(true)).finally(() => started(false))),
    async section(name) {
      const ran = await context.main();
      const section = ran.sections.get(name);
      if (!section) throw notStarted(ran);
      const definition = SECTIONS.find((d) => d.name === name)!;
      // The section on its own, as the participant can run it by hand.
      const result: RunResult = {
        ...ran.result,
        stderr: section.stderr + ran.runtimeStderr,
        reproduce: reproduceCommand(step, target, ['sh', '-c', definition.command(ran.paths)]),
      };
      return { ...section, main: ran, result };
    },
    // From step 5 on, the container of the limits has --hostname too: one container fewer.
    hostnameOption: () =>
      step.number >= 5
        ? context.limits().then((limits) => {
            const section = limitsSection(limits, 'hostname');
            return { ...limits.result, stdout: section.stdout, stderr: section.stderr, reproduce: reproduceCommand(step, target, ['--hostname', 'pod-7', 'hostname']) };
          })
        : gated('hostname-option', ['hostname'], { options: ['--hostname', 'pod-7'] }),
    notFound: () => gated('not-found', ['no-such-command-here']),
    limits: () => (limits ??= gate.then(async (ok) => (ok ? limitsRun(run) : Promise.reject(notStarted(await context.main()))))),
    async everyRun() {
      const started: Promise<unknown>[] = [context.main(), context.notFound()];
      if (step.number >= 2) started.push(context.hostnameOption());
      if (step.number >= 5) started.push(context.limits());
      await Promise.allSettled(started);
      // Runs started meanwhile (the reader of step 6 is started by the main container).
      let count = -1;
      while (count !== all.length) {
        count = all.length;
        await Promise.allSettled(all);
      }
      return (await Promise.all(all)).filter(Boolean);
    },
  };
  return context;
}

/** The main run, shown as the simple command that shows the same thing by hand. */
function view(context: CheckContext, main: MainRun, command: string[]): RunResult {
  return { ...main.result, stderr: main.runtimeStderr, reproduce: reproduceCommand(context.step, context.target, command) };
}

/** The mount table (/proc/self/mountinfo) by mount point: its per-mount options and file system type. */
function mountsIn(mountinfo: string): Map<string, { options: string[]; type: string }> {
  const mounts = new Map<string, { options: string[]; type: string }>();
  for (const line of lines(mountinfo)) {
    const [before = '', after = ''] = line.split(' - ');
    const fields = before.split(' ');
    mounts.set(fields[4] ?? '', { options: (fields[5] ?? '').split(','), type: after.split(' ')[0] ?? '' });
  }
  return mounts;
}

/**
 * Step 8's hardening, seen from inside, in one run: the mount table, which of
 * runc's paths this kernel has, and whether a device file planted in the rootfs
 * (a copy of /dev/null's numbers, char 1,3: harmless, but any disk's would do)
 * can be opened. Only root can plant one; without root the check reads the mount table only.
 */
interface HardeningProbe {
  result: RunResult;
  mounts: Map<string, { options: string[]; type: string }>;
  present: string[];
  planted: string | undefined;
  device: string;
  devNull: string;
}
const hardeningProbes = new WeakMap<CheckContext, Promise<HardeningProbe>>();
function hardeningProbe(context: CheckContext): Promise<HardeningProbe> {
  let probe = hardeningProbes.get(context);
  if (!probe) {
    probe = (async () => {
      const node = `/tmp/cfs-device-${randomBytes(4).toString('hex')}`;
      const planted = process.getuid?.() === 0 && spawnSync('mknod', [DEFAULT_ROOTFS + node, 'c', '1', '3']).status === 0 ? node : undefined;
      try {
        const paths = [...MASKED_PATHS, ...READONLY_PATHS].join(' ');
        const device = planted ? `(echo x > ${planted}) 2>/dev/null && echo usable || echo refused` : 'echo not-planted';
        const script = `cat /proc/self/mountinfo; echo ---; for p in ${paths}; do [ -e "$p" ] && echo "$p"; done; echo ---; ${device}; echo x > /dev/null && echo works`;
        // What a person would type to see the same (the device file is gone after the check).
        const byHand = 'grep -E " / | /proc| /sys" /proc/self/mountinfo; wc -c /proc/keys /proc/timer_list; test -w /proc/irq && echo writable';
        const result = { ...(await context.onceStarted('hardening', ['sh', '-c', script])), reproduce: reproduceCommand(context.step, context.target, ['sh', '-c', byHand]) };
        const [mountinfo = '', present = '', rest = ''] = result.stdout.split('---\n');
        const [deviceLine = '', devNull = ''] = lines(rest);
        return { result, mounts: mountsIn(mountinfo), present: lines(present), planted, device: deviceLine, devNull };
      } finally {
        if (planted) rmSync(DEFAULT_ROOTFS + planted, { force: true });
      }
    })();
    hardeningProbes.set(context, probe);
  }
  return probe;
}

/**
 * Step 9, seen from inside, in one run: the process's status, a setuid-root copy
 * of `id` run as uid 1000, and syscall probes (workshop/syscall-probe.ts), each
 * printing its errno (0: the syscall worked).
 */
const PROBES: ReadonlyArray<{ label: string; syscall: string; args: number[]; expected: number }> = [
  { label: 'keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING)', syscall: 'keyctl', args: [0, -4, 0], expected: 1 },
  { label: 'unshare(CLONE_NEWUSER)', syscall: 'unshare', args: [CLONE_NEWUSER], expected: 1 },
  { label: 'clone(CLONE_NEWUSER | SIGCHLD)', syscall: 'clone', args: [CLONE_NEWUSER | 17, 0, 0, 0, 0], expected: 1 },
  { label: 'clone3(NULL, 0)', syscall: 'clone3', args: [0, 0], expected: 38 },
  { label: 'getpid()', syscall: 'getpid', args: [], expected: 0 },
];
const ERRNO_LABELS: Record<number, string> = { 0: 'success', 1: 'EPERM', 22: 'EINVAL', 38: 'ENOSYS' };
const errnoLabel = (errno: number) => ERRNO_LABELS[errno] ?? `errno ${errno}`;

function seccompRun(context: CheckContext): Promise<RunResult> {
  const probes = PROBES.map(({ syscall, args }) => {
    const elf = syscallProbe(syscallNumberOn(syscall) ?? -1, args);
    return `probe ${syscall} '${printfFormat(elf)}'`;
  });
  // On x86_64, getpid through the 32-bit ABI (int 0x80, number 20): a filter that forgets the
  // architecture lets it through, since 20 is no syscall it denies. Only where the kernel has that
  // ABI (IA32 emulation, which /proc/sys/abi/vsyscall32 betrays): User-mode Linux, for one, has none.
  if (process.arch === 'x64' && existsSync('/proc/sys/abi/vsyscall32')) probes.push(`probe i386 '${printfFormat(syscallProbe(20, [], 'x64', { i386: true }))}'`);
  const script = [
    'grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status',
    'echo "uid_map $(cat /proc/self/uid_map)"',
    'cp "$(command -v id)" /tmp/cfs-suid-id && chmod 4755 /tmp/cfs-suid-id',
    'echo "setuid $(setpriv --reuid=1000 --regid=1000 --clear-groups /tmp/cfs-suid-id -u 2>&1)"',
    // One file per probe: a clone probe's child may still be running its own file.
    'probe() { printf "$2" > /tmp/cfs-probe-$1 && chmod +x /tmp/cfs-probe-$1 && /tmp/cfs-probe-$1; echo "probe $1 $?"; }',
    ...probes,
    'echo "pipeline $(echo through | cat)"',
  ].join('\n');
  // What a person would type to see the same (the probes are a few kilobytes of printf).
  const byHand = 'grep -E "NoNewPrivs|Seccomp" /proc/self/status; unshare -U true; keyctl show; echo ok | cat';
  const reproduce = reproduceCommand(context.step, context.target, ['sh', '-c', byHand]);
  return context.onceStarted('seccomp', ['sh', '-c', script]).then((result) => ({ ...result, reproduce }));
}

/** "Name:\tvalue" lines and "word rest" lines of the step-9 run. */
function field(output: string, name: string): string | undefined {
  const line = lines(output).find((l) => l.startsWith(`${name}:`) || l.startsWith(`${name} `));
  return line?.slice(name.length + 1).trim();
}

/** Any run, shown as `npm run step N -- true`, with only the runtime's own stderr. */
function simple(context: CheckContext, result: RunResult): RunResult {
  return { ...result, stderr: splitSections(result.stdout, result.stderr).runtimeStderr, reproduce: reproduceCommand(context.step, context.target, ['true']) };
}

/** The main container failed before its first section: one message for every check that needed it. */
function notStarted(ran: MainRun): NotStarted {
  const { result } = ran;
  const status = result.signal ? `killed by ${result.signal}` : `exit status ${result.status}`;
  return new NotStarted([`the container did not run its command (${status})`], result);
}

async function mainRun(step: Step, run: CheckContext['run'], onOutput: (stdout: string) => void): Promise<MainRun> {
  const id = `-${randomBytes(4).toString('hex')}`;
  const paths = {
    hostOnly: `${tmpdir()}/cfs-host-only${id}`,
    written: `/tmp/cfs-written${id}`,
    kept: `/tmp/cfs-keep${id}`,
  };
  const rootfsListing = () => readdirSync(DEFAULT_ROOTFS).sort().join(' ');
  const rootfsBefore = rootfsListing();
  if (step.number >= 4) writeFileSync(paths.hostOnly, 'host');
  if (step.number >= 6) writeFileSync(DEFAULT_ROOTFS + paths.kept, 'keep');
  const staleCgroup = step.number >= 5 ? staleCgroupFake() : undefined;
  const staleLayers = step.number >= 6 ? layersOf(idNaming(deadPid())) : undefined;
  if (staleLayers) mkdirSync(staleLayers.upper, { recursive: true });

  const hold = step.number >= HOLD_FROM_STEP;
  const script = sectionScript(SECTIONS.filter((s) => s.step <= step.number), paths, hold);
  const runtime: MainRun['runtime'] = { found: false };
  let reader: Promise<RunResult> | undefined;
  let containerId = '';
  try {
    const result = await run(['sh', '-c', script], {
      input: TYPED,
      onOutput,
      whenOutput: hold
        ? {
            marker: READY,
            action: async ({ sandboxPid }) => {
              // The runtime's parent is the sandbox shell's child; the container runs under it.
              const [parentPid] = childrenOf(sandboxPid);
              if (parentPid !== undefined) {
                const mine = namespaceOf(parentPid, 'mnt');
                const sandbox = namespaceOf(sandboxPid, 'mnt');
                if (mine && sandbox) {
                  runtime.found = true;
                  runtime.ownMountNamespace = mine === sandbox;
                }
                if (step.number >= 5) runtime.inContainerCgroup = inCgroupOf(parentPid, containerId);
              }
              if (step.number >= 6) {
                reader = run(['sh', '-c', `test -e ${paths.written} && echo visible || echo hidden`]);
                await reader;
              }
            },
          }
        : undefined,
      options: ['--id', (containerId = generatedId())],
    });
    // A shell that could not read the script quotes all of it: show its place instead.
    result.stderr = result.stderr.split(script).join('<the check’s script>');
    const { sections, runtimeStderr } = splitSections(result.stdout, result.stderr);
    return {
      result,
      sections,
      runtimeStderr,
      runtime,
      reader: reader ? await reader : undefined,
      paths,
      rootfsBefore,
      rootfsAfter: rootfsListing(),
      writtenInRootfs: step.number >= 6 && existsSync(DEFAULT_ROOTFS + paths.written),
      keptGone: step.number >= 6 && !existsSync(DEFAULT_ROOTFS + paths.kept),
      staleCgroupLeft: staleCgroup?.folders.find((folder) => existsSync(folder)),
      staleLayersLeft: staleLayers && existsSync(staleLayers.dir) ? staleLayers.dir : undefined,
    };
  } finally {
    rmSync(paths.hostOnly, { force: true });
    rmSync(DEFAULT_ROOTFS + paths.kept, { force: true });
    rmSync(DEFAULT_ROOTFS + paths.written, { force: true });
    if (staleCgroup) await staleCgroup.remove(100, true);
    if (staleLayers) rmSync(staleLayers.dir, { recursive: true, force: true });
  }
}

/** The cgroup of a run killed before it could clean up: named after a pid that is gone. */
function staleCgroupFake(): Cgroup | undefined {
  try {
    const cgroup = new Cgroup(cgroupLayout(), idNaming(deadPid()));
    for (const folder of cgroup.folders) mkdirSync(folder, { recursive: true });
    return cgroup;
  } catch {
    return undefined; // no cgroups this user may create (rootless): the runtime will say so
  }
}

/** Is process `pid` in the cgroup of container `id`? */
function inCgroupOf(pid: number, id: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').some((line) => line.endsWith(`/${CGROUP_PARENT}/${id}`));
  } catch {
    return false;
  }
}

/** Step 5's limits, in one container: memory under and over --memory, then a fork bomb under --pids-max. */
async function limitsRun(run: CheckContext['run']): Promise<Limits> {
  const sleep = `30.${randomBytes(3).readUIntBE(0, 3)}`; // a duration no other process uses
  const definitions: SectionDefinition[] = [
    { step: 5, name: 'hostname', command: () => 'hostname' },
    // dd allocates one buffer of bs bytes, and fills it from /dev/zero.
    { step: 5, name: 'under', command: () => 'dd if=/dev/zero of=/dev/null bs=8M count=1' },
    { step: 5, name: 'over', command: () => 'dd if=/dev/zero of=/dev/null bs=64M count=1' },
    // The sleeps outlive the shell's loop; the container's end must take them with it.
    { step: 5, name: 'bomb', command: () => `for i in $(seq 50); do sleep ${sleep} & echo started; done` },
  ];
  const script = sectionScript(definitions, { hostOnly: '', written: '', kept: '' }, false).replace(/exit 3$/, 'exit 0');
  const result = await run(['sh', '-c', script], {
    options: ['--pids-max', '20', '--memory', '32M', '--hostname', 'pod-7'],
    timeoutMs: 45_000, // bash as sh retries a failed fork for 15 s; dash and busybox give up at once
  });
  const { sections } = splitSections(result.stdout, result.stderr);
  return { result, sections, sleep, sleepsLeft: hostProcesses(['sleep', sleep]).length };
}

async function section(context: CheckContext, name: string): Promise<Section & { main: MainRun; result: RunResult }> {
  return context.section(name);
}

function limitsSection(limits: Limits, name: string): Section {
  const found = limits.sections.get(name);
  if (!found) {
    const status = limits.result.signal ? `killed by ${limits.result.signal}` : `exit status ${limits.result.status}`;
    throw new CheckFailure([`expected the container with --pids-max 20 --memory 32M --hostname pod-7 to run its command, got ${status}`], limits.result);
  }
  return found;
}

// ── The checks ────────────────────────────────────────────────────────────────

export const CHECKS: Check[] = [
  // Step 1: exec
  {
    step: 1,
    name: 'runs the command and passes its output through',
    hint: 'The child must become the command: exec replaces the running program (Node) with it, in the same process. Its argv is the whole command line, with the program’s own name first (argv[0]).',
    todos: ['replace the child'],
    async run(context) {
      const { stdout, result } = await section(context, 'hello');
      expectEqual('output', HELLO, stdout, result);
    },
  },
  {
    step: 1,
    name: "exits with the command's own exit status",
    hint: "The runtime's exit status is the command's: the parent waits for its child, and the child is the command once exec worked.",
    todos: ['replace the child'],
    async run(context) {
      const { main } = await section(context, 'hello');
      expectEqual('exit status (the command ends with `exit 3`)', 3, main.result.status, view(context, main, ['sh', '-c', 'exit 3']));
    },
  },
  {
    step: 1,
    name: 'stdin reaches the command',
    hint: "The command inherits the child's stdin, stdout and stderr across exec (the workshop's execvp wrapper clears Node's close-on-exec flag on them).",
    todos: ['replace the child'],
    async run(context) {
      const { stdout, result } = await section(context, 'stdin');
      expectEqual('the line the command read from stdin', TYPED, stdout, result);
    },
  },
  {
    step: 1,
    name: 'a command that does not exist exits 127 with an explanation',
    hint: 'When exec fails, the runtime explains it and exits 127 (not found) or 126 (not executable), like a shell.',
    todos: ['replace the child'],
    async run(context) {
      const result = await context.notFound();
      expectEqual('exit status', 127, result.status, result);
      if (!/not found/i.test(result.stderr)) throw CheckFailure.expected('an explanation on stderr', 'mentioning "not found"', JSON.stringify(result.stderr.slice(0, 200)), result);
      if (/\n\s+at /.test(result.stderr)) throw CheckFailure.expected('stderr', 'without a stack trace', JSON.stringify(result.stderr.slice(0, 200)), result);
    },
  },

  // Step 2: UTS namespace
  {
    step: 2,
    name: 'the hostname inside is "container"',
    hint: 'The hostname lives in a UTS namespace. The parent creates a new one before it spawns the child, so the child is born in it; the child then sets the container’s hostname there.',
    todos: ['UTS', "set the container's hostname"],
    async run(context) {
      const { stdout, result } = await section(context, 'hostname');
      expectEqual('hostname', 'container\n', stdout, result);
    },
  },
  {
    step: 2,
    name: "the host's hostname is unchanged",
    hint: 'A hostname set anywhere but in a new UTS namespace renames the host. The namespace must exist before the child is spawned (the parent unshares, then spawns), and the name is set in the child.',
    todos: ['UTS'],
    async run(context) {
      for (const result of await context.everyRun()) {
        const { hostnameBefore, hostnameAfter } = result.sandbox ?? {};
        if (hostnameBefore !== undefined && hostnameAfter !== undefined && hostnameBefore !== hostnameAfter) {
          throw new CheckFailure(
            [
              `Your step renamed the host: its hostname went from ${JSON.stringify(hostnameBefore)} to ${JSON.stringify(hostnameAfter)}.`,
              hostnameCause(result),
              `(The check ran it in a throwaway sandbox, so this machine is still called ${JSON.stringify(context.hostHostname)}; \`npm run step ${context.step.number}\` as root would really rename it.)`,
            ],
            result,
            true,
          );
        }
      }
      const now = hostHostname();
      if (now !== context.hostHostname) {
        // Without a sandbox (util-linux unshare missing), the real host: put its name back.
        restoreHostname(context.hostHostname);
        throw new CheckFailure([`Your step renamed this machine from ${JSON.stringify(context.hostHostname)} to ${JSON.stringify(now)}; the check renamed it back.`], undefined, true);
      }
    },
  },
  {
    step: 2,
    name: '--hostname NAME sets another hostname',
    hint: 'The name comes from the command line (the container object has it), not from a fixed string.',
    todos: ["set the container's hostname"],
    async run(context) {
      const result = await context.hostnameOption();
      expectEqual('hostname with --hostname pod-7', 'pod-7\n', result.stdout, result);
    },
  },

  // Step 3: PID namespace
  {
    step: 3,
    name: 'the command is PID 1',
    hint: 'A PID namespace numbers its processes from 1. Creating one does not move the caller: its next child is born there as PID 1, and exec keeps the pid. The flags of the namespaces add up: the UTS one stays.',
    todos: ['PID namespace'],
    async run(context) {
      const { stdout, result } = await section(context, 'pid');
      expectEqual('$$ inside', '1\n', stdout, result);
    },
  },

  // Step 4: mount namespace + pivot_root
  {
    step: 4,
    name: '/ is the rootfs',
    hint: 'The container’s `/` must be the rootfs: it has to exist, be a mount point of its own, and become the root by pivoting from inside it.',
    todos: ['root filesystem exists', 'pivot_root'],
    async run(context) {
      const { stdout, result } = await section(context, 'root');
      const expected = ['.', '..', ...readdirSync(DEFAULT_ROOTFS)].sort();
      expectEqual('`ls -a /`', expected.join(' '), lines(stdout).sort().join(' '), result);
    },
  },
  {
    step: 4,
    name: 'ps shows only the container, the command as PID 1',
    hint: 'ps reads /proc. The container needs a proc of its own, mounted inside the new root before pivoting: the child is already in the new PID namespace, so that proc lists only its processes.',
    todos: ['pivot_root'],
    async run(context) {
      const { stdout, stderr, result } = await section(context, 'ps');
      const processes = lines(stdout).map((line) => line.trim().replace(/\s+/, ' '));
      const onlyTheContainer = processes.length === 2 && processes.includes('1 sh') && processes.some((p) => /^\d+ ps$/.test(p));
      if (!onlyTheContainer) {
        const actual = processes.length > 0 ? summarize(processes) : JSON.stringify(stderr.trim().split('\n')[0] ?? '');
        throw CheckFailure.expected('`ps -e` inside to list', '"1 sh" and ps itself', actual, result);
      }
    },
  },
  {
    step: 4,
    name: '/dev has the usual devices',
    hint: 'The rootfs’s /dev is an empty folder: the runtime gives the container a small /dev of its own (null, zero, random, tty… on a tmpfs) before pivoting, while the host’s devices are still reachable.',
    todos: ['pivot_root'],
    async run(context) {
      const { stdout, result } = await section(context, 'dev');
      const [zeros = '', ...devices] = lines(stdout);
      expectEqual('bytes read from /dev/zero', '4', zeros.trim(), result);
      for (const device of ['null', 'zero', 'full', 'random', 'urandom', 'tty']) {
        if (!devices.includes(device)) throw CheckFailure.expected('/dev to contain', device, devices.join(' '), result);
      }
    },
  },
  {
    step: 4,
    name: "the host's files are unreachable",
    hint: 'After pivot_root the old root is still attached under the new one: until it is detached, a path leads back to the host’s files.',
    todos: ['pivot_root'],
    async run(context) {
      const { stdout, main, result } = await section(context, 'host-file');
      expectEqual(`a host file (${main.paths.hostOnly}) inside`, 'hidden\n', stdout, result);
    },
  },
  {
    step: 4,
    name: "the old root is detached: only the container's own mounts are left",
    hint: 'The old root stays stacked on the new one until it is unmounted (lazily, detached); until then every host mount is still there inside.',
    todos: ['pivot_root'],
    async run(context) {
      const { stdout, stderr, result } = await section(context, 'mountinfo');
      if (stdout === '' && /No such file/.test(stderr)) throw CheckFailure.expected('/proc/self/mountinfo inside', 'to list the mounts', 'no /proc inside to read it from', result);
      const mountPoints = lines(stdout).map((line) => line.split(' ')[4] ?? '');
      const roots = mountPoints.filter((point) => point === '/').length;
      const foreign = mountPoints.filter((point) => point !== '/' && !/^\/(proc|dev|sys)(\/|$)|^\/etc\/(hostname|hosts)$/.test(point));
      if (roots !== 1 || foreign.length > 0) {
        throw CheckFailure.expected('mount points inside', 'one "/", mounts under /proc, /dev and /sys, and /etc/hostname and /etc/hosts only', summarize(mountPoints), result);
      }
    },
  },
  {
    step: 4,
    name: 'no mount appears on the host and rootfs/ is untouched',
    hint: 'Mounts made in the host’s mount namespace — or in a new one that still shares propagation with it — appear on the host. The child needs a mount namespace of its own, with every mount made private before it mounts anything.',
    todos: ['mount namespace'],
    async run(context) {
      for (const result of await context.everyRun()) {
        const { added, removed, repropagated } = result.mounts;
        if (added.length + removed.length + repropagated.length > 0) {
          const [what, cause] = mountDamage(result);
          throw new CheckFailure(
            [`Your step changed the host's mounts: ${what}.`, cause, "(The check ran it in a throwaway sandbox: this machine's mount table is unchanged.)"],
            result,
            true,
          );
        }
      }
      // Without a sandbox (util-linux unshare missing): the real host's mounts that are ours to look at.
      const leaked = ourHostMounts().filter((mount) => !context.hostMounts.includes(mount));
      if (leaked.length > 0) {
        for (const mountPoint of [...leaked].reverse()) spawnSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
        throw new CheckFailure([`Your step left ${leaked.length} mount${leaked.length > 1 ? 's' : ''} on this machine: ${summarize(leaked, 3)}. The check unmounted them.`], undefined, true);
      }
      const main = await context.main();
      expectEqual('rootfs/ listing after the run', main.rootfsBefore, main.rootfsAfter, view(context, main, ['true']));
    },
  },
  {
    step: 4,
    name: "the runtime itself stays in the host's mount namespace",
    hint: 'Only the child may get the new mount namespace: pivot_root moves the root of every process in it, and the parent must stay on the host to clean up after the container (steps 5 and 6 need that).',
    todos: ['mount namespace'],
    async run(context) {
      const main = await context.main();
      if (!main.sections.has('hello')) throw notStarted(main);
      if (main.runtime.found && main.runtime.ownMountNamespace === false) {
        throw new CheckFailure(['expected the runtime (the parent) to stay in the mount namespace it started in, got a new one', parentMountNamespaceCause(main.result)], view(context, main, ['true']));
      }
    },
  },

  // Step 5: cgroups
  {
    step: 5,
    name: 'the command runs in a cgroup of its own, named after the container id',
    hint: 'The child joins the cgroup the parent made for this container id, first thing; the command it execs inherits the membership.',
    todos: ['join the container'],
    async run(context) {
      const { stdout, main, result } = await section(context, 'cgroup');
      const layout = cgroupLayout();
      const wanted = layout.version === 2 ? [''] : ['pids', 'memory'];
      for (const controller of wanted) {
        const line = lines(stdout).find((l) => l.split(':')[1]?.split(',').includes(controller));
        const expected = new Cgroup(layout, main.result.id).path; // below the cgroup delegated to this user, when not root
        if (!line?.endsWith(`:${expected}`)) {
          throw CheckFailure.expected(`the ${controller || 'cgroup v2'} line of /proc/self/cgroup inside`, `to end with ${expected}`, JSON.stringify(line ?? ''), result);
        }
      }
    },
  },
  {
    step: 5,
    name: "the container's cgroup holds the container, not the runtime",
    hint: 'Only the child joins the cgroup. A parent inside it counts against the limits and cannot remove the cgroup it sits in: its own cleanup kills it.',
    todos: ['join the container'],
    async run(context) {
      const main = await context.main();
      if (main.runtime.inContainerCgroup) {
        throw new CheckFailure(["expected the runtime's own process (the parent) outside the container's cgroup, got it inside", parentCgroupCause(main.result)], view(context, main, ['true']));
      }
      if (!main.sections.has('hello')) throw notStarted(main);
    },
  },
  {
    step: 5,
    name: 'a fork bomb stops at --pids-max, and leaves no process behind',
    hint: 'A cgroup only limits the processes inside it: the parent creates it and writes its pids limit before the child exists, and the child moves itself in before it execs.',
    todos: ['create the container', 'join the container'],
    async run(context) {
      const limits = await context.limits();
      const bomb = limitsSection(limits, 'bomb');
      const started = lines(bomb.stdout).filter((line) => line === 'started').length;
      if (started >= 20) {
        throw CheckFailure.expected('the number of `sleep`s a loop of 50 could start under --pids-max 20 to be', 'under 20 (the shell counts too)', `${started}: no limit`, limits.result);
      }
      if (!/fork|resource temporarily unavailable/i.test(bomb.stderr)) {
        throw CheckFailure.expected('the shell to report', 'a failed fork', JSON.stringify(bomb.stderr.slice(0, 200)), limits.result);
      }
      if (limits.sleepsLeft > 0) throw CheckFailure.expected(`\`sleep ${limits.sleep}\` processes on the host after the run`, 'none', String(limits.sleepsLeft), limits.result);
    },
  },
  {
    step: 5,
    name: 'a process allocating past --memory is killed (exit 137), one under it is not',
    hint: 'The memory limit is a file of the cgroup, written by the parent; past it, the kernel’s OOM killer sends SIGKILL (128 + 9 = 137). It applies once the child is inside the cgroup.',
    todos: ['create the container', 'join the container'],
    async run(context) {
      const limits = await context.limits();
      const under = limitsSection(limits, 'under');
      const over = limitsSection(limits, 'over');
      expectEqual('dd with an 8M buffer under --memory 32M to succeed: exit status', 0, under.status ?? null, limits.result);
      expectEqual('dd with a 64M buffer under --memory 32M to be OOM-killed: exit status', 137, over.status ?? null, limits.result);
    },
  },
  {
    step: 5,
    name: 'no cgroup is left behind, nor one of a killed run',
    hint: 'The parent removes the cgroup once the child has exited, on every path (a failed setup too: a finally); before creating one, it removes those of killed runs (their runtime’s pid is gone).',
    todos: ['create the container'],
    async run(context) {
      for (const result of await context.everyRun()) {
        const left = result.leftovers.filter((leftover) => leftover.kind === 'cgroup');
        if (left.length > 0) throw CheckFailure.expected(`${left[0]!.what} after the run`, 'to be removed', 'it was still there (the check removed it)', simple(context, result));
      }
      const main = await context.main();
      if (main.staleCgroupLeft) throw CheckFailure.expected(`${main.staleCgroupLeft} (a killed run's cgroup: its pid is gone) after a new run`, 'to be removed', 'it is still there', view(context, main, ['true']));
    },
  },

  // Step 6: overlay filesystem
  {
    step: 6,
    name: 'a file written inside never reaches rootfs/',
    hint: 'With a bind mount the container writes straight into rootfs/. An overlay puts a writable layer of the container’s own over the read-only rootfs, and writes land there.',
    todos: ['mount an overlay'],
    async run(context) {
      const { stdout, main, result } = await section(context, 'write');
      expectEqual('output of writing and reading a file inside', 'hi\n', stdout, result);
      if (main.writtenInRootfs) {
        throw CheckFailure.expected(`rootfs${main.paths.written} on the host`, 'not to exist', 'the container wrote it into rootfs/ (the check removed it)', result);
      }
    },
  },
  {
    step: 6,
    name: "another container running at the same time doesn't see it",
    hint: 'Each container needs an upper layer of its own, named after its id: containers that share one see each other’s files, and its files outlive it.',
    todos: ['create the folders', 'mount an overlay'],
    async run(context) {
      const { main, result } = await section(context, 'write');
      if (!main.reader) throw CheckFailure.expected('a second container to run while the first one ran', 'to start', 'it never ran', result);
      expectEqual(`${main.paths.written}, written by a container still running, in another one`, 'hidden\n', main.reader.stdout, main.reader);
    },
  },
  {
    step: 6,
    name: "deleting a rootfs file inside doesn't delete it on the host",
    hint: 'Deleting a lower-layer file inside an overlay only records a "whiteout" in the upper layer; rootfs/ itself is never written.',
    todos: ['mount an overlay'],
    async run(context) {
      const { stdout, main, result } = await section(context, 'delete');
      expectEqual(`output of deleting ${main.paths.kept} inside`, 'deleted\n', stdout, result);
      if (main.keptGone) throw CheckFailure.expected(`rootfs${main.paths.kept} on the host after \`rm\` inside`, 'to still exist', 'it was deleted', result);
    },
  },
  {
    step: 6,
    name: 'no overlay folder is left behind, nor one of a killed run',
    hint: 'The parent removes the container’s layer folders after it exits, on every path (a finally; its writes go with them); before creating them, it removes those of killed runs.',
    todos: ['create the folders'],
    async run(context) {
      for (const result of await context.everyRun()) {
        const left = result.leftovers.filter((leftover) => leftover.kind === 'layers');
        if (left.length > 0) throw CheckFailure.expected(`${left[0]!.what} after the run`, 'to be removed', 'it was still there (the check removed it)', simple(context, result));
      }
      const main = await context.main();
      if (main.staleLayersLeft) throw CheckFailure.expected(`${main.staleLayersLeft} (a killed run's layers: its pid is gone) after a new run`, 'to be removed', 'it is still there', view(context, main, ['true']));
    },
  },

  // Step 7: network namespace
  {
    step: 7,
    name: "the only network interface is lo: none of the host's is visible",
    hint: 'A new network namespace has a single interface, the loopback. The parent creates it together with the other namespaces, so the child is born in it.',
    todos: ['create a network namespace'],
    async run(context) {
      const { stdout, result } = await section(context, 'net-dev');
      const inside = interfacesIn(stdout);
      if (inside.join(' ') !== 'lo') {
        const host = interfacesIn(readFileSync('/proc/net/dev', 'utf8'));
        throw CheckFailure.expected('interfaces in /proc/net/dev inside', '"lo" only', `${JSON.stringify(inside.join(' '))} (the host has ${host.join(' ')})`, result);
      }
    },
  },
  {
    step: 7,
    name: 'lo is UP',
    hint: 'A new namespace’s lo starts down: an interface is switched on through a socket, by reading its flags and writing them back with IFF_UP. To show it, /sys must be a sysfs mounted from the container’s namespace.',
    todos: ['loopback', 'sysfs'],
    async run(context) {
      const { stdout, stderr, result } = await section(context, 'lo-flags');
      const flags = Number.parseInt(stdout.trim(), 16);
      if (!(flags & 1)) throw CheckFailure.expected('/sys/class/net/lo/flags inside', 'to include IFF_UP (0x1)', JSON.stringify(stdout.trim() || stderr.trim()), result);
    },
  },

  // Step 8: capabilities
  {
    step: 8,
    name: '`hostname foo` fails with EPERM (Operation not permitted)',
    hint: 'Root’s powers are capabilities, and what a program gets at exec is capped by the bounding set. Dropping CAP_SYS_ADMIN from it just before exec takes sethostname away from the command.',
    todos: ['drop the dangerous capabilities'],
    async run(context) {
      const { stdout, stderr, result } = await section(context, 'sethostname');
      const [status = '', name = ''] = lines(stdout);
      if (status === 'status 0') throw CheckFailure.expected('`hostname foo` inside', 'to fail', 'it worked', result);
      expectEqual('hostname after the attempt', 'container', name, result);
      // sethostname() fails with EPERM; the hostname program words it its own way.
      if (!/not permitted|must be root/i.test(stderr)) throw CheckFailure.expected('the error', 'to be EPERM (not permitted)', JSON.stringify(stderr.trim()), result);
    },
  },
  {
    step: 8,
    name: '`mount -t tmpfs x /tmp` fails with EPERM (Operation not permitted)',
    hint: 'mount needs CAP_SYS_ADMIN too: the runtime’s own mounts are done before the drop, and the command starts without it.',
    todos: ['drop the dangerous capabilities'],
    async run(context) {
      const { stdout, stderr, result } = await section(context, 'mount');
      const [status = '', ...mounts] = lines(stdout);
      if (status === 'status 0' || mounts.some((line) => line.split(' ')[1] === '/tmp')) {
        throw CheckFailure.expected('`mount -t tmpfs x /tmp` inside', 'to fail', 'it mounted', result);
      }
      // mount(2) fails with EPERM; util-linux's mount words it "permission denied".
      if (!/not permitted|permission denied|must be superuser/i.test(stderr)) throw CheckFailure.expected('the error', 'to be EPERM', JSON.stringify(stderr.trim()), result);
    },
  },
  {
    step: 8,
    name: 'the dangerous capabilities are gone from the bounding and effective sets',
    hint: 'Every capability in the workshop’s list of dangerous ones leaves the bounding set, in the child, before exec.',
    todos: ['drop the dangerous capabilities'],
    async run(context) {
      const { stdout, result } = await section(context, 'status');
      const dangerous = new Set(dangerousCapabilities().map((capability) => capability.name));
      for (const set of ['CapBnd', 'CapEff']) {
        const mask = new RegExp(`^${set}:\\s*([0-9a-f]+)$`, 'm').exec(stdout)?.[1] ?? '0';
        const kept = capabilitiesIn(mask).filter((name) => dangerous.has(name));
        if (kept.length > 0) throw CheckFailure.expected(`${set} inside`, 'without the dangerous capabilities', `it still has ${summarize(kept, 4)}`, result);
      }
    },
  },
  {
    step: 8,
    name: '/proc/sys is read-only: root cannot change kernel settings through it',
    hint: 'Files in /proc/sys only check permissions, which uid 0 passes without any capability: the child makes them read-only (a bind mount of the path onto itself, remounted read-only).',
    todos: ['without any capability'],
    async run(context) {
      const { stdout, stderr, result } = await section(context, 'procsys');
      expectEqual('hostname after writing /proc/sys/kernel/hostname', 'container\n', stdout, result);
      if (!/read-only/i.test(stderr)) throw CheckFailure.expected('the error', 'to say "Read-only file system"', JSON.stringify(stderr.trim()), result);
    },
  },
  {
    step: 8,
    name: 'ordinary commands still work',
    hint: 'Drop only the dangerous capabilities: a container still writes files, reads /proc and signals its own processes.',
    todos: ['drop the dangerous capabilities'],
    async run(context) {
      const { stdout, status, result } = await section(context, 'ordinary');
      expectEqual('output', 'ok\n0\ndone\n', stdout, result);
      expectEqual('exit status', 0, status ?? null, result);
    },
  },

  {
    step: 8,
    name: "device files of the rootfs don't work inside (nodev); those the runtime put in /dev do",
    hint: "Opening a device file only checks its permissions, so uid 0 could open a disk's node brought in the rootfs: after pivot_root, the root is remounted nodev.",
    todos: ['without any capability'],
    async run(context) {
      const { result, mounts, planted, device, devNull } = await hardeningProbe(context);
      expectSuccess(result);
      const root = mounts.get('/');
      if (!root?.options.includes('nodev')) throw CheckFailure.expected('the options of the root mount inside', 'to include nodev', JSON.stringify(root?.options.join(',') ?? 'no root mount'), result);
      if (planted) expectEqual(`writing to a character device (1,3) planted at rootfs${planted}`, 'refused', device, result);
      expectEqual('writing to /dev/null', 'works', devNull, result);
    },
  },
  {
    step: 8,
    name: "runc's masked paths are hidden (/proc/keys, /proc/timer_list, /sys/firmware…), its read-only paths read-only (/proc/irq, /proc/sys…)",
    hint: 'Some files of /proc and /sys show or change the whole machine and only check permissions: after pivot_root, runc hides some (something mounted on top) and makes the others read-only (a bind mount remounted read-only).',
    todos: ['without any capability'],
    async run(context) {
      const { result, mounts, present } = await hardeningProbe(context);
      expectSuccess(result);
      const visible = present.filter((path) => MASKED_PATHS.includes(path) && !mounts.has(path));
      if (visible.length > 0) throw CheckFailure.expected('these paths inside', 'to be masked (something mounted on them)', `readable as they are: ${visible.join(', ')}`, result);
      const writable = present.filter((path) => READONLY_PATHS.includes(path) && !mounts.get(path)?.options.includes('ro'));
      if (writable.length > 0) throw CheckFailure.expected('these paths inside', 'to be mounted read-only', `writable: ${writable.join(', ')}`, result);
    },
  },

  // Step 9: seccomp
  {
    step: 9,
    name: 'no_new_privs is set: a setuid-root program run by another user gains nothing',
    hint: 'The no_new_privs flag, set in the child before exec, makes exec ignore setuid bits and file capabilities, in the command and everything it starts.',
    todos: ['no_new_privs'],
    async run(context) {
      const result = await seccompRun(context);
      expectEqual('NoNewPrivs in /proc/self/status inside', '1', field(result.stdout, 'NoNewPrivs') ?? '', result);
      // Only when uid 1000 exists inside: a rootless container maps uid 0 alone.
      const mapped = lines(field(result.stdout, 'uid_map') ?? '').some((line) => {
        const [inside = 0, , count = 0] = line.trim().split(/\s+/).map(Number);
        return inside <= 1000 && 1000 < inside + count;
      });
      const setuid = field(result.stdout, 'setuid') ?? '';
      if (mapped && /not found/.test(setuid)) throw CheckFailure.expected('setpriv in the container', 'to exist', 'the rootfs has none: `npm run rootfs` adds it (util-linux)', result);
      if (mapped) expectEqual('`id -u` of a setuid-root copy of id, run as uid 1000 (setpriv --reuid=1000)', '1000', setuid, result);
    },
  },
  {
    step: 9,
    name: 'a seccomp filter is loaded: keyctl, unshare(CLONE_NEWUSER), clone with namespace flags fail with EPERM, clone3 with ENOSYS, another ABI is killed',
    hint: 'A seccomp filter, loaded last thing before exec, runs before every syscall: it checks the architecture first, answers EPERM to the dangerous calls, and lets the rest through.',
    todos: ['seccomp filter'],
    async run(context) {
      const result = await seccompRun(context);
      expectEqual('Seccomp in /proc/self/status inside (2: a filter)', '2', field(result.stdout, 'Seccomp') ?? '', result);
      for (const probe of PROBES.filter((p) => p.expected !== 0)) {
        const errno = Number(field(result.stdout, `probe ${probe.syscall}`) ?? NaN);
        if (errno !== probe.expected) throw CheckFailure.expected(`${probe.label} inside`, `to fail with ${errnoLabel(probe.expected)}`, errnoLabel(errno), result);
      }
      // Killed by SIGSYS (128 + 31); 139 (SIGSEGV): this kernel has no 32-bit ABI, nothing to slip through.
      const i386 = field(result.stdout, 'probe i386');
      if (i386 !== undefined && i386 !== '159' && i386 !== '139') {
        throw CheckFailure.expected('getpid through the 32-bit ABI (int 0x80) inside', 'to kill the process (SIGSYS, status 159): the filter checks the architecture first', `status ${i386}`, result);
      }
    },
  },
  {
    step: 9,
    name: 'ordinary syscalls still work under the filter (getpid, fork, exec, a pipe)',
    hint: 'The filter ends by allowing everything it did not name: a container only loses the syscalls its rules deny.',
    todos: ['seccomp filter'],
    async run(context) {
      const result = await seccompRun(context);
      expectEqual('getpid() inside', 'success', errnoLabel(Number(field(result.stdout, 'probe getpid') ?? NaN)), result);
      expectEqual('output of `echo through | cat`', 'through', field(result.stdout, 'pipeline') ?? '', result);
    },
  },
];

export function checksUpTo(step: number): Check[] {
  return CHECKS.filter((check) => check.step <= step);
}

/** Mount points of the host under this repository, its rootfs/, or the layer folders of this process's containers. */
function ourHostMounts(): string[] {
  const roots = [REPO_ROOT, realpathOr(DEFAULT_ROOTFS)];
  const ours = `/cfs-${process.pid}-`;
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => parseMountinfoLine(line)?.mountPoint ?? '')
    .filter((point) => roots.some((root) => point === root || point.startsWith(`${root}/`)) || (point.startsWith(`${LAYERS_PARENT}/`) && point.includes(ours)));
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** Put the host's name back (only needed when no sandbox could be made). */
function restoreHostname(name: string): void {
  spawnSync('hostname', [name], { stdio: 'ignore' });
}
