// Images: a root filesystem in layers, and a config saying how to run it.
//
// `npm run rootfs -- --image alpine:3.20` pulls an image into the image store
// (rootfs-builder/image-store.ts writes it); this file is the runtime's side:
// it finds an image by name, says which folders overlayfs stacks, and what
// the container runs by default.
//
//   images/                            (0700: only its owner can reach the layers' setuid programs)
//     blobs/sha256/<hex>               what the registry sent, checked against its sha256 digest
//     layers/<12 hex>/                 one layer, unpacked once, shared by every image that has it
//     layers/init/                     the folders the runtime mounts onto: /proc, /dev, /sys
//     names/<registry>/<repository>/<tag>.json    an image: its layers (bottom first) and config
//     flat/<12 hex>/                   its layers merged into one folder, for steps 4 and 5
//
// An image's config (the "config" blob) has defaults for running it, as
// `docker run` applies them: Entrypoint + Cmd (the command), Env, WorkingDir, User.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, WorkshopError } from '../kernel/errors.js';
import { becomeUser, chdir } from '../kernel/libc.js';
import { traceNote } from '../kernel/trace.js';
import { IMAGES_DIR } from '../paths.js';

/** An image reference, e.g. alpine:3.20 = docker.io/library/alpine:3.20. */
export interface Reference {
  /** "docker.io", "localhost:5000", "ghcr.io". */
  registry: string;
  /** "library/alpine". */
  repository: string;
  /** "3.20"; "latest" when neither a tag nor a digest is given. */
  tag?: string;
  /** "sha256:<64 hex>": a precise version, whatever the tags say. */
  digest?: string;
}

/** What the runtime takes from an image's config (the rest is only informative). */
export interface ImageConfig {
  Entrypoint: string[] | null;
  Cmd: string[] | null;
  Env: string[];
  WorkingDir: string;
  User: string;
}

/** An image as the store records it (names/…/<tag>.json). */
export interface ImageRecord {
  /** The canonical reference, e.g. docker.io/library/alpine:3.20. */
  name: string;
  /** The config blob's digest: the image's identity. */
  id: string;
  /** The manifest's digest (what a registry addresses the image by). */
  manifest: string;
  /** os/architecture[/variant]. */
  platform: string;
  /** Bottom layer first, as in the manifest. */
  layers: { digest: string; diffId: string; dir: string; size: number; mediaType: string }[];
  config: ImageConfig;
  /** The opaque-folder xattrs the layers carry: "trusted" (written by root: also "user") or "user" only. */
  xattrs: 'trusted' | 'user';
}

/** An image found in the store, ready for a container. */
export interface Image {
  /** As given: "alpine:3.20". */
  ref: string;
  /** docker.io/library/alpine:3.20. */
  name: string;
  id: string;
  /** The folders overlayfs stacks, TOP first (as lowerdir= wants them): the init layer, then the image's. */
  layers: string[];
  config: ImageConfig;
  /** The layers merged into one folder (steps 4–5 use it; made on first use). */
  flat: string;
  /** The layers mark opaque folders with user.overlay.* xattrs only: mount with `userxattr`. */
  userXattrs: boolean;
}

// The grammar of references (github.com/distribution/reference).
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
export const DOCKER_HUB = 'docker.io';

function badReference(text: string, problem: string): WorkshopError {
  return new WorkshopError(
    `--image ${JSON.stringify(text)} is not an image reference: ${problem}.`,
    'Examples: alpine:3.20, debian:bookworm-slim, docker.io/library/busybox, ghcr.io/OWNER/NAME:TAG, localhost:5000/test:1, alpine@sha256:<64 hex digits>.',
    EXIT.usage,
  );
}

