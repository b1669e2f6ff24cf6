// The mistake catalogue: classic mistakes of each step, each a small edit of
// the reference solution as a participant would make it, with what
// `npm run check N` must say about it. tests/mistakes.test.ts runs every one
// (the check must fail, name the cause, leave the host untouched and fit one
// screen); WORKSHOP.md quotes some of their outputs (workshop/transcripts.ts).
//
// To add one (e.g. for a new step): a row below. `edits` are applied, in
// order, to the solution without its TODO markers; each `find` must occur
// exactly once. `cause` is what the output must contain for the participant to
// know what they did wrong.
import { spawn } from 'node:child_process';
import { chownSync, cpSync, existsSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname, tmpdir } from 'node:os';
import { CGROUP_PARENT, cgroupLayout } from '../lib/container/cgroups.js';
import { LAYERS_PARENT } from '../lib/container/overlay.js';
import { REPO_ROOT } from '../lib/paths.js';
import { plainSolution } from './exercises.js';
import { STEPS, solutionFile } from './steps.js';

export interface Mistake {
  /** Short and stable: WORKSHOP.md refers to it. */
  id: string;
  step: number;
  /** What the participant did, in their words. */
  title: string;
  edits: { find: string; replace: string }[];
  /** The output must match: it names the cause. */
  cause: RegExp;
}

const CHILD_EXEC = 'execvp(container.command[0], container.command);';

