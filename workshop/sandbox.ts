// The throwaway sandbox every check container runs in.
//
// A wrong step can damage the machine it runs on: sethostname() without a UTS
// namespace renames the host, mounts without MS_PRIVATE propagate to it,
// pivot_root() in the host's mount namespace would move every process's root.
// So the harness never runs a step on the host directly. It runs it in a
// sandbox of its own, made by util-linux `unshare --uts --mount` (as root;
// without root, in the user namespace the checks need anyway):
//
//   - a UTS namespace: a wrong sethostname() renames the sandbox, not the host;
//   - a mount namespace, made private (nothing in it reaches the host), then
//     made shared again *inside*: a step that forgets MS_PRIVATE leaks its
//     mounts into the sandbox, as it would into a systemd host, where the
//     harness sees them.
//
// A small shell script in the sandbox reports, on file descriptor 3, the
// sandbox's hostname and mount table before and after the runtime ran. Both
// "after" readings go through descriptors opened before: a step that
// pivot_root()s in the sandbox's own namespace leaves no path to them.
import { spawnSync } from 'node:child_process';

/** The script run as `sh -c SCRIPT sandbox <runtime argv...>`, report on fd 3. */
const SCRIPT = [
  'mount --make-rshared / || { echo "error mount --make-rshared / failed" >&3; exit 125; }',
  'exec 5</proc/self/mountinfo 6</proc/sys/kernel/hostname',
  'read -r h </proc/sys/kernel/hostname; printf "hostname-before %s\\n" "$h" >&3',
  'while IFS= read -r l; do printf "before %s\\n" "$l"; done </proc/self/mountinfo >&3',
  '"$@" 3>&- 5<&- 6<&-',
  's=$?',
  'printf "status %s\\n" "$s" >&3',
  'read -r h <&6 && printf "hostname-after %s\\n" "$h" >&3',
  'while IFS= read -r l <&5; do printf "after %s\\n" "$l"; done >&3',
  'exit $s',
].join('\n');

/** `command` (the runtime's argv) inside a new sandbox; `userNamespace` when not root. */
export function sandboxed(command: readonly string[], userNamespace: boolean): string[] {
  const user = userNamespace ? ['--user', '--map-root-user'] : [];
  return ['unshare', ...user, '--uts', '--mount', '--', 'sh', '-c', SCRIPT, 'sandbox', ...command];
}

const available = new Map<boolean, boolean>();

/** Can this user make a sandbox (util-linux unshare, and the right to use it)? Asked once. */
export function sandboxAvailable(userNamespace: boolean): boolean {
  if (process.env.CFS_SANDBOX === 'off') return false; // for the test of the unsandboxed fallback only
  if (!available.has(userNamespace)) {
    const [program, ...args] = sandboxed(['true'], userNamespace);
    available.set(userNamespace, spawnSync(program!, args, { stdio: 'ignore' }).status === 0);
  }
  return available.get(userNamespace)!;
}

/** One line of /proc/self/mountinfo, the fields a diagnosis needs. */
export interface Mount {
  id: string;
  mountPoint: string;
  fstype: string;
  source: string;
  /** "shared:3", "master:1", …; empty when private. */
  propagation: string;
}

export interface SandboxReport {
  hostnameBefore?: string;
  hostnameAfter?: string;
  mountsBefore: Mount[];
  /** undefined when the after-reading is missing (the sandbox was killed). */
  mountsAfter?: Mount[];
  /** Set when the sandbox itself could not be set up. */
  error?: string;
}

/** "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw" (proc(5)). */
export function parseMountinfoLine(line: string): Mount | undefined {
  const [left, right] = line.split(' - ');
  if (!left || !right) return undefined;
  const fields = left.split(' ');
  const [fstype = '', source = ''] = right.split(' ');
  return { id: fields[0] ?? '', mountPoint: unescapeMountPath(fields[4] ?? ''), fstype, source, propagation: fields.slice(6).join(' ') };
}

function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function parseReport(text: string): SandboxReport {
  const report: SandboxReport = { mountsBefore: [] };
  const after: Mount[] = [];
  let sawStatus = false;
  for (const line of text.split('\n')) {
    const space = line.indexOf(' ');
    const [key, value] = space === -1 ? [line, ''] : [line.slice(0, space), line.slice(space + 1)];
    if (key === 'hostname-before') report.hostnameBefore = value;
    else if (key === 'hostname-after') report.hostnameAfter = value;
    else if (key === 'before') {
      const mount = parseMountinfoLine(value);
      if (mount) report.mountsBefore.push(mount);
    } else if (key === 'after') {
      const mount = parseMountinfoLine(value);
      if (mount) after.push(mount);
    } else if (key === 'status') sawStatus = true;
    else if (key === 'error') report.error = value;
  }
  if (sawStatus) report.mountsAfter = after;
  return report;
}

export interface MountChanges {
  added: Mount[];
  removed: Mount[];
  /** Mounts whose propagation changed (e.g. `/` made private in the sandbox's own namespace). */
  repropagated: Mount[];
}

/** What the runtime changed in the sandbox's mount table (empty when nothing, or when unknown). */
export function mountChanges(report: SandboxReport): MountChanges {
  const changes: MountChanges = { added: [], removed: [], repropagated: [] };
  if (!report.mountsAfter) return changes;
  const before = new Map(report.mountsBefore.map((mount) => [mount.id, mount]));
  const after = new Map(report.mountsAfter.map((mount) => [mount.id, mount]));
  for (const mount of report.mountsAfter) {
    const old = before.get(mount.id);
    if (!old) changes.added.push(mount);
    else if (old.propagation !== mount.propagation) changes.repropagated.push(mount);
  }
  for (const mount of report.mountsBefore) if (!after.has(mount.id)) changes.removed.push(mount);
  return changes;
}
