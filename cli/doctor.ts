// npm run doctor [-- --json]
//
// A pre-flight the instructor asks the whole room to run before the workshop:
// can this machine run the containers we build? Each check prints a line
//
//   ✓ ok        ! a warning: only going-further steps (5–9) are affected
//   ✗ fail: a core step (1–4) cannot run here, with the fix below it
//
// and the last line says which steps are ready. Exit status 1 when a core
// step cannot run, 0 otherwise. --json prints the checks for scripts instead.
import chalk from 'chalk';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkRootfs } from '../lib/container/rootfs.js';
import { PR_CAPBSET_READ } from '../lib/kernel/constants.js';
import { EXIT, WorkshopError } from '../lib/kernel/errors.js';
import {
  CAP_SYS_ADMIN,
  LIMIT_CONTROLLERS,
  NAMESPACE_TYPES,
  detectCgroups,
  detectWsl,
  filesystemSupported,
  hasCapability,
  inInitialUserNamespace,
  kernelAtLeast,
  kernelVersion,
  multithreadedCause,
  namespaceDisabledReason,
  probeNamespace,
  readIfExists,
  probeOverlay,
  threadsOfOneThreadedProgram,
  unshareVersion,
  type Cgroups,
  type NamespaceType,
  type ProbeResult,
} from '../lib/host/machine.js';
import { DEFAULT_ROOTFS, REPO_ROOT } from '../lib/paths.js';
import { cgroupDelegation, probeDelegatedScope, userNamespaceBlocker } from '../lib/host/privileges.js';
import { main } from './common.js';

type Status = 'ok' | 'warn' | 'fail';

interface Check {
  name: string;
  status: Status;
  /** One line: what was found. */
  detail: string;
  /** What to do about it (for every ✗, and for warnings where something can be done). */
  fix?: string;
  /** For a warning: the going-further steps it holds back, and what they need. */
  blocks?: { steps: number[]; needs: string };
}

const LAST_STEP = 9;
const CORE_STEPS = '1–4';

const isRoot = process.getuid?.() === 0;
/** Without root, every namespace is created inside a user namespace, as `npm run step` does. */
const rootless = !isRoot;

// ── The checks, in the order they are printed ───────────────────────────────

function checkOs(): Check {
  const use =
    'Use a Linux VM: multipass, UTM or Lima on macOS; WSL2 (not WSL1) or a Hyper-V/VirtualBox VM on Windows. ' +
    'A privileged Linux dev container works too.';
  if (process.platform !== 'linux') {
    const name = { darwin: 'macOS', win32: 'Windows' }[process.platform as string] ?? process.platform;
    return { name: 'os', status: 'fail', detail: `${name}: containers need a Linux kernel (namespaces, cgroups)`, fix: use };
  }
  const wsl = detectWsl();
  if (wsl === 'wsl1') {
    return {
      name: 'os',
      status: 'fail',
      detail: 'WSL1: it translates Linux calls, without namespaces or cgroups',
      fix: 'Convert this distribution to WSL2 (in PowerShell: `wsl --set-version <distro> 2`), or use a Linux VM.',
    };
  }
  return { name: 'os', status: 'ok', detail: wsl === 'wsl2' ? 'Linux (WSL2)' : 'Linux' };
}

function checkArch(): Check {
  const supported = ['x64', 'arm64'];
  if (supported.includes(process.arch)) return { name: 'arch', status: 'ok', detail: process.arch === 'x64' ? 'x86_64' : 'arm64 (aarch64)' };
  return {
    name: 'arch',
    status: 'fail',
    detail: `${process.arch}: the syscall numbers are only defined for x86_64 and arm64`,
    fix: 'Use an x86_64 or arm64 machine or VM.',
  };
}

function checkKernel(): Check {
  const kernel = kernelVersion();
  if (kernelAtLeast(kernel, 5, 11)) return { name: 'kernel', status: 'ok', detail: kernel.release };
  return {
    name: 'kernel',
    status: 'warn',
    detail: `${kernel.release}: older than 5.11, so overlayfs cannot be mounted in a user namespace (rootless step 6)`,
    fix: 'Fine as root. For rootless step 6, use a newer kernel (e.g. Ubuntu 22.04+, Debian 12+).',
  };
}

function checkNode(): Check {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 20) return { name: 'node', status: 'ok', detail: process.version };
  return {
    name: 'node',
    status: 'fail',
    detail: `${process.version}: the workshop needs Node.js 20 or newer`,
    fix: 'Install Node.js 20+ (`nvm install 20`, or https://nodejs.org), then `npm install` again.',
  };
}