export const MISTAKES: Mistake[] = [
  // ── Step 1: exec ──
  {
    id: 'exec-placeholder-left',
    step: 1,
    title: 'leaves the placeholder: the child exits instead of exec-ing',
    edits: [{ find: CHILD_EXEC, replace: 'process.exit(0);' }],
    cause: /did not run its command[\s\S]*exec replaces the running program/,
  },
  {
    id: 'exec-argv-without-name',
    step: 1,
    title: 'passes only the arguments as argv (no program name)',
    edits: [{ find: CHILD_EXEC, replace: 'execvp(container.command[0], container.command.slice(1));' }],
    cause: /argv\[0\]/,
  },
  {
    id: 'exec-whole-array',
    step: 1,
    title: 'passes the whole command array as the file: execvp(container.command)',
    edits: [{ find: CHILD_EXEC, replace: 'execvp(container.command);' }],
    cause: /steps\/01-exec\.ts:\d+:\d+ — Expected 2 arguments, but got 1/,
  },
  {
    id: 'exec-syntax-error',
    step: 1,
    title: 'forgets a closing parenthesis',
    edits: [{ find: CHILD_EXEC, replace: 'execvp(container.command[0], container.command;' }],
    cause: /does not compile[\s\S]*steps\/01-exec\.ts:\d+:\d+ — Expected "\)"/,
  },
  {
    id: 'exec-in-parent',
    step: 1,
    title: 'returns a number instead of the child’s status',
    edits: [{ find: 'return spawnChild(container);', replace: 'spawnChild(container);\n    return 0;' }],
    cause: /exit status[\s\S]*the parent waits for its child/,
  },
  // ── Step 2: UTS namespace ──
  {
    id: 'uts-no-unshare',
    step: 2,
    title: 'forgets unshare(CLONE_NEWUTS)',
    edits: [{ find: '    unshare(CLONE_NEWUTS);\n', replace: '' }],
    cause: /renamed the host[\s\S]*never called unshare\(CLONE_NEWUTS\)/,
  },
  {
    id: 'uts-sethostname-in-parent',
    step: 2,
    title: 'sets the hostname in the parent, before unsharing',
    edits: [
      { find: '    unshare(CLONE_NEWUTS);\n', replace: '    sethostname(container.hostname);\n    unshare(CLONE_NEWUTS);\n' },
      { find: '    sethostname(container.hostname);\n    execvp', replace: '    execvp' },
    ],
    cause: /renamed the host[\s\S]*ran in the parent/,
  },
  {
    id: 'uts-unshare-after-spawn',
    step: 2,
    title: 'unshares after spawnChild()',
    edits: [{ find: '    unshare(CLONE_NEWUTS);\n    return spawnChild(container);', replace: '    const status = spawnChild(container);\n    unshare(CLONE_NEWUTS);\n    return status;' }],
    cause: /renamed the host[\s\S]*came after spawnChild\(\)/,
  },
  {
    id: 'uts-hard-coded-name',
    step: 2,
    title: "hard-codes sethostname('container')",
    edits: [{ find: 'sethostname(container.hostname);', replace: "sethostname('container');" }],
    cause: /--hostname NAME[\s\S]*not from a fixed string/,
  },
  {
    id: 'uts-no-sethostname',
    step: 2,
    title: 'forgets sethostname in the child',
    edits: [{ find: '    sethostname(container.hostname);\n', replace: '' }],
    cause: /expected hostname "container\\n"[\s\S]*sets the container’s hostname/,
  },
  // ── Step 3: PID namespace ──
  {
    id: 'pid-replaces-uts-flag',
    step: 3,
    title: 'unshare(CLONE_NEWPID) instead of CLONE_NEWUTS | CLONE_NEWPID',
    edits: [{ find: 'unshare(CLONE_NEWUTS | CLONE_NEWPID);', replace: 'unshare(CLONE_NEWPID);' }],
    cause: /renamed the host[\s\S]*unshare\(CLONE_NEWPID\) has no CLONE_NEWUTS/,
  },
  {
    id: 'pid-and-instead-of-or',
    step: 3,
    title: 'combines the flags with & instead of |',
    edits: [{ find: 'unshare(CLONE_NEWUTS | CLONE_NEWPID);', replace: 'unshare(CLONE_NEWUTS & CLONE_NEWPID);' }],
    cause: /renamed the host[\s\S]*has no CLONE_NEWUTS/,
  },
  {
    id: 'pid-unshare-in-child',
    step: 3,
    title: 'unshares the PID namespace in the child',
    edits: [
      { find: 'unshare(CLONE_NEWUTS | CLONE_NEWPID);', replace: 'unshare(CLONE_NEWUTS);' },
      { find: '    sethostname(container.hostname);\n    execvp', replace: '    unshare(CLONE_NEWPID);\n    sethostname(container.hostname);\n    execvp' },
    ],
    cause: /expected \$\$ inside "1\\n"[\s\S]*does not move the caller/,
  },
  // ── Step 4: mount namespace + pivot_root ──
  {
    id: 'mount-not-private',
    step: 4,
    title: 'forgets to make / private',
    edits: [{ find: "    mount('none', '/', '', MS_REC | MS_PRIVATE);\n", replace: '' }],
    cause: /changed the host's mounts[\s\S]*still shares propagation[\s\S]*MS_REC \| MS_PRIVATE/,
  },
  {
    id: 'mount-namespace-in-parent',
    step: 4,
    title: 'unshares CLONE_NEWNS in the parent instead of the child',
    edits: [
      { find: '    unshare(CLONE_NEWUTS | CLONE_NEWPID);\n    return spawnChild', replace: '    unshare(CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWNS);\n    return spawnChild' },
      { find: '    unshare(CLONE_NEWNS);\n', replace: '' },
    ],
    cause: /stay in the mount namespace[\s\S]*The parent called unshare\([A-Z_|]*CLONE_NEWNS[A-Z_|]*\)/,
  },
  {
    id: 'mount-no-namespace',
    step: 4,
    title: 'forgets unshare(CLONE_NEWNS) altogether',
    edits: [{ find: '    unshare(CLONE_NEWNS);\n', replace: '' }],
    cause: /changed the host's mounts[\s\S]*never called unshare\(CLONE_NEWNS\)/,
  },
  {
    id: 'mount-no-bind',
    step: 4,
    title: 'pivots without bind-mounting the rootfs onto itself',
    edits: [{ find: "    mount(rootfs, rootfs, '', MS_BIND | MS_REC);\n", replace: '' }],
    cause: /pivot_root\("\.", "\."\) failed[\s\S]*(nothing was mounted on it|mount point of its own)/,
  },
  {
    id: 'mount-no-chdir',
    step: 4,
    title: 'forgets chdir(rootfs) before pivotRoot(".", ".")',
    edits: [{ find: '    chdir(rootfs);\n', replace: '' }],
    cause: /pivot_root\("\.", "\."\) failed[\s\S]*the current folder is[\s\S]*chdir\(\) into it first/,
  },
  {
    id: 'mount-proc-after-pivot',
    step: 4,
    title: 'mounts /proc after pivot_root, still with the host path',
    edits: [
      { find: "    mount('proc', `${rootfs}/proc`, 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC);\n", replace: '' },
      { find: "    umount2('.', MNT_DETACH);\n", replace: "    umount2('.', MNT_DETACH);\n    mount('proc', `${rootfs}/proc`, 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC);\n" },
    ],
    cause: /ENOENT[\s\S]*pivot_root already happened/,
  },
  {
    id: 'mount-no-proc',
    step: 4,
    title: 'forgets to mount /proc',
    edits: [{ find: "    mount('proc', `${rootfs}/proc`, 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC);\n", replace: '' }],
    cause: /ps shows only the container[\s\S]*proc of its own/,
  },
  {
    id: 'mount-no-detach',
    step: 4,
    title: "forgets umount2('.', MNT_DETACH)",
    edits: [{ find: "    umount2('.', MNT_DETACH);\n", replace: '' }],
    cause: /old root is detached[\s\S]*stays stacked on the new one/,
  },
  {
    id: 'mount-no-dev',
    step: 4,
    title: 'forgets mountMinimalDev(rootfs)',
    edits: [{ find: '    mountMinimalDev(rootfs);\n', replace: '' }],
    cause: /\/dev is not the container's own tmpfs[\s\S]*mountMinimalDev/,
  },
  // ── Step 5: cgroups ──
  {
    id: 'cgroup-never-joined',
    step: 5,
    title: 'creates the cgroup but never joins it',
    edits: [{ find: '    existingCgroup(container.id).join();\n', replace: '' }],
    cause: /cgroup of its own[\s\S]*child joins the cgroup the parent made/,
  },
  {
    id: 'cgroup-joined-in-parent',
    step: 5,
    title: 'joins the cgroup in the parent',
    edits: [
      { find: '    cgroup.limitMemory(parseSize(container.memory));\n', replace: '    cgroup.limitMemory(parseSize(container.memory));\n    cgroup.join();\n' },
      { find: '    existingCgroup(container.id).join();\n', replace: '' },
    ],
    cause: /The parent wrote itself into the cgroup/,
  },
  {
    id: 'cgroup-never-created',
    step: 5,
    title: 'joins a cgroup the parent never created',
    edits: [{ find: '    const cgroup = createCgroup(container.id);\n', replace: '    const cgroup = existingCgroup(container.id);\n' }],
    cause: /this cgroup does not exist[\s\S]*createCgroup\(container\.id/,
  },
  {
    id: 'cgroup-not-removed',
    step: 5,
    title: 'forgets cgroup.remove()',
    edits: [{ find: '    await cgroup.remove();\n', replace: '' }],
    cause: /no cgroup is left behind[\s\S]*still there \(the check removed it\)/,
  },
  {
    id: 'cgroup-no-memory-limit',
    step: 5,
    title: 'forgets the memory limit',
    edits: [{ find: '    cgroup.limitMemory(parseSize(container.memory));\n', replace: '' }],
    cause: /OOM-killed: exit status[\s\S]*memory limit is a file of the cgroup/,
  },
  // ── Step 6: overlay ──
  {
    id: 'overlay-still-bind-mount',
    step: 6,
    title: 'still bind-mounts rootfs/ instead of mounting an overlay',
    edits: [
      {
        find: "    const layers = layersOf(container.id);\n    const root = layers.merged;\n    mount('overlay', root, 'overlay', 0, overlayOptions(container, layers));\n",
        replace: "    const root = container.rootfs;\n    mount(root, root, '', MS_BIND | MS_REC);\n",
      },
    ],
    cause: /never reaches rootfs\/[\s\S]*writes straight into rootfs\//,
  },
  {
    id: 'overlay-layers-never-created',
    step: 6,
    title: 'forgets createLayers() in the parent',
    edits: [{ find: '    createLayers(container.id);\n', replace: '' }],
    cause: /overlay's folders do not exist[\s\S]*createLayers\(container\.id\)/,
  },
  {
    id: 'overlay-no-workdir',
    step: 6,
    title: 'leaves out workdir in the overlay options',
    edits: [{ find: 'overlayOptions(container, layers)', replace: '`lowerdir=${container.rootfs},upperdir=${layers.upper}`' }],
    cause: /EINVAL[\s\S]*needs workdir/,
  },
  {
    id: 'overlay-not-removed',
    step: 6,
    title: 'forgets removeLayers()',
    edits: [{ find: '    removeLayers(container.id);\n', replace: '' }],
    cause: /no overlay folder is left behind[\s\S]*still there \(the check removed it\)/,
  },
  {
    id: 'overlay-pivot-into-rootfs',
    step: 6,
    title: 'mounts the overlay but pivots into rootfs/',
    edits: [{ find: '    chdir(root);\n', replace: '    chdir(container.rootfs);\n' }],
    cause: /pivot_root\("\.", "\."\) failed[\s\S]*not the new root you mounted/,
  },
  // ── Step 7: network ──
  {
    id: 'net-no-namespace',
    step: 7,
    title: 'forgets CLONE_NEWNET',
    edits: [{ find: 'unshare(CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWNET);', replace: 'unshare(CLONE_NEWUTS | CLONE_NEWPID);' }],
    cause: /only network interface is lo[\s\S]*single interface, the loopback/,
  },
  {
    id: 'net-lo-down',
    step: 7,
    title: 'forgets to bring lo up',
    edits: [{ find: "    setInterfaceFlags(fd, 'lo', getInterfaceFlags(fd, 'lo') | IFF_UP);\n", replace: '' }],
    cause: /lo is UP[\s\S]*starts down/,
  },
  {
    id: 'net-no-sysfs',
    step: 7,
    title: 'forgets the sysfs mount',
    edits: [{ find: "    mount('sysfs', `${root}/sys`, 'sysfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);\n", replace: '' }],
    cause: /lo is UP[\s\S]*No such file[\s\S]*sysfs/,
  },
  {
    id: 'net-interface-typo',
    step: 7,
    title: "a typo in the interface name: 'lo0'",
    edits: [{ find: "setInterfaceFlags(fd, 'lo', getInterfaceFlags(fd, 'lo') | IFF_UP);", replace: "setInterfaceFlags(fd, 'lo0', getInterfaceFlags(fd, 'lo0') | IFF_UP);" }],
    cause: /ioctl\(\d+, SIOCGIFFLAGS, \{ifr_name="lo0"\}\) failed: ENODEV/,
  },
  // ── Step 8: capabilities ──
  {
    id: 'caps-not-dropped',
    step: 8,
    title: 'forgets to drop the capabilities',
    edits: [
      {
        find: '    for (const capability of dangerousCapabilities()) {\n      prctl(PR_CAPBSET_DROP, capability.number, `PR_CAPBSET_DROP, ${capability.name}`);\n    }\n',
        replace: '',
      },
    ],
    cause: /hostname foo[\s\S]*bounding set/,
  },
  {
    id: 'caps-dropped-in-parent',
    step: 8,
    title: 'drops the capabilities in the parent',
    edits: [
      {
        find: '    for (const capability of dangerousCapabilities()) {\n      prctl(PR_CAPBSET_DROP, capability.number, `PR_CAPBSET_DROP, ${capability.name}`);\n    }\n',
        replace: '',
      },
      {
        find: '    unshare(CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWNET);\n',
        replace: '    unshare(CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWNET);\n    for (const capability of dangerousCapabilities()) prctl(PR_CAPBSET_DROP, capability.number, capability.name);\n',
      },
    ],
    cause: /EPERM[\s\S]*capabilities were dropped before it ran \(in the parent\?\)/,
  },
  {
    id: 'caps-proc-sys-writable',
    step: 8,
    title: 'forgets to make /proc/sys read-only',
    edits: [
      {
        find: "    for (const path of READONLY_PATHS.filter((path) => existsSync(path))) {\n      mount(path, path, '', MS_BIND);\n      mount(path, path, '', MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);\n    }\n",
        replace: '',
      },
    ],
    cause: /\/proc\/sys is read-only[\s\S]*only check permissions/,
  },
  {
    id: 'caps-prctl-object',
    step: 8,
    title: 'passes the capability object to prctl',
    edits: [{ find: 'prctl(PR_CAPBSET_DROP, capability.number, `PR_CAPBSET_DROP, ${capability.name}`);', replace: 'prctl(PR_CAPBSET_DROP, capability, `PR_CAPBSET_DROP, ${capability.name}`);' }],
    cause: /steps\/08-caps\.ts:\d+:\d+ — Argument of type 'Capability' is not assignable to parameter of type 'number'/,
  },
  {
    id: 'caps-no-nodev',
    step: 8,
    title: 'forgets to remount the root nodev',
    edits: [{ find: "    mount('/', '/', '', MS_BIND | MS_REMOUNT | MS_NODEV);\n", replace: '' }],
    cause: /device files of the rootfs[\s\S]*to include nodev/,
  },
  {
    id: 'caps-mask-before-pivot',
    step: 8,
    title: "masks runc's paths before pivot_root (on the host's /proc)",
    edits: [
      { find: '    for (const path of MASKED_PATHS) maskPath(path);\n', replace: '' },
      { find: "    chdir(root);\n    pivotRoot('.', '.');", replace: "    for (const path of MASKED_PATHS) maskPath(path);\n    chdir(root);\n    pivotRoot('.', '.');" },
    ],
    cause: /masked paths are hidden[\s\S]*to be masked/,
  },

  // ── Step 9: seccomp ──
  {
    id: 'seccomp-no-no-new-privs',
    step: 9,
    title: 'forgets no_new_privs',
    edits: [{ find: "    prctl(PR_SET_NO_NEW_PRIVS, 1, 'PR_SET_NO_NEW_PRIVS, 1');\n", replace: '' }],
    cause: /no_new_privs is set[\s\S]*NoNewPrivs/,
  },
  {
    id: 'seccomp-no-arch-check',
    step: 9,
    title: 'filters on the syscall number only, without checking the architecture',
    edits: [{ find: '      ...checkArchitecture(),\n', replace: '' }],
    cause: /32-bit ABI/,
  },
  {
    id: 'seccomp-filter-too-early',
    step: 9,
    title: "loads the filter first thing in the child, before the runtime's own setup",
    edits: [
      { find: '    seccomp(SECCOMP_SET_MODE_FILTER, 0, filterProgram(rules));\n', replace: '' },
      { find: '  child(container) {\n', replace: '  child(container) {\n    seccomp(SECCOMP_SET_MODE_FILTER, 0, filterProgram([...checkArchitecture(), ...denyDangerousSyscalls(), allowTheRest()]));\n' },
    ],
    cause: /loaded a seccomp filter earlier/,
  },
  {
    id: 'seccomp-no-allow',
    step: 9,
    title: 'forgets the last rule, allowTheRest()',
    edits: [{ find: '      allowTheRest(),\n', replace: '' }],
    cause: /kernel refused the filter/,
  },
];

/** The participant's file with this mistake: the plain solution, edited. */
export function mistakeSource(mistake: Mistake): string {
  const step = STEPS.find((s) => s.number === mistake.step);
  if (!step) throw new Error(`${mistake.id}: no step ${mistake.step}`);
  let source = plainSolution(readFileSync(solutionFile(step), 'utf8'));
  for (const { find, replace } of mistake.edits) {
    const count = source.split(find).length - 1;
    if (count !== 1) throw new Error(`${mistake.id}: ${JSON.stringify(find.slice(0, 60))} occurs ${count} times in solutions/${step.stem}.ts (must be once)`);
    source = source.replace(find, () => replace);
  }
  return source;
}

/**
 * A copy of the repository to run workshop commands in without touching the
 * real one (its steps/ and .workshop/): the sources are copied; rootfs/ and
 * the installed packages are shared (node_modules/ is a folder of links, so
 * that the copy's compile cache is its own and goes with it). The caller
 * removes it.
 */
export function repositoryCopy(): string {
  const copy = mkdtempSync(`${tmpdir()}/cfs-repo-`);
  for (const entry of ['cli', 'lib', 'workshop', 'rootfs-builder', 'solutions', 'steps', 'tests', 'bench', 'package.json', 'tsconfig.json', 'WORKSHOP.md', 'README.md', '.gitignore']) {
    if (existsSync(`${REPO_ROOT}/${entry}`)) cpSync(`${REPO_ROOT}/${entry}`, `${copy}/${entry}`, { recursive: true });
  }
  mkdirSync(`${copy}/node_modules`);
  for (const entry of readdirSync(`${REPO_ROOT}/node_modules`)) {
    if (entry !== '.cache') symlinkSync(`${REPO_ROOT}/node_modules/${entry}`, `${copy}/node_modules/${entry}`);
  }
  symlinkSync(`${REPO_ROOT}/rootfs`, `${copy}/rootfs`);
  return copy;
}

/** Hand the copy's own files (not the shared node_modules/ and rootfs/) to another user, e.g. nobody. */
export function giveCopyTo(copy: string, uid: number, gid: number): void {
  const walk = (path: string): void => {
    chownSync(path, uid, gid);
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const child = join(path, entry.name);
      if (entry.isSymbolicLink()) lchownSync(child, uid, gid);
      else if (entry.isDirectory()) walk(child);
      else chownSync(child, uid, gid);
    }
  };
  chownSync(copy, uid, gid);
  for (const entry of readdirSync(copy, { withFileTypes: true })) {
    const child = join(copy, entry.name);
    if (entry.name === 'node_modules' || entry.isSymbolicLink()) lchownSync(child, uid, gid);
    else if (entry.isDirectory()) walk(child);
    else chownSync(child, uid, gid);
  }
}

