// Hints that know the situation. The same errno means different things at
// different moments: mount() saying ENOENT before pivot_root usually means a
// missing folder in the rootfs; after pivot_root it means a host path that is
// no longer there. So every successful call is remembered (in this process),
// and a failed call's hint is chosen from what already happened.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { CLONE_NEWNS, MS_BIND, MS_PRIVATE, MS_REC } from './constants.js';

/** A call that worked, with the arguments as the program passed them. */
export interface CallRecord {
  call: string;
  args: readonly unknown[];
}

const history: CallRecord[] = [];

/** Record a call that worked (libc.ts does, for every call). */
export function remember(call: string, args: readonly unknown[]): void {
  history.push({ call, args });
}

function did(call: string, test: (args: readonly unknown[]) => boolean = () => true): boolean {
  return history.some((record) => record.call === call && test(record.args));
}

const flagsOf = (args: readonly unknown[], index: number): number => Number(args[index] ?? 0);

function realpath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** The mounts made so far that could be a new root: a folder bind-mounted onto itself, or an overlay. */
function rootCandidates(): string[] {
  return history
    .filter((r) => r.call === 'mount' && (((flagsOf(r.args, 3) & MS_BIND) !== 0 && r.args[0] === r.args[1]) || r.args[2] === 'overlay'))
    .map((r) => String(r.args[1]));
}

/** `lowerdir=…,upperdir=…,workdir=…` → its fields. */
function overlayFields(data: string): Record<string, string> {
  return Object.fromEntries(data.split(',').map((part) => part.split('=', 2) as [string, string]));
}

/** Has this process lost CAP_SYS_ADMIN from its bounding set (so something dropped it before us)? */
function boundingSetLacksSysAdmin(): boolean {
  try {
    const mask = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return mask !== undefined && ((BigInt(`0x${mask}`) >> 21n) & 1n) === 0n;
  } catch {
    return false;
  }
}

/**
 * The hint for `call` failing with `errno`, given what this process already
 * did; undefined when the general hint for that errno fits.
 */
export function contextualHint(call: string, errno: string, args: readonly unknown[]): string | undefined {
  const pivoted = did('pivot_root');
  if (call === 'mount' && errno === 'ENOENT') {
    const [source, target, fstype, , data] = args.map((a) => String(a ?? ''));
    if (pivoted && target?.startsWith('/') && !existsSync(target)) {
      return (
        `pivot_root already happened: ${target} is a path of the host's file system, which is gone from this root. ` +
        'Mount it before pivot_root (under the rootfs), or after it at the path inside the new root (e.g. /proc).'
      );
    }
    if (fstype === 'overlay') {
      const fields = overlayFields(data ?? '');
      const missing = [['mount point', target], ['upperdir', fields.upperdir], ['workdir', fields.workdir]]
        .filter(([, path]) => path && !existsSync(path))
        .map(([what, path]) => `${what} ${path}`);
      if (missing.length > 0) {
        return (
          `The overlay's folders do not exist (${missing.join(', ')}): the parent creates them with ` +
          'createLayers(container.id) before spawnChild(), and the child finds the same paths with layersOf(container.id).'
        );
      }
      const lower = fields.lowerdir;
      if (lower && !existsSync(lower)) return `The lower layer ${lower} (the rootfs) does not exist: build it with \`npm run rootfs\`.`;
    }
    if (source && (flagsOf(args, 3) & MS_BIND) !== 0 && !existsSync(source)) {
      return (
        `${source} does not exist, so there is nothing to bind-mount. Is the rootfs built (\`npm run rootfs\`)? ` +
        'In the parent, ensureRootfs(container.rootfs) says what is wrong with it before the child starts.'
      );
    }
    if (target && !existsSync(target)) {
      return `The mount point ${target} does not exist. The rootfs needs empty /proc, /dev and /sys folders: \`npm run rootfs -- --force\` rebuilds it.`;
    }
    return undefined;
  }
  if (call === 'mount' && errno === 'EINVAL' && String(args[2]) === 'overlay') {
    const fields = overlayFields(String(args[4] ?? ''));
    const absent = ['lowerdir', 'upperdir', 'workdir'].filter((field) => !fields[field]);
    if (absent.length > 0) {
      return `The overlay needs ${absent.join(' and ')} in its options: lowerdir=<rootfs>,upperdir=<upper>,workdir=<work> (workdir next to upperdir, on the same file system). overlayOptions() builds them.`;
    }
    return undefined;
  }
  if (call === 'pivot_root' && (errno === 'EINVAL' || errno === 'EBUSY')) {
    const cwd = process.cwd();
    const candidates = rootCandidates();
    if (candidates.length > 0 && !candidates.map(realpath).includes(realpath(cwd))) {
      return (
        `pivot_root('.', '.') makes the current folder the new root, and the current folder is ${cwd}, ` +
        `not the new root you mounted (${candidates[candidates.length - 1]}): chdir() into it first.`
      );
    }
    if (candidates.length === 0) {
      return (
        'The new root must be a mount point of its own, and nothing was mounted on it: bind-mount the rootfs onto ' +
        "itself first (mount(rootfs, rootfs, '', MS_BIND | MS_REC)), then chdir into it and pivot_root('.', '.')."
      );
    }
    if (!did('mount', (a) => (flagsOf(a, 3) & MS_PRIVATE) !== 0)) {
      return (
        "`/` is a shared mount here, and pivot_root refuses to move a shared mount: make every mount private first, right after unshare(CLONE_NEWNS): mount('none', '/', '', MS_REC | MS_PRIVATE)."
      );
    }
    if (!did('mount', (a) => (flagsOf(a, 3) & MS_PRIVATE) !== 0 && (flagsOf(a, 3) & MS_REC) !== 0)) {
      return 'MS_PRIVATE without MS_REC only changes `/` itself; the mounts under it stay shared: use MS_REC | MS_PRIVATE.';
    }
    return undefined;
  }
  if (call === 'umount2' && errno === 'EINVAL' && !pivoted) {
    return "umount2('.', MNT_DETACH) detaches the old root that pivot_root('.', '.') stacked on the new one: call it right after pivot_root.";
  }
  if (call === 'chdir' && errno === 'ENOENT' && pivoted) {
    return `After pivot_root, ${String(args[0])} (a host path) is gone: the new root is \`/\`, so chdir('/').`;
  }
  if (call === 'execvp' && errno === 'ENOENT' && !pivoted) {
    return "The command was not found in the container (in the folders of its PATH). Until step 4, the container sees the host's files: is the program installed on this machine?";
  }
  if ((call === 'unshare' || call === 'mount' || call === 'sethostname') && errno === 'EPERM' && process.geteuid?.() === 0 && boundingSetLacksSysAdmin()) {
    return (
      'This process is root but its bounding set has no CAP_SYS_ADMIN any more: the capabilities were dropped ' +
      'before it ran (in the parent?). Drop them in the child, after its own setup, right before execvp.'
    );
  }
  if (call === 'mount' && errno === 'EINVAL' && (flagsOf(args, 3) & MS_PRIVATE) !== 0 && !did('unshare', (a) => (flagsOf(a, 0) & CLONE_NEWNS) !== 0)) {
    return 'Changing propagation needs a mount namespace of its own first: unshare(CLONE_NEWNS), then make `/` private.';
  }
  return undefined;
}
