// The runtime's command line: every option is checked here, before anything
// is created. A bad value stops the run with one paragraph naming the option,
// what is wrong with it and a value that works (exit status 2), so no cgroup,
// layer folder or process ever exists for a run that could not have worked.
//
//   <step>.ts run [--hostname NAME] [--rootfs DIR | --image REF] [--pids-max N] [--memory SIZE] [--id ID] [--env NAME[=VALUE]] [--] cmd args...
import { readFileSync, realpathSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { EXIT, WorkshopError } from '../kernel/errors.js';
import { traceSetting } from '../kernel/trace.js';
import { ENV_NAME } from './environment.js';
import { DEFAULT_ROOTFS, REPO_ROOT } from '../paths.js';
import { findImage, imageCommand, type Image } from './image.js';
import { generatedId } from './stale.js';

/** Everything a step needs to know about the container it runs. */
export interface Container {
  /** The command to run inside, e.g. ["sh", "-c", "echo $$"]. */
  command: string[];
  /** The hostname inside (from step 2 on). */
  hostname: string;
  /** Absolute path of the root filesystem (from step 4 on; with --image, the image's layers flattened into one folder). */
  rootfs: string;
  /** The image the container runs (--image REF), from the image store: its layers are stacked from step 6 on. */
  image?: Image;
  /** The user the command runs as (--user, else the image's User): a name of the container's /etc/passwd, or uid[:gid]. */
  user?: string;
  /** A name unique on this machine, for per-container resources (cgroups, overlay folders). */
  id: string;
  /** cgroup limits (from step 5 on). */
  pidsMax: number;
  memory: string;
  /** --env entries as typed: NAME=VALUE, or NAME to copy the host's variable. */
  env: string[];
}

const DEFAULTS = {
  hostname: 'container',
  rootfs: DEFAULT_ROOTFS,
  pidsMax: 64,
  memory: '256M',
};

/**
 * With no command: an interactive shell. bash when the container has it
 * (dash, as PID 1, fails on exit restoring a terminal process group it cannot
 * see from inside the PID namespace), with a prompt naming the host.
 */
export const INTERACTIVE_SHELL = ['sh', '-c', 'command -v bash >/dev/null || exec sh; export PS1="\\h:\\w# "; exec bash --norc'];

export const USAGE = `usage: <step>.ts run [--hostname NAME] [--rootfs DIR | --image REF [--entrypoint PROGRAM]] [--user USER[:GROUP]] [--pids-max N] [--memory SIZE] [--id ID] [--env NAME[=VALUE]] [--trace[=compact|full]] [--debug] [--] [cmd args...]`;

/** Parse and check `[options] [--] cmd args...`; options stop at the first word that is not one. */
export function parseContainer(args: readonly string[]): Container {
  const container: Container = { command: [], id: '', ...DEFAULTS, env: [] };
  let rootfsGiven = false;
  let entrypoint: string | undefined;
  let index = 0;
  const value = (flag: string): string => {
    const next = args[++index];
    if (next === undefined) throw new WorkshopError(`${flag} needs a value.`, USAGE, EXIT.usage);
    return next;
  };
  for (; index < args.length; index++) {
    const arg = args[index]!;
    if (arg === '--') {
      index++;
      break;
    } else if (arg === '--hostname') container.hostname = checkHostname(value(arg));
    else if (arg === '--rootfs') {
      container.rootfs = checkRootfsPath(value(arg));
      rootfsGiven = true;
    } else if (arg === '--image') container.image = findImage(value(arg));
    else if (arg === '--entrypoint') entrypoint = value(arg);
    else if (arg === '--user') container.user = checkUser(value(arg));
    else if (arg === '--pids-max') container.pidsMax = checkPidsMax(value(arg));
    else if (arg === '--memory') container.memory = checkMemory(value(arg));
    else if (arg === '--id') container.id = checkId(value(arg));
    else if (arg === '--env') container.env.push(checkEnv(value(arg)));
    else if (arg === '--trace' || arg.startsWith('--trace=')) process.env.TRACE = traceValue(arg);
    else if (arg === '--debug') process.env.CFS_DEBUG = '1';
    else if (arg.startsWith('--')) throw new WorkshopError(`unknown option ${shown(arg)}.`, USAGE, EXIT.usage);
    else break;
  }
  // The default rootfs is checked too: it must never be / or hold the repository (a symlink could make it so).
  if (container.rootfs === DEFAULTS.rootfs) checkRootfsPath(container.rootfs, 'the default rootfs');
  if (container.image && rootfsGiven) {
    throw new WorkshopError('--rootfs and --image both say what the container runs on: give one of them.', 'Example: --image alpine:3.20 (pulled with npm run rootfs -- --image alpine:3.20), or --rootfs rootfs.', EXIT.usage);
  }
  const typed = args.slice(index);
  // An image: its flattened folder is the rootfs (steps 4-5), and its config chooses the command (Entrypoint + Cmd).
  if (container.image) container.rootfs = container.image.flat;
  container.user ??= container.image?.config.User || undefined;
  container.command = container.image || entrypoint !== undefined ? imageCommandOf(container.image, typed, entrypoint) : typed;
  if (container.command.length === 0) container.command = INTERACTIVE_SHELL;
  if (container.command[0] === '') throw new WorkshopError('the command is empty.', USAGE, EXIT.usage);
  checkArgumentSize(container.command);
  if (container.id === '') container.id = generatedId();
  return container;
}

/** --env NAME=VALUE, or NAME (to copy the host's variable). */
export function checkEnv(text: string): string {
  const name = text.split('=')[0]!;
  if (!ENV_NAME.test(name)) {
    throw badValue(`--env takes NAME=VALUE or NAME (to copy the host's), with a NAME of letters, digits and _, not ${shown(text)}.`, 'Example: --env GREETING=hello, or --env TERM.');
  }
  return text;
}

/** The command as `docker run` decides it: --entrypoint (or the image's Entrypoint), then the command typed (or the image's Cmd). */
function imageCommandOf(image: Image | undefined, typed: readonly string[], entrypoint: string | undefined): string[] {
  if (image) return imageCommand(image, typed, entrypoint);
  return entrypoint ? [entrypoint, ...typed] : [...typed];
}

/** --user: a name or a uid, optionally :group (a name or a gid), as docker takes it. */
export function checkUser(text: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/.test(text) || text.length > 65) {
    throw badValue(`--user ${shown(text)} is not a user: a name or a uid, optionally followed by :group or :gid.`, 'Example: --user nobody, --user 1000:1000, --user root.');
  }
  return text;
}