/** Put a used copy back as it came: the exercises, no progress, the shared rootfs/. */
export function resetCopy(copy: string): void {
  rmSync(`${copy}/.workshop`, { recursive: true, force: true });
  rmSync(`${copy}/steps`, { recursive: true, force: true });
  cpSync(`${REPO_ROOT}/steps`, `${copy}/steps`, { recursive: true });
  if (!lstatSync(`${copy}/rootfs`, { throwIfNoEntry: false })?.isSymbolicLink()) {
    rmSync(`${copy}/rootfs`, { recursive: true, force: true });
    symlinkSync(`${REPO_ROOT}/rootfs`, `${copy}/rootfs`);
  }
}

/** `work` for every item, on `concurrency` copies of the repository (each reset before use); results in order. */
export async function inCopies<T, R>(items: readonly T[], concurrency: number, work: (item: T, copy: string) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    const copy = repositoryCopy();
    try {
      while (next < items.length) {
        const index = next++;
        resetCopy(copy);
        results[index] = await work(items[index]!, copy);
      }
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return results;
}

export interface MistakeOutcome {
  mistake: Mistake;
  /** The copy of the repository it ran in (already removed: for turning its paths into the shown ones). */
  copy: string;
  status: number | null;
  output: string;
  lines: number;
  caught: boolean;
  causeNamed: boolean;
  /** What differs on the host after the check, scoped to this check's resources (empty: untouched). */
  hostChanges: string[];
  ms: number;
}

/** Run a workshop command in `copy`: `node cli/launch.mjs cli/<command>.ts args…`. */
export function workshopCommand(copy: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ pid: number; status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['cli/launch.mjs', `cli/${command}.ts`, ...args], {
      cwd: copy,
      env: { ...process.env, FORCE_COLOR: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ pid: child.pid!, status, output });
    });
  });
}

