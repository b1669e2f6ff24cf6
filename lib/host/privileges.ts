// Root, or a user namespace: what lets this user create containers.
import { spawnSync } from 'node:child_process';
import { multithreadedCause, readIfExists, threadsOfOneThreadedProgram, unshareVersion } from './machine.js';

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