function checkUnshare(version: string | undefined): Check {
  if (version) return { name: 'unshare', status: 'ok', detail: version };
  return {
    name: 'unshare',
    status: rootless ? 'fail' : 'warn',
    detail: rootless
      ? 'util-linux `unshare` is missing: it enters the user namespace for rootless runs'
      : 'util-linux `unshare` is missing: root does not need it, but rootless users and the namespace checks below do',
    fix: 'Install util-linux (apt install util-linux / dnf install util-linux / apk add util-linux).',
  };
}

function checkPrivileges(): Check {
  if (isRoot) {
    if (!hasCapability(CAP_SYS_ADMIN)) {
      return {
        name: 'privileges',
        status: 'fail',
        detail: 'root, but without CAP_SYS_ADMIN (an unprivileged container?)',
        fix: 'Start the container with --privileged (docker run --privileged …), or use a Linux VM.',
      };
    }
    const where = inInitialUserNamespace() ? '' : ' (inside a user namespace: a rootless container?)';
    return { name: 'privileges', status: 'ok', detail: `root${where}` };
  }
  const blocker = userNamespaceBlocker();
  if (!blocker) {
    return { name: 'privileges', status: 'ok', detail: `rootless (uid ${process.getuid?.()}): user namespaces work, npm run step enters one` };
  }
  return { name: 'privileges', status: 'fail', detail: `rootless (uid ${process.getuid?.()}), and user namespaces are not allowed`, fix: blocker };
}

/** Load ffi-rs and libc, and make one harmless call through them. */
async function checkFfi(): Promise<Check> {
  try {
    const { prctl } = await import('../lib/kernel/libc.js');
    const { LIBC_PATH } = await import('../lib/kernel/ffi.js');
    const version = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/ffi-rs/package.json'), 'utf8')).version as string;
    const answer = prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 'PR_CAPBSET_READ, CAP_SYS_ADMIN');
    return {
      name: 'ffi-rs',
      status: 'ok',
      detail: `ffi-rs ${version} loaded; ${LIBC_PATH} answered prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN) = ${answer}`,
    };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return {
      name: 'ffi-rs',
      status: 'fail',
      detail: `cannot call libc through ffi-rs: ${message}`,
      fix:
        'Run `npm install` on this machine: node_modules copied from another OS, CPU or libc (glibc/musl) does not load. ' +
        'If it persists: `rm -rf node_modules && npm install`.',
    };
  }
}

/** What each namespace type is for here: core steps fail without it; the others only warn. */
const NAMESPACE_ROLES: Record<NamespaceType, { core: boolean; use: string; step?: number }> = {
  uts: { core: true, use: 'step 2: a hostname of its own' },
  pid: { core: true, use: 'step 3: the command as PID 1' },
  mount: { core: true, use: 'step 4: a root filesystem of its own' },
  net: { core: false, use: 'step 7: a network of its own', step: 7 },
  ipc: { core: false, use: 'not used by the steps (runc uses it)' },
  user: { core: rootless, use: rootless ? 'rootless mode: you as root inside' : 'only for rootless users' },
  cgroup: { core: false, use: 'not used by the steps (runc uses it)' },
};

function checkNamespace(type: NamespaceType, result: ProbeResult, userResult: ProbeResult, unshareMissing: boolean): Check {
  const role = NAMESPACE_ROLES[type];
  const name = `${type} namespace`;
  if (result.ok) return { name, status: 'ok', detail: `created — ${role.use}` };

  const status: Status = role.core ? 'fail' : 'warn';
  const blocks = role.step ? { steps: [role.step], needs: `a ${type} namespace` } : undefined;
  if (unshareMissing) {
    // Root's runtime does not need `unshare`, only this test does: then it is not a failure.
    return { name, status: isRoot ? 'warn' : status, detail: 'not tested: util-linux `unshare` is missing', fix: 'Install util-linux.' };
  }
  if (rootless && type !== 'user' && !userResult.ok) {
    return { name, status, detail: 'not tested: it needs a user namespace (see privileges)', fix: 'Fix the user namespace first.', blocks };
  }
  const fix =
    namespaceDisabledReason(type) ??
    (type === 'user' ? multithreadedCause(result.error, threadsOfOneThreadedProgram()) : undefined) ??
    (isRoot && !hasCapability(CAP_SYS_ADMIN) ? 'Namespaces need CAP_SYS_ADMIN: see privileges above.' : undefined) ??
    'Something outside the kernel forbids it (a container runtime, seccomp or AppArmor): use a Linux VM or a --privileged container.';
  return { name, status, detail: `cannot be created: ${result.error}`, fix: capitalize(fix), blocks };
}

