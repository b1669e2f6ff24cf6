// Root, or a user namespace and a delegated cgroup: what lets this user create containers.
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { LIMIT_CONTROLLERS, detectCgroups, hostUid, multithreadedCause, readIfExists, threadsOfOneThreadedProgram, unshareVersion, type Cgroups, type ProbeResult } from './machine.js';

function sysctl(path: string): string | undefined {
  return readIfExists(path)?.trim();
}

/**
 * `command` run in a new user namespace where this user is root, entered by
 * util-linux's single-threaded `unshare` before the command starts (Node,
 * multi-threaded, cannot unshare CLONE_NEWUSER itself).
 */
export function inUserNamespace(command: readonly string[]): string[] {
  return ['unshare', '--user', '--map-root-user', '--', ...command];
}

/** True when util-linux's `unshare` can put this user in a user namespace mapped to root. */
export function userNamespacesWork(): boolean {
  const [program, ...args] = inUserNamespace(['true']);
  return spawnSync(program!, args, { stdio: 'ignore' }).status === 0;
}

/**
 * Why an unprivileged user cannot create a user namespace here, with the fix
 * (one paragraph); undefined when nothing is in the way.
 */
export function userNamespaceBlocker(): string | undefined {
  const [program, ...args] = inUserNamespace(['true']);
  const probe = spawnSync(program!, args, { encoding: 'utf8' });
  if (probe.status === 0) return undefined;
  const emulated = multithreadedCause(probe.stderr, threadsOfOneThreadedProgram());
  if (emulated) return `User namespaces cannot be created here: ${emulated}`;
  const options = 'Run as root (sudo npm run step N) or allow unprivileged user namespaces';
  if (unshareVersion() === undefined) {
    return `${options}: util-linux's \`unshare\` command is missing (install the util-linux package).`;
  }
  if (sysctl('/proc/sys/kernel/unprivileged_userns_clone') === '0') {
    return `${options}: this kernel disables them (Debian/older Ubuntu): \`sudo sysctl -w kernel.unprivileged_userns_clone=1\`.`;
  }
  if (sysctl('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === '1') {
    return `${options}: AppArmor blocks them (Ubuntu 23.10+): \`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0\` for this session.`;
  }
  if (sysctl('/proc/sys/user/max_user_namespaces') === '0') {
    return `${options}: their limit is 0: \`sudo sysctl -w user.max_user_namespaces=15000\`.`;
  }
  return `${options}: \`unshare --user --map-root-user true\` fails on this machine (a container or a seccomp profile may forbid it).`;
}

// ── Cgroups without root: delegation ───────────────────────────────────────────
//
// The cgroup tree belongs to root. systemd can hand a part of it over to a user
// (Delegate=yes): it chowns a cgroup's folder and its cgroup.procs,
// cgroup.subtree_control and cgroup.threads files to them, and the user may then
// create cgroups below it, set their limits and move their own processes
// between them. Two ways to be in such a cgroup:
//   - already: the caller's own cgroup is delegated (a container or a session
//     set up that way, or a shell started with systemd-run … -p Delegate=yes);
//   - ask systemd for one: `systemd-run --user --scope -p Delegate=yes -- CMD`
//     runs CMD in a new scope of the user's systemd instance, delegated to them.

/** What `npm run step` does for cgroups when it is not root. */
export type CgroupDelegation =
  /** This process may create cgroups (root, or a delegated cgroup): `base` is where. */
  | { kind: 'ready'; base: string; controllers: string[] }
  /** Not yet, but a systemd user instance runs: enter a scope of its own with Delegate=yes. */
  | { kind: 'systemd'; own: string }
  /** Neither: why, and what to do. */
  | { kind: 'none'; problem: string; fix: string };

/** The controllers cgroup `dir` offers to its children (its cgroup.controllers). */
export function availableControllers(dir: string): string[] {
  return (readIfExists(join(dir, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean);
}

/** $XDG_RUNTIME_DIR, or systemd's /run/user/<uid> when the variable is not set (sudo, su). */
function runtimeDir(): string {
  return process.env.XDG_RUNTIME_DIR || `/run/user/${hostUid()}`;
}

/** True when this user's systemd instance (systemd --user) is running: its private socket exists. */
export function systemdUserInstance(): boolean {
  try {
    return statSync(join(runtimeDir(), 'systemd', 'private')).isSocket() && commandExists('systemd-run');
  } catch {
    return false;
  }
}

function commandExists(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      accessSync(join(dir || '.', name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const AS_ROOT = 'or run as root: `sudo npm run step N` (with nvm: `sudo env "PATH=$PATH" npm run step N`). Steps 1–4 work without root.';
const GET_DELEGATION = 'Get a cgroup of your own from systemd: `systemd-run --user --scope -p Delegate=yes -- npm run step 5`';

/**
 * Can this process set cgroup limits, and where? For root, the hierarchy's
 * root; otherwise a cgroup v2 subtree delegated to the user (see above).
 */
export function cgroupDelegation(cgroups: Cgroups = detectCgroups()): CgroupDelegation {
  const pids = cgroups.controllers.pids;
  const memory = cgroups.controllers.memory;
  if (!pids || !memory) {
    return { kind: 'none', problem: `no cgroup hierarchy offers both the pids and the memory controllers (${cgroups.description})`, fix: '`npm run doctor` shows what this machine has.' };
  }
  if (pids.version === 1 || memory.version === 1) {
    if (pids.base && memory.base) return { kind: 'ready', base: pids.mountPoint, controllers: ['pids', 'memory'] };
    return {
      kind: 'none',
      problem: 'this machine keeps the pids and memory controllers in cgroup v1, which only root may use',
      fix: `Run steps 5 and later as root: \`sudo npm run step N\` (with nvm: \`sudo env "PATH=$PATH" npm run step N\`). Steps 1–4 work without root. (On cgroup v2 — boot with systemd.unified_cgroup_hierarchy=1 — systemd can delegate a cgroup to you instead.)`,
    };
  }
  const v2 = pids;
  if (v2.base) {
    const controllers = availableControllers(v2.base);
    const missing = LIMIT_CONTROLLERS.filter((controller) => !controllers.includes(controller));
    if (missing.length === 0) return { kind: 'ready', base: v2.base, controllers };
    return {
      kind: 'none',
      problem: `your delegated cgroup ${v2.base} does not offer the ${missing.join(' and ')} controller${missing.length > 1 ? 's' : ''} (it has: ${controllers.join(' ') || 'none'})`,
      fix:
        `Its parent must delegate them: for systemd user sessions, \`sudo systemctl edit user@.service\` with [Service] Delegate=pids memory, then log in again; ${AS_ROOT}`,
    };
  }
  const own = v2.ownCgroup.slice(v2.mountPoint.length) || '/';
  if (systemdUserInstance()) return { kind: 'systemd', own };
  return {
    kind: 'none',
    problem: `your cgroup (${own}) belongs to root, and no systemd user instance runs to delegate one to you (no ${join(runtimeDir(), 'systemd', 'private')})`,
    fix: `${GET_DELEGATION} (in a desktop or \`ssh\` session, where systemd runs for you), ${AS_ROOT}`,
  };
}

/**
 * `command` in a new scope of this user's systemd instance, delegated to the
 * user (Delegate=yes). systemd-run finds its instance through $XDG_RUNTIME_DIR
 * (not set after sudo or su); CFS_DELEGATED_SCOPE=1 tells the command it is in
 * the scope, so that it never asks again.
 */
export function inDelegatedScope(command: readonly string[]): string[] {
  return [
    'env', `XDG_RUNTIME_DIR=${runtimeDir()}`, 'CFS_DELEGATED_SCOPE=1',
    'systemd-run', '--user', '--scope', '--quiet', '--collect', '-p', 'Delegate=yes', '--', ...command,
  ];
}

/** True when a command that creates cgroups must first enter a delegated systemd scope (see cgroupDelegation). */
export function needsDelegatedScope(): boolean {
  return process.getuid?.() !== 0 && process.env.CFS_DELEGATED_SCOPE !== '1' && cgroupDelegation().kind === 'systemd';
}

/**
 * How to start a runtime without root: in a user namespace, entered by
 * `unshare` before Node starts; for steps with cgroups (`cgroups`), inside a
 * delegated cgroup: a new systemd scope when this process is not in one
 * already. The order matters: systemd-run asks this user's systemd (as this
 * user) for the scope and runs unshare in it; the runtime, root of the user
 * namespace, owns the scope's files (uid 0 inside maps to this user), so it
 * can create the container's cgroup below the scope.
 */
export function rootlessCommand(command: readonly string[], options: { cgroups: boolean }): string[] {
  const inNamespace = inUserNamespace(command);
  return options.cgroups && needsDelegatedScope() ? inDelegatedScope(inNamespace) : inNamespace;
}

/**
 * Ask this user's systemd for a delegated scope, as `npm run step` would, and
 * look inside: ok when the scope's cgroup is the user's to manage and offers
 * pids and memory. The scope ends with the probe.
 */
export function probeDelegatedScope(mountPoint: string): Promise<ProbeResult & { controllers?: string[] }> {
  const script =
    `d="${mountPoint}$(sed -n 's/^0:://p' /proc/self/cgroup)"; ` +
    'test -w "$d" && test -w "$d/cgroup.procs" && test -w "$d/cgroup.subtree_control" || { echo "the scope $d is not delegated to you" >&2; exit 1; }; ' +
    'cat "$d/cgroup.controllers"';
  const [program, ...args] = inDelegatedScope(['sh', '-c', script]);
  return new Promise((resolve) => {
    execFile(program!, args, { timeout: 10_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) return resolve({ ok: false, error: stderr.trim().split('\n')[0] || (error.killed ? 'timed out' : error.message) });
      resolve({ ok: true, controllers: stdout.trim().split(/\s+/).filter(Boolean) });
    });
  });
}