/**
 * What `check` (process `pid`) may have left: folders, mounts and processes
 * named after its container ids (or after any container id its output
 * mentions), and the hostname.
 */
export function hostChangesOf(pid: number, hostnameBefore: string, output = ''): string[] {
  const prefix = `cfs-${pid}-`;
  const mentioned = new Set(output.match(/\bcfs-[\w-]+/g) ?? []);
  const ours = (name: string) => name.startsWith(prefix) || mentioned.has(name);
  const changes: string[] = [];
  if (hostname() !== hostnameBefore) changes.push(`hostname is now ${hostname()}`);
  const parents: string[] = [LAYERS_PARENT];
  try {
    const layout = cgroupLayout();
    parents.push(...(layout.version === 2 ? [layout.mountPoint] : [layout.pids, layout.memory]).map((mount) => `${mount}/${CGROUP_PARENT}`));
  } catch {
    // no cgroups here
  }
  for (const parent of parents) {
    try {
      for (const name of readdirSync(parent)) if (ours(name)) changes.push(`${parent}/${name} left`);
    } catch {
      // not there
    }
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (line.includes(prefix)) changes.push(`mount left: ${line}`);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(prefix)) changes.push(`process ${entry} left`);
    } catch {
      // gone
    }
  }
  return changes;
}

/** `npm run check N` on the mistake, in `copy` (whose steps/ file it overwrites). */
export async function runMistake(mistake: Mistake, copy: string): Promise<MistakeOutcome> {
  const step = STEPS.find((s) => s.number === mistake.step)!;
  writeFileSync(`${copy}/steps/${step.stem}.ts`, mistakeSource(mistake));
  const hostnameBefore = hostname();
  const started = Date.now();
  const { pid, status, output } = await workshopCommand(copy, 'check', [String(mistake.step)]);
  const ms = Date.now() - started;
  const lineCount = output.replace(/\n$/, '').split('\n').length;
  return {
    mistake,
    copy,
    status,
    output,
    lines: lineCount,
    caught: status === 1 && !/✓ Step \d+ done!/.test(output),
    causeNamed: mistake.cause.test(output),
    hostChanges: hostChangesOf(pid, hostnameBefore, output),
    ms,
  };
}

/** Run `mistakes` on `concurrency` copies of the repository at once; outcomes in the order given. */
export function runCatalogue(mistakes: Mistake[], concurrency = 2): Promise<MistakeOutcome[]> {
  return inCopies(mistakes, concurrency, runMistake);
}