/** --trace, --trace=compact or --trace=full: what TRACE says to this process and the child. */
function traceValue(option: string): string {
  const value = traceSetting(option);
  if (value === undefined) throw new WorkshopError(`unknown option ${shown(option)}: --trace takes =compact or =full.`, USAGE, EXIT.usage);
  return value;
}

/** The folder the user typed the command in: npm run changes to the repository, and says where it came from in INIT_CWD. */
function whereTyped(): string {
  return process.env.npm_lifecycle_event === 'step' && process.env.INIT_CWD ? process.env.INIT_CWD : process.cwd();
}

/** A bad value: one paragraph, exit status 2. */
function badValue(message: string, example: string): WorkshopError {
  return new WorkshopError(message, example, EXIT.usage);
}

/** A value as it can be shown safely on a terminal: quoted, control characters escaped, long ones cut. */
export function shown(text: string): string {
  const bytes = Buffer.byteLength(text);
  return bytes > 60 ? `${JSON.stringify(text.slice(0, 40))}… (${bytes} bytes)` : JSON.stringify(text);
}

/**
 * hostname(7): at most 64 bytes (the kernel's limit, HOST_NAME_MAX); letters,
 * digits and hyphens, labels separated by dots. ("_" is tolerated, as glibc does.)
 */
export function checkHostname(name: string): string {
  const example = 'Example: --hostname web-1 (1 to 64 letters, digits, "-" or ".", starting with a letter or digit).';
  if (name === '') throw badValue('--hostname is empty: a container needs a name.', example);
  if (Buffer.byteLength(name) > 64) throw badValue(`--hostname ${shown(name)} is too long: the kernel allows at most 64 bytes.`, example);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    const what = /[\x00-\x1f\x7f]/.test(name) ? 'control characters' : /\s/.test(name) ? 'spaces' : 'characters a hostname cannot have';
    throw badValue(`--hostname ${shown(name)} has ${what}.`, example);
  }
  return name;
}

/** The most processes a pids cgroup can count (PID_MAX_LIMIT on 64-bit Linux). */
const PIDS_LIMIT = 4_194_304;

export function checkPidsMax(text: string): number {
  const example = `Example: --pids-max 64 (a whole number from 1 to ${PIDS_LIMIT}, digits only).`;
  if (!/^[0-9]+$/.test(text)) throw badValue(`--pids-max must be a positive whole number, not ${shown(text)}.`, example);
  const number = Number(text);
  if (number < 1) throw badValue(`--pids-max ${text} would not even let the command itself start.`, example);
  if (number > PIDS_LIMIT) throw badValue(`--pids-max ${text} is more than Linux can count (${PIDS_LIMIT}).`, example);
  return number;
}

const UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
/** The smallest memory limit: below it a container's first program cannot start (Docker's minimum too). */
export const MIN_MEMORY = 6 * 1024 ** 2;
/** The largest: 1 PiB (anything above a machine's memory means "no limit" anyway). */
export const MAX_MEMORY = 1024 ** 5;
const MEMORY_EXAMPLE = 'Example: --memory 64M (bytes, or a whole number with K, M, G or T: powers of 1024; at least 6M).';