/** "alpine:3.20" → docker.io / library/alpine / 3.20, as docker reads it. */
export function parseReference(text: string): Reference {
  if (text === '') throw badReference(text, 'it is empty');
  if (text.length > 512 || /[\s\x00-\x1f\x7f]/.test(text)) throw badReference(text, 'it is too long or has spaces or control characters');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw badReference(text, `"${digest}" is not a digest (sha256: and 64 lowercase hex digits)`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw badReference(text, `"${tag}" is not a tag (letters, digits, _ . -, at most 128)`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  // The first part names a registry when it looks like a host: a dot, a port, or "localhost".
  if (parts.length > 1 && (/[.:]/.test(parts[0]!) || parts[0] === 'localhost' || parts[0]!.startsWith('['))) {
    registry = parts.shift()!;
    if (!DOMAIN.test(registry)) throw badReference(text, `"${registry}" is not a registry host[:port]`);
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  for (const part of parts) {
    if (!COMPONENT.test(part)) {
      const why = /[A-Z]/.test(part) ? 'repository names are lowercase' : 'each part of a name is lowercase letters and digits, separated by . _ or -';
      throw badReference(text, `"${part}": ${why}`);
    }
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library'); // Docker Hub's official images
  const repository = parts.join('/');
  if (registry.length + repository.length + 1 > 255) throw badReference(text, 'the name is longer than 255 characters');
  return { registry, repository, tag: tag ?? (digest ? undefined : 'latest'), digest };
}

/** docker.io/library/alpine:3.20 (with @digest when there is one). */
export function referenceName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The record of an image in the store: names/<registry>/<repository>/<tag>.json (or @sha256:<hex>.json). */
export function recordPath(ref: Reference, store = IMAGES_DIR): string {
  return join(store, 'names', ref.registry, ...ref.repository.split('/'), `${ref.digest ? `@${ref.digest}` : ref.tag}.json`);
}

/** The folder of a layer (its name: 12 hex digits of its uncompressed digest, or "init"). */
export function layerFolder(dir: string, store = IMAGES_DIR): string {
  if (!/^(?:[0-9a-f]{12}|init)$/.test(dir)) throw new WorkshopError(`the image store names a layer "${dir}"`, `The store (${store}) is damaged: remove it and pull again.`);
  return join(store, 'layers', dir);
}

/** The folder the layers of image `id` are flattened into, for steps 4–5. */
export function flatFolder(id: string, store = IMAGES_DIR): string {
  return join(store, 'flat', id.replace(/^sha256:/, '').slice(0, 12));
}

/** The pull command for a reference, as the participant would type it. */
export function pullCommand(ref: string): string {
  return `npm run rootfs -- --image ${ref}`;
}

/** Read the record of `ref` (undefined when it was never pulled). */
export function readRecord(ref: Reference, store = IMAGES_DIR): ImageRecord | undefined {
  let text: string;
  try {
    text = readFileSync(recordPath(ref, store), 'utf8');
  } catch (error) {
    if (['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as ImageRecord;
  } catch {
    throw new WorkshopError(`the image store's record of ${referenceName(ref)} is damaged`, `Pull it again: ${pullCommand(referenceName(ref))}`);
  }
}

/** Tags of the same repository that are in the store, to suggest one. */
function pulledTags(ref: Reference, store: string): string[] {
  try {
    const folder = join(store, 'names', ref.registry, ...ref.repository.split('/'));
    return readdirSync(folder).filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -5));
  } catch {
    return [];
  }
}

/** The image `text` names, from the store: a clear error if it was never pulled. */
export function findImage(text: string, store = IMAGES_DIR): Image {
  const ref = parseReference(text);
  const record = readRecord(ref, store);
  if (!record) {
    const others = pulledTags(ref, store);
    throw new WorkshopError(
      `the image ${text} is not in the image store (${store})${others.length > 0 ? `; of ${ref.repository} it has: ${others.join(', ')}` : ''}`,
      `Pull it first (this needs the network once): ${pullCommand(text)}. Or load one saved with \`docker save\`: npm run rootfs -- --from IMAGE.tar`,
    );
  }
  const layers = ['init', ...record.layers.map((layer) => layer.dir).reverse()].map((dir) => layerFolder(dir, store));
  return { ref: text, name: record.name, id: record.id, layers, config: record.config, flat: flatFolder(record.id, store), userXattrs: record.xattrs === 'user' };
}

/** Every layer folder of the image is there (a store someone cleaned by hand may lack one). */
export function missingLayer(image: Image): string | undefined {
  return image.layers.find((folder) => !statSync(folder, { throwIfNoEntry: false })?.isDirectory());
}

/**
 * The command a container of `image` runs, as `docker run` decides it:
 * the Entrypoint, then the command typed (or the image's Cmd when none was).
 * `entrypoint` is --entrypoint: it replaces the image's, and drops its Cmd.
 */
export function imageCommand(image: Image, typed: readonly string[], entrypoint?: string): string[] {
  const start = entrypoint === undefined ? (image.config.Entrypoint ?? []) : entrypoint === '' ? [] : [entrypoint];
  const args = typed.length > 0 || entrypoint !== undefined ? typed : (image.config.Cmd ?? []);
  return [...start, ...args];
}

/**
 * When the user the image asks for (its config's User, or --user) cannot be
 * applied, what to tell the user: rootless, the user namespace maps only
 * root, so the command runs as root.
 */
export function userNote(user: string | undefined, rootless: boolean, image: Image | undefined): string | undefined {
  if (!user || isRoot(user) || !rootless) return undefined;
  const asked = image && user === image.config.User ? `the image ${image.ref} asks to run as user "${user}" (its config's User)` : `--user ${user} asks for another user`;
  return `${asked}, but a rootless container maps only root: the command runs as root (uid 0 in the container).`;
}

function isRoot(user: string): boolean {
  return /^(root|0)(:(root|0))?$/.test(user);
}

/** A user, its group and its supplementary groups, as the container's /etc/passwd and /etc/group say. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  groups: number[];
  home: string;
}

/** The lines of a colon-separated file of the container (/etc/passwd, /etc/group), or none. */
function entries(path: string): string[][] {
  try {
    return readFileSync(path, 'utf8').split('\n').filter((line) => line && !line.startsWith('#')).map((line) => line.split(':'));
  } catch {
    return [];
  }
}

const ID = /^\d{1,10}$/;
const MAX_ID = 4_294_967_294; // (uid_t)-1 means "no change"

/**
 * "nobody", "1000", "app:staff", "1000:1000" → numbers, looked up in the
 * container's own /etc/passwd and /etc/group (read once the container's root
 * is `/`), as docker does: a name must be there; a number need not.
 */
export function resolveUser(spec: string, root = '/'): ResolvedUser {
  const [user = '', group] = spec.split(':', 2);
  const passwd = entries(join(root, 'etc/passwd'));
  const groupFile = entries(join(root, 'etc/group'));
  const fail = (what: string): WorkshopError =>
    new WorkshopError(`cannot run as user "${spec}": ${what}`, 'The image\'s User (or --user) names users of the image\'s own /etc/passwd and /etc/group; or give numbers: --user 1000:1000.');
  const entry = ID.test(user) ? passwd.find((fields) => fields[2] === user) : passwd.find((fields) => fields[0] === user);
  if (!entry && !ID.test(user)) throw fail(`there is no user "${user}" in the container's /etc/passwd`);
  const uid = Number(entry?.[2] ?? user);
  let gid = Number(entry?.[3] ?? 0);
  if (group !== undefined) {
    const found = ID.test(group) ? undefined : groupFile.find((fields) => fields[0] === group);
    if (!found && !ID.test(group)) throw fail(`there is no group "${group}" in the container's /etc/group`);
    gid = Number(found?.[2] ?? group);
  }
  if (![uid, gid].every((id) => Number.isInteger(id) && id <= MAX_ID)) throw fail('ids are whole numbers up to 4294967294');
  // Supplementary groups: the groups that list the user as a member (not with an explicit group, as docker does).
  const name = entry?.[0];
  const member = group === undefined && name ? groupFile.filter((fields) => (fields[3] ?? '').split(',').includes(name)).map((fields) => Number(fields[2])) : [];
  return { uid, gid, groups: [...new Set([gid, ...member])].filter((id) => Number.isInteger(id) && id <= MAX_ID), home: entry?.[5] || '/' };
}

/**
 * Just before the command is exec'd, inside the container (after pivot_root):
 * the user the image asks for (or --user) is looked up in the container's
 * /etc/passwd and becomes the process's user and groups; the image's
 * WorkingDir (created if the image lacks it, as runc does) the current
 * folder. Returns the image's Env, with HOME from /etc/passwd when it has none.
 */
export function enterImageConfig(image: Image | undefined, user: string | undefined, rootless: boolean): string[] {
  const environment = [...(image?.config.Env ?? [])];
  const workdir = image?.config.WorkingDir ?? '';
  if (workdir.startsWith('/')) {
    // One folder at a time (mkdir -p of Node loops forever under /proc).
    let path = '';
    for (const name of workdir.split('/').filter(Boolean)) {
      path += `/${name}`;
      if (!existsSync(path)) mkdirSync(path, 0o755);
    }
  }
  if (user && !(rootless && !isRoot(user))) {
    const resolved = resolveUser(user);
    if (!environment.some((variable) => variable.startsWith('HOME='))) environment.push(`HOME=${resolved.home}`);
    becomeUser(resolved.uid, resolved.gid, resolved.groups);
  }
  if (workdir.startsWith('/')) chdir(workdir); // a relative WorkingDir is invalid: docker refuses to build it
  if (environment.length > 0) traceNote(`the image's environment: ${environment.join(' ')}`);
  return environment;
}