function checkCgroupVersion(cgroups: Cgroups): Check {
  if (cgroups.layout !== 'none') return { name: 'cgroups', status: 'ok', detail: cgroups.description };
  return {
    name: 'cgroups',
    status: 'warn',
    detail: 'no cgroup file system is mounted',
    fix: 'Mount cgroup v2: `sudo mount -t cgroup2 none /sys/fs/cgroup`.',
    blocks: { steps: [5], needs: 'cgroups' },
  };
}

async function checkCgroupControllers(cgroups: Cgroups): Promise<Check> {
  const name = 'cgroup controllers';
  const usable = Object.keys(cgroups.controllers)
    .filter((controller) => cgroups.controllers[controller]?.writable)
    .sort();
  const missing = LIMIT_CONTROLLERS.filter((controller) => !cgroups.controllers[controller]);
  const needs = LIMIT_CONTROLLERS.join(' and ');

  if (missing.length > 0) {
    return {
      name,
      status: 'warn',
      detail: `no ${missing.join(', ')} controller${missing.length > 1 ? 's' : ''}${usable.length ? ` (usable: ${usable.join(', ')})` : ''}`,
      fix:
        'Enable it on the kernel command line: `cgroup_enable=memory cgroup_memory=1` ' +
        '(Raspberry Pi: in /boot/firmware/cmdline.txt), then reboot.',
      blocks: { steps: [5], needs: `the ${missing.join(' and ')} cgroup controller${missing.length > 1 ? 's' : ''}` },
    };
  }
  if (rootless) return checkDelegation(cgroups);
  const readOnly = LIMIT_CONTROLLERS.filter((controller) => !usable.includes(controller));
  if (readOnly.length === 0) {
    const others = usable.filter((controller) => !(LIMIT_CONTROLLERS as readonly string[]).includes(controller));
    return { name, status: 'ok', detail: `${needs} usable${others.length ? ` (also ${others.join(', ')})` : ''}` };
  }
  return {
    name,
    status: 'warn',
    detail: `${readOnly.join(', ')} exist, but the cgroup file system is read-only (a container?)`,
    fix: 'Start the container with --privileged (writable /sys/fs/cgroup), or use a Linux VM.',
    blocks: { steps: [5], needs: 'a writable /sys/fs/cgroup' },
  };
}

/**
 * Rootless: is there a cgroup v2 subtree delegated to this user, now or from
 * systemd (tried for real: the scope `npm run step` would get)?
 */
async function checkDelegation(cgroups: Cgroups): Promise<Check> {
  const name = 'cgroup controllers';
  const blocks = { steps: [5], needs: cgroups.controllers.pids?.version === 1 ? 'root (cgroup v1)' : 'a cgroup delegated to you (or root)' };
  const delegation = cgroupDelegation(cgroups);
  const v2 = cgroups.v2;
  if (delegation.kind === 'ready') {
    const where = v2 ? delegation.base.slice(v2.mountPoint.length) || '/' : delegation.base;
    return { name, status: 'ok', detail: `pids and memory usable in your delegated cgroup ${where}` };
  }
  if (delegation.kind === 'none') return { name, status: 'warn', detail: delegation.problem, fix: delegation.fix, blocks };
  const probe = await probeDelegatedScope(v2?.mountPoint ?? '/sys/fs/cgroup');
  const lacking = LIMIT_CONTROLLERS.filter((controller) => !probe.controllers?.includes(controller));
  if (probe.ok && lacking.length === 0) {
    return { name, status: 'ok', detail: 'pids and memory usable in a systemd scope delegated to you (npm run step enters one: systemd-run --user --scope -p Delegate=yes)' };
  }
  return {
    name,
    status: 'warn',
    detail: probe.ok
      ? `your systemd delegates a scope to you, but without the ${lacking.join(' and ')} controller${lacking.length > 1 ? 's' : ''}`
      : `your cgroup (${delegation.own}) belongs to root, and \`systemd-run --user --scope -p Delegate=yes\` failed: ${probe.error}`,
    fix: probe.ok
      ? 'systemd must delegate them to your user manager: `sudo systemctl edit user@.service` with [Service] Delegate=pids memory, log in again; or run steps 5–9 as root.'
      : 'Run steps 5–9 as root (`sudo npm run step 5`; with nvm: `sudo env "PATH=$PATH" npm run step 5`). Steps 1–4 work without root.',
    blocks,
  };
}