/** "64", "512K", "256M", "1G", "1T" (powers of 1024; "MiB"/"MB" are read as M) → bytes; undefined if it is not a size. */
export function sizeInBytes(text: string): number | undefined {
  const match = /^([0-9]+)([kmgt]?)(?:i?b)?$/i.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * UNITS[(match[2] ?? '').toLowerCase()]!;
}

export function checkMemory(text: string): string {
  const bytes = sizeInBytes(text);
  if (bytes === undefined) throw badValue(`--memory must be a size like 64M, 512K or 1G, not ${shown(text)}.`, MEMORY_EXAMPLE);
  if (bytes < MIN_MEMORY) {
    throw badValue(`--memory ${text} is too small: with less than 6M the kernel's OOM killer ends the command as it starts.`, MEMORY_EXAMPLE);
  }
  if (bytes > MAX_MEMORY) throw badValue(`--memory ${shown(text)} is too large: at most 1024T.`, MEMORY_EXAMPLE);
  return text;
}

/** Container ids name folders (cgroups, layers): one path component, no surprises. */
const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function checkId(id: string): string {
  if (!ID.test(id)) {
    throw badValue(
      `--id ${shown(id)} is not a container id: ids name the container's cgroup and folders, so they are 1 to 63 lowercase letters, digits or "-", starting with a letter or digit.`,
      'Example: --id web-1 (or leave --id out: each run gets a unique one).',
    );
  }
  return id;
}

/** The current folder as the user sees it: npm runs scripts from the repository, and says where it was started in INIT_CWD. */
function userFolders(): string[] {
  return [process.cwd(), process.env.INIT_CWD].filter((folder): folder is string => Boolean(folder));
}

/** realpath when the path exists (symlinks resolved), else the path itself. */
function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function contains(folder: string, path: string): boolean {
  return folder === '/' || path === folder || path.startsWith(folder + sep);
}

/**
 * What is wrong with using `path` as a root filesystem: it is the host's own
 * root, or holds the repository or the user's current folder (a container
 * would see and change them; a rootfs import would replace them); undefined if nothing.
 */
export function hostFolderProblem(path: string): string | undefined {
  const target = real(resolve(path));
  if (target === '/') return "is the host's own root folder: the container would see, and could change, every file of this machine";
  for (const [folder, name] of [[REPO_ROOT, 'the workshop repository'], ...userFolders().map((f) => [f, 'your current folder'])] as const) {
    if (contains(target, real(folder))) return `contains ${name} (${folder}): the container could change files it must not`;
  }
  return undefined;
}

/** --rootfs: a folder of its own (see hostFolderProblem), as an absolute path. */
export function checkRootfsPath(path: string, what = `--rootfs ${shown(path)}`): string {
  const example = 'Point --rootfs at a root filesystem of its own, e.g. --rootfs rootfs (npm run rootfs builds it).';
  if (path === '') throw badValue('--rootfs is empty.', example);
  const absolute = resolve(whereTyped(), path); // relative to where it was typed, not to the repository npm runs in
  const problem = hostFolderProblem(absolute);
  if (problem) throw badValue(`${what} ${problem}.`, example);
  return absolute;
}

/** What the runtime adds to the command when it re-spawns itself (node, its flags, the bundle, the options). */
const RESPAWN_MARGIN = 16 * 1024;

/** The space execve(2) gives arguments + environment: a quarter of the stack limit, as fs/exec.c computes it. */
export function argumentSpace(): number {
  const stack = /^Max stack size\s+(\S+)/m.exec(readIfExists('/proc/self/limits'))?.[1];
  const stackLimit = stack === undefined || stack === 'unlimited' ? Infinity : Number(stack);
  // min(stack / 4, 3/4 of the 8 MiB default stack), but never under 128 KiB.
  return Math.max(Math.min(stackLimit / 4, (8 * 1024 ** 2 / 4) * 3), 128 * 1024);
}

function readIfExists(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** A command line that the kernel would refuse (E2BIG) when the runtime starts it: say so now. */
function checkArgumentSize(command: readonly string[]): void {
  const example = 'Pass long lists through a file or a pipe instead, e.g. `xargs`, or a script in the rootfs.';
  const strings = [...command, ...Object.entries(process.env).map(([name, value]) => `${name}=${value}`)];
  const used = strings.reduce((sum, text) => sum + Buffer.byteLength(text) + 1 + 8, 0); // the string, its NUL, its pointer
  const space = argumentSpace() - RESPAWN_MARGIN;
  if (used > space) {
    throw badValue(
      `the command and the environment take ${used} bytes: more than the ${space} bytes Linux lets the runtime pass on (ARG_MAX: a quarter of the stack limit, less what the runtime adds).`,
      example,
    );
  }
}
