// The workshop's steps, in order: one runtime file each, in steps/ (the
// participant's exercise) and solutions/ (the reference).
import { existsSync } from 'node:fs';
import { REPO_ROOT } from '../lib/paths.js';

export interface Step {
  number: number;
  /** File name without .ts, e.g. "04-mount". */
  stem: string;
  title: string;
  /** What the step adds, in one line. */
  adds: string;
}

const ALL_STEPS: Step[] = [
  { number: 1, stem: '01-exec', title: 'exec', adds: 're-spawn as a child that execvp()s the command' },
  { number: 2, stem: '02-uts', title: 'UTS namespace', adds: 'CLONE_NEWUTS + sethostname: a hostname of its own' },
  { number: 3, stem: '03-pid', title: 'PID namespace', adds: 'CLONE_NEWPID: the command is PID 1' },
  { number: 4, stem: '04-mount', title: 'mount namespace + pivot_root', adds: 'CLONE_NEWNS, /proc, /dev, pivot_root: a root filesystem of its own' },
  { number: 5, stem: '05-cgroups', title: 'cgroups', adds: 'a cgroup with pids and memory limits' },
  { number: 6, stem: '06-overlay', title: 'overlay filesystem', adds: 'a writable layer over a read-only rootfs' },
  { number: 7, stem: '07-net', title: 'network namespace', adds: 'CLONE_NEWNET with loopback up' },
  { number: 8, stem: '08-caps', title: 'capabilities', adds: 'drop dangerous capabilities before exec' },
  { number: 9, stem: '09-seccomp', title: 'seccomp', adds: 'no_new_privs and a syscall filter before exec' },
];

/** The steps this checkout has a solution for. */
export const STEPS: Step[] = ALL_STEPS.filter((step) => existsSync(solutionFile(step)));

export function solutionFile(step: Step): string {
  return `${REPO_ROOT}/solutions/${step.stem}.ts`;
}

export function exerciseFile(step: Step): string {
  return `${REPO_ROOT}/steps/${step.stem}.ts`;
}

/** "4" → step 4; anything else → undefined. */
export function findStep(text: string | undefined): Step | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  return STEPS.find((step) => step.number === Number(text));
}

/** Whether the step's runtime creates a cgroup (step 5 and every later one): without root, that needs a delegated cgroup. */
export function usesCgroups(step: Step): boolean {
  return step.number >= 5;
}