function checkOverlay(result: ProbeResult | undefined, unshareMissing: boolean): Check {
  const name = 'overlayfs';
  const blocks = { steps: [6], needs: 'overlayfs' };
  if (!result) {
    return { name, status: 'warn', detail: 'the kernel has no overlay file system', fix: 'Load it: `sudo modprobe overlay`.', blocks };
  }
  if (unshareMissing) {
    return { name, status: 'warn', detail: 'the kernel has it; mounting one not tested: util-linux `unshare` is missing', fix: 'Install util-linux.' };
  }
  const how = rootless ? 'in a user namespace' : 'as root';
  if (result.ok) return { name, status: 'ok', detail: `a test overlay mounts ${how}` };
  const kernel = kernelVersion();
  const fix =
    rootless && !kernelAtLeast(kernel, 5, 11)
      ? 'Overlay in a user namespace needs Linux 5.11+: run step 6 as root (`sudo npm run step 6`), or use a newer kernel.'
      : 'See `sudo dmesg | tail` for why. A temporary folder on overlay itself (some containers) cannot hold an upper layer.';
  return { name, status: 'warn', detail: `cannot mount one ${how}: ${result.error}`, fix, blocks };
}

function checkDefaultRootfs(): Check {
  const name = 'rootfs';
  try {
    const check = checkRootfs(DEFAULT_ROOTFS);
    if (check.ok) return { name, status: 'ok', detail: 'rootfs/ has /bin/sh, /proc, /dev and /sys' };
    if (check.problem === 'it does not exist') {
      return {
        name,
        status: 'warn',
        detail: 'rootfs/ is not built yet',
        fix: 'It will be built automatically on the first `npm run step`, or run `npm run rootfs` now.',
      };
    }
    return { name, status: 'fail', detail: `rootfs/ is not usable: ${check.problem}`, fix: check.fix };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { name, status: 'fail', detail: `rootfs/ cannot be read: ${message}`, fix: 'Make the checkout readable by your user.' };
  }
}

/** Step 9: can this kernel load a seccomp filter that answers with an errno, or kills the process? */
function checkSeccomp(): Check {
  const name = 'seccomp';
  const blocks = { steps: [9], needs: 'seccomp filters' };
  const mode = /^Seccomp:\s*(\d)/m.exec(readIfExists('/proc/self/status') ?? '')?.[1];
  const actions = readIfExists('/proc/sys/kernel/seccomp/actions_avail')?.trim().split(/\s+/);
  if (mode === undefined || !actions) {
    return { name, status: 'warn', detail: 'this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER), or is older than 4.14', fix: 'Use a distribution kernel from 2018 or later: all have them.', blocks };
  }
  const missing = ['allow', 'errno', 'kill_process'].filter((action) => !actions.includes(action));
  if (missing.length > 0) return { name, status: 'warn', detail: `filters lack the action${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`, blocks };
  // Seccomp: 2: this process already runs under a filter (a container, systemd's SystemCallFilter): filters stack.
  return { name, status: 'ok', detail: `filters available (${actions.join(' ')})${mode === '2' ? '; this shell already runs under one, and filters stack' : ''}` };
}

// ── Running them ────────────────────────────────────────────────────────────

async function runChecks(): Promise<Check[]> {
  const os = checkOs();
  if (process.platform !== 'linux') return [os, checkArch(), checkNode()]; // nothing else can be checked

  // Start the probes that run child processes first: they run in parallel with the rest.
  const unshare = unshareVersion();
  const namespaceProbes = Promise.all(NAMESPACE_TYPES.map((type) => probeNamespace(type, { rootless })));
  const overlayProbe = filesystemSupported('overlay') ? probeOverlay({ rootless }) : Promise.resolve(undefined);

  const checks = [os, checkArch(), checkKernel(), checkNode(), checkUnshare(unshare), checkPrivileges(), await checkFfi()];
  const results = await namespaceProbes;
  const userResult = results[NAMESPACE_TYPES.indexOf('user')] ?? { ok: false };
  NAMESPACE_TYPES.forEach((type, index) => {
    checks.push(checkNamespace(type, results[index] ?? { ok: false }, userResult, !unshare));
  });
  const cgroups = detectCgroups();
  checks.push(checkCgroupVersion(cgroups), await checkCgroupControllers(cgroups), checkOverlay(await overlayProbe, !unshare), checkSeccomp(), checkDefaultRootfs());
  return checks;
}

