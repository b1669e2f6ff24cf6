// Why a step changed the host, told from what it actually did: the call log
// of the run (lib/kernel/trace.ts writes it for the harness) says which side
// made which kernel call, in which order.
import { basename } from 'node:path';
import type { Mount } from './sandbox.js';
import type { RunResult } from './harness.js';

export interface LoggedCall {
  side: 'parent' | 'child';
  /** The call's name ("unshare"), or "#" for a note (spawn, cgroup file writes). */
  call: string;
  /** The rest: `unshare(CLONE_NEWUTS) = 0`, or the note's text. */
  text: string;
  ok: boolean;
}

export function parseCalls(lines: readonly string[]): LoggedCall[] {
  return lines.flatMap((line) => {
    const match = /^(parent|child) \d+ (.*)$/.exec(line);
    if (!match) return [];
    const text = match[2]!;
    const call = text.startsWith('# ') ? '#' : (/^(\w+)\(/.exec(text)?.[1] ?? '');
    return [{ side: match[1] as 'parent' | 'child', call, text: call === '#' ? text.slice(2) : text, ok: !/ = -1 /.test(text) }];
  });
}

/** What the child logs when its parent exited before telling it what to run (lib/container/runtime.ts). */
const PARENT_GONE = 'the parent is gone';

/** The index of the parent's spawn of the child in the log (-1 when it never spawned). */
function spawnIndex(calls: LoggedCall[]): number {
  return calls.findIndex((c) => c.side === 'parent' && c.call === '#' && c.text.startsWith('spawn('));
}

/** `unshare(CLONE_NEWUTS|CLONE_NEWPID) = 0` → "CLONE_NEWUTS|CLONE_NEWPID". */
function unshareFlags(call: LoggedCall): string {
  return /^unshare\(([^)]*)\)/.exec(call.text)?.[1] ?? '';
}

/** `sethostname("container", 9) = 0` → `sethostname("container", 9)`. */
function callOnly(call: LoggedCall): string {
  return call.text.replace(/ = .*$/, '').replace(/ → .*$/, '');
}

/** Why the sandbox's hostname changed: the cause, in one or two sentences. */
export function hostnameCause(run: RunResult): string {
  const calls = parseCalls(run.calls);
  const setter = calls.find((c) => c.call === 'sethostname' && c.ok);
  if (!setter) return 'The hostname was changed without going through sethostname() (a write to /proc/sys/kernel/hostname?) while the container was still in the host\'s UTS namespace.';
  const spawned = spawnIndex(calls);
  const parentUnshares = calls.filter((c, index) => c.side === 'parent' && c.call === 'unshare' && c.ok && (spawned === -1 || index < spawned));
  const lateUnshare = calls.find((c, index) => c.side === 'parent' && c.call === 'unshare' && c.ok && spawned !== -1 && index > spawned && unshareFlags(c).includes('CLONE_NEWUTS'));
  if (setter.side === 'parent') {
    return (
      `${callOnly(setter)} ran in the parent, which is still in the host's UTS namespace: the hostname is set in the child, ` +
      'which is born in the new UTS namespace the parent unshares just before spawnChild().'
    );
  }
  if (lateUnshare) {
    return `unshare(${unshareFlags(lateUnshare)}) came after spawnChild(): the child had already started in the host's UTS namespace, so its ${callOnly(setter)} renamed the host. Unshare first, then spawn.`;
  }
  if (parentUnshares.length === 0) {
    return `The parent never called unshare(CLONE_NEWUTS) before spawnChild(): the child was born in the host's UTS namespace, so its ${callOnly(setter)} renamed the host.`;
  }
  const flags = parentUnshares.map(unshareFlags).join(', then ');
  return (
    `The parent's unshare(${flags}) has no CLONE_NEWUTS: namespace flags add up with |, and leaving one out leaves the child ` +
    `in the host's UTS namespace, where its ${callOnly(setter)} renamed the host.`
  );
}

function describeMounts(mounts: Mount[]): string {
  const points = [...new Set(mounts.map((m) => `${m.mountPoint} (${m.fstype})`))];
  const shown = points.slice(0, 3).join(', ');
  return points.length > 3 ? `${shown}, and ${points.length - 3} more` : shown;
}