// ── Printing ────────────────────────────────────────────────────────────────

const MARKS: Record<Status, string> = { ok: chalk.green.bold('✓'), warn: chalk.yellow.bold('!'), fail: chalk.red.bold('✗') };
const FIX_COLOR: Record<Status, (text: string) => string> = { ok: chalk.dim, warn: chalk.yellow, fail: chalk.red };

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** [1,2,3,4,7,8] → "1–4, 7–8". */
function stepRanges(steps: number[]): string {
  const ranges: string[] = [];
  for (let index = 0; index < steps.length; ) {
    let end = index;
    while (steps[end + 1] === (steps[end] ?? 0) + 1) end++;
    ranges.push(end === index ? `${steps[index]}` : `${steps[index]}–${steps[end]}`);
    index = end + 1;
  }
  return ranges.join(', ');
}

/** The last line: which steps this machine is ready for, and what the others need. */
function summary(checks: Check[]): string {
  const failed = checks.filter((check) => check.status === 'fail');
  if (failed.length > 0) {
    const names = failed.map((check) => check.name).join(', ');
    return chalk.red.bold(`Not ready: steps ${CORE_STEPS} cannot run here (${names}). Fix the ✗ lines above, then run npm run doctor again.`);
  }
  const needs = new Map<number, Set<string>>(); // held-back step → what it needs
  for (const check of checks) {
    if (check.status !== 'warn' || !check.blocks) continue;
    // Each step's runtime contains the ones before it: what holds step 5 back holds 6–8 back too.
    const first = Math.min(...check.blocks.steps);
    for (let step = first; step <= LAST_STEP; step++) needs.set(step, (needs.get(step) ?? new Set()).add(check.blocks.needs));
  }
  const allSteps = Array.from({ length: LAST_STEP }, (_, index) => index + 1);
  if (needs.size === 0) return chalk.green.bold(`Ready for steps ${stepRanges(allSteps)}`);

  const ready = allSteps.filter((step) => !needs.has(step));
  // Steps that need the same thing are named together: "steps 5–6 need root".
  const byNeed = new Map<string, number[]>();
  for (const [step, what] of [...needs].sort(([a], [b]) => a - b)) {
    const text = [...what].join(' and ');
    byNeed.set(text, [...(byNeed.get(text) ?? []), step]);
  }
  const held = [...byNeed].map(([what, steps]) =>
    steps.length === 1 ? `step ${steps[0]} needs ${what}` : `steps ${stepRanges(steps)} need ${what}`,
  );
  return chalk.green.bold(`Ready for steps ${stepRanges(ready)}`) + chalk.yellow.bold(`; ${held.join('; ')}`);
}

function printReport(checks: Check[]): void {
  const width = Math.max(...checks.map((check) => check.name.length));
  const lines = [chalk.bold('npm run doctor — can this machine run the containers-from-scratch workshop?'), ''];
  for (const check of checks) {
    lines.push(`  ${MARKS[check.status]} ${chalk.bold(check.name.padEnd(width))}  ${check.detail}`);
    if (check.fix && check.status !== 'ok') {
      lines.push(`    ${' '.repeat(width)}  ${FIX_COLOR[check.status](`→ ${check.fix}`)}`);
    }
  }
  lines.push('', summary(checks));
  process.stdout.write(lines.join('\n') + '\n');
}

main(async () => {
  const args = process.argv.slice(2);
  const unknown = args.find((arg) => arg !== '--json' && arg !== '--debug');
  if (unknown) throw new WorkshopError(`unknown option ${unknown}`, 'Usage: npm run doctor [-- --json]', EXIT.usage);

  const checks = await runChecks();
  if (args.includes('--json')) {
    const plain = checks.map(({ name, status, detail, fix }) => (fix ? { name, status, detail, fix } : { name, status, detail }));
    process.stdout.write(JSON.stringify(plain, null, 2) + '\n');
  } else {
    printReport(checks);
  }
  return checks.some((check) => check.status === 'fail') ? 1 : 0;
});