/** What the run did to the sandbox's mount table, and why: [what, cause]. */
export function mountDamage(run: RunResult): [string, string] {
  const { added, removed, repropagated } = run.mounts;
  const calls = parseCalls(run.calls);
  const unsharedNs = (side: 'parent' | 'child') => calls.some((c) => c.side === side && c.call === 'unshare' && c.ok && unshareFlags(c).includes('CLONE_NEWNS'));
  const childMounts = calls.filter((c) => c.side === 'child' && c.call === 'mount' && c.ok);
  const privateIndex = childMounts.findIndex((c) => c.text.includes('MS_PRIVATE'));
  const rootMoved = added.some((m) => m.mountPoint === '/') || removed.some((m) => m.mountPoint === '/');
  const what = [
    added.length > 0 ? `${added.length} mount${added.length > 1 ? 's' : ''} appeared on the host: ${describeMounts(added)}` : '',
    rootMoved ? "the host's own root was replaced (pivot_root ran in the host's mount namespace)" : '',
    repropagated.length > 0 ? `the propagation of the host's ${describeMounts(repropagated)} was changed` : '',
  ].filter(Boolean).join('; ');
  let cause: string;
  if (!unsharedNs('child') && !unsharedNs('parent')) {
    cause = "The child never called unshare(CLONE_NEWNS): its mounts (and pivot_root) happened in the host's own mount namespace. The child needs a mount namespace of its own first.";
  } else if (privateIndex === -1) {
    cause =
      "The child's new mount namespace still shares propagation with the host: `/` is a shared mount on most machines (systemd), so new mounts travel back to it. " +
      'Make every mount private (MS_REC | MS_PRIVATE on `/`) right after unshare(CLONE_NEWNS), before mounting anything.';
  } else if (privateIndex > 0) {
    cause = '`/` was made private only after other mounts: those had already propagated to the host. Make it private first, right after unshare(CLONE_NEWNS).';
  } else if (!childMounts[privateIndex]!.text.includes('MS_REC')) {
    cause = 'MS_PRIVATE without MS_REC changes `/` only: the mounts under it stay shared with the host. Use MS_REC | MS_PRIVATE.';
  } else {
    cause = 'A mount was made where the host sees it.';
  }
  return [what, cause];
}

/** Why the runtime's own process (the parent) is not in the host's mount namespace. */
export function parentMountNamespaceCause(run: RunResult): string {
  const calls = parseCalls(run.calls);
  const parentNs = calls.find((c) => c.side === 'parent' && c.call === 'unshare' && unshareFlags(c).includes('CLONE_NEWNS'));
  return parentNs
    ? `The parent called unshare(${unshareFlags(parentNs)}): with CLONE_NEWNS the parent itself moves into the new mount namespace, and the child's pivot_root then moves the parent's root too (it can no longer reach /sys/fs/cgroup or the layer folders to clean up). Only the child unshares CLONE_NEWNS.`
    : 'The parent is in another mount namespace than the one it started in: only the child may get a new one.';
}

/** Why the runtime's own process (the parent) is in the container's cgroup. */
export function parentCgroupCause(run: RunResult): string {
  const calls = parseCalls(run.calls);
  const join = calls.find((c) => c.side === 'parent' && c.call === '#' && /cgroup\.procs/.test(c.text));
  return join
    ? `The parent wrote itself into the cgroup (${join.text}): join() belongs in the child. A parent inside counts against the limits, and cannot remove the cgroup it sits in — its cleanup kills it.`
    : 'The parent is inside the container\'s cgroup: only the child joins it (and the command it execs inherits that).';
}

/** Why a container ran nothing, when the runtime itself said nothing (✗ …) about it. */
export function startCause(run: RunResult): string | undefined {
  const calls = parseCalls(run.calls);
  const exec = calls.find((c) => c.side === 'child' && (c.call === 'execvp' || c.call === 'execvpe'));
  if (!exec) {
    if (spawnIndex(calls) === -1) return 'The parent never spawned the child (spawnChild), so nothing could run the command.';
    if (calls.some((c) => c.side === 'child' && c.call === '#' && c.text.startsWith(PARENT_GONE))) {
      return 'The parent exited right after spawning the child, and the kernel ended the child with it (exit status 0 is the parent\'s own): the parent waits for its child, returning the status spawnChild resolves with.';
    }
    return 'The child never called execvp: it ended before the command could run — the command only replaces the child through exec.';
  }
  const match = /^execvpe?\(("(?:[^"\\]|\\.)*"), \[("(?:[^"\\]|\\.)*")/.exec(exec.text);
  if (!match) return undefined;
  const [file, first] = [JSON.parse(match[1]!) as string, JSON.parse(match[2]!) as string];
  if (basename(file) !== basename(first)) {
    return `The child called execvp(${JSON.stringify(file)}, [${JSON.stringify(first.length > 20 ? `${first.slice(0, 20)}…` : first)}, …]): argv[0] must be the program's own name — argv is the whole command line, and the program reads its arguments from argv[1] on.`;
  }
  return undefined;
}
