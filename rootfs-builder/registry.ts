// Talking to a registry: the HTTP API v2 (the OCI distribution spec), read-only.
//
//   GET /v2/<repository>/manifests/<tag or digest>   a manifest, or an index of manifests per platform
//   GET /v2/<repository>/blobs/<digest>              the config, a layer (often redirected to a CDN)
//
// Authentication, as Docker Hub, ghcr.io and others do it for public images:
// the first request gets `401` with `WWW-Authenticate: Bearer realm="…",
// service="…",scope="repository:library/alpine:pull"`; an anonymous token is
// asked from the realm, and the request is sent again with it.
//
// Node's own fetch (undici, part of Node since 18) does the HTTP: no
// dependency to install, streamed bodies, Range requests. Redirects are
// followed here, not by fetch, so that the token never goes to another host
// and https never turns into http. Transient failures (a reset connection, a
// stalled download, 429/5xx) are retried with a growing pause; a download
// resumes where it stopped (Range: bytes=N-), and whatever arrives is checked
// against its sha256 digest before it is used.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, statSync, truncateSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkshopError } from '../lib/kernel/errors.js';
import { DOCKER_HUB, referenceName, type Reference } from '../lib/container/image.js';
import { MANIFEST_ACCEPT, SHA256, sha256, short, type Descriptor } from './oci.js';

/** Where a registry's API is, when it is not at the name images use. */
const API_HOSTS: Readonly<Record<string, string>> = { [DOCKER_HUB]: 'registry-1.docker.io' };
/** Tries per request; the pauses between them (a Retry-After header may ask for longer, up to 10 s). */
const ATTEMPTS = 5;
const PAUSES_MS = [500, 1000, 2000, 4000];
/** A connection that sends nothing for this long is given up (and resumed). */
const IDLE_MS = 30_000;
/** Manifests and configs are small JSON documents; anything bigger is refused. */
const MAX_DOCUMENT = 8 * 1024 * 1024;
/** HTTP statuses worth another try. */
const RETRY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

export interface RegistryOptions {
  /** Plain HTTP to a registry that is not on this machine (--plain-http). */
  plainHttp?: boolean;
  /** A line about a retry, for the user. */
  log?: (line: string) => void;
}

/** Progress of one download: the bytes there are (resumed), then the ones that arrive. */
export interface DownloadProgress {
  start(total: number, already: number): void;
  advance(bytes: number): void;
}

/** localhost, 127.x.x.x, [::1] (with a port or not): plain HTTP is allowed there. */
export function isLocalRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** A response, and the watchdog that gives up on a connection that stalls (call alive() on each chunk). */
interface Reply {
  response: Response;
  alive(): void;
  done(): void;
}

/** An error worth another try: the network, not the request. */
class Transient extends Error {}

export class Registry {
  private token: string | undefined;
  private readonly base: URL;
  private readonly name: string;

  constructor(
    private readonly ref: Reference,
    private readonly options: RegistryOptions = {},
  ) {
    const plain = options.plainHttp === true || isLocalRegistry(ref.registry);
    this.base = new URL(`${plain ? 'http' : 'https'}://${API_HOSTS[ref.registry] ?? ref.registry}`);
    this.name = `${ref.registry}/${ref.repository}`;
  }

  /** A manifest or an index, by tag or digest, checked against the digest it is addressed by. */
  async manifest(reference: string): Promise<{ bytes: Buffer; contentType: string; digest: string }> {
    const what = `the manifest of ${this.name}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
    const reply = await this.get(`/v2/${this.ref.repository}/manifests/${reference}`, { Accept: MANIFEST_ACCEPT }, what);
    const bytes = await readAll(reply, MAX_DOCUMENT, what);
    const digest = sha256(bytes);
    const announced = reply.response.headers.get('docker-content-digest') ?? undefined;
    const expected = reference.startsWith('sha256:') ? reference : announced && SHA256.test(announced) ? announced : undefined;
    if (expected && expected !== digest) throw mismatch(what, this.ref.registry, expected, digest);
    return { bytes, contentType: reply.response.headers.get('content-type') ?? '', digest };
  }

  /** A small blob (a config), in memory, checked. */
  async smallBlob(descriptor: Descriptor, what: string): Promise<Buffer> {
    if (descriptor.size > MAX_DOCUMENT) throw new WorkshopError(`${what} is ${descriptor.size} bytes: too big for a config`, 'The image is broken.');
    const reply = await this.get(`/v2/${this.ref.repository}/blobs/${descriptor.digest}`, {}, what);
    const bytes = await readAll(reply, MAX_DOCUMENT, what);
    if (sha256(bytes) !== descriptor.digest) throw mismatch(what, this.ref.registry, descriptor.digest, sha256(bytes));
    return bytes;
  }

  /**
   * Download a blob into `file`, going on from the bytes `file` already has
   * (an interrupted pull's), retrying transient failures from where they
   * stopped. Resolves once `file` is complete and its sha256 is the
   * descriptor's; on a mismatch `file` is removed (and the download tried once
   * more from the start, if it had been resumed).
   */
  async download(descriptor: Descriptor, file: string, what: string, progress?: DownloadProgress): Promise<void> {
    let restarted = false;
    for (let attempt = 1; ; attempt++) {
      let offset = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
      if (offset > descriptor.size) {
        truncateSync(file, 0);
        offset = 0;
      }
      const resumedFrom = offset;
      try {
        let hash = await hashOf(file, offset);
        if (offset < descriptor.size) {
          const reply = await this.get(`/v2/${this.ref.repository}/blobs/${descriptor.digest}`, offset > 0 ? { Range: `bytes=${offset}-` } : {}, what);
          if (offset > 0 && (reply.response.status !== 206 || !reply.response.headers.get('content-range')?.startsWith(`bytes ${offset}-`))) {
            offset = 0; // the server sends the whole blob again: start over
            truncateSync(file, 0);
            hash = createHash('sha256');
          }
          progress?.start(descriptor.size, offset);
          await appendBody(reply, file, hash, descriptor.size - offset, what, progress);
        } else {
          progress?.start(descriptor.size, offset);
        }
        const digest = `sha256:${hash.digest('hex')}`;
        if (digest !== descriptor.digest) {
          rmSync(file, { force: true });
          if (resumedFrom > 0 && !restarted) {
            restarted = true; // the bytes kept from before may be what is wrong
            this.options.log?.(`${what}: the resumed download does not match its digest; downloading it again from the start`);
            continue;
          }
          throw mismatch(what, this.ref.registry, descriptor.digest, digest);
        }
        return;
      } catch (error) {
        if (!(error instanceof Transient) || attempt >= ATTEMPTS) throw finalError(error, this.ref.registry, what);
        await this.pause(attempt, what, error.message);
      }
    }
  }

  /** GET, authenticated and retried; resolves with a 2xx response, throws a WorkshopError for anything else. */
  private async get(path: string, headers: Record<string, string>, what: string): Promise<Reply> {
    let authenticated = false;
    for (let attempt = 1; ; attempt++) {
      let reply: Reply;
      try {
        reply = await this.send(new URL(path, this.base), headers);
      } catch (error) {
        if (error instanceof Transient && attempt < ATTEMPTS) {
          await this.pause(attempt, what, error.message);
          continue;
        }
        throw finalError(error, this.ref.registry, what);
      }
      const { response } = reply;
      if (response.status === 401 && !authenticated) {
        const challenge = response.headers.get('www-authenticate') ?? '';
        await discard(reply);
        await this.authenticate(challenge, what);
        authenticated = true;
        attempt--; // not a failure: the token was missing
        continue;
      }
      if (RETRY_STATUS.has(response.status) && attempt < ATTEMPTS) {
        await discard(reply);
        await this.pause(attempt, what, `HTTP ${response.status}`, Number(response.headers.get('retry-after')) * 1000);
        continue;
      }
      if (response.ok) return reply;
      throw await this.httpError(reply, what);
    }
  }

  /** One request, following redirects (the token only goes to the registry itself; never from https to http). */
  private async send(url: URL, headers: Record<string, string>): Promise<Reply> {
    for (let hops = 0; hops <= 5; hops++) {
      const controller = new AbortController();
      let timer = setTimeout(() => controller.abort(), IDLE_MS);
      const reply: Reply = {
        response: undefined as unknown as Response,
        alive: () => {
          clearTimeout(timer);
          timer = setTimeout(() => controller.abort(), IDLE_MS);
        },
        done: () => clearTimeout(timer),
      };
      const authorization: Record<string, string> = this.token && url.origin === this.base.origin ? { Authorization: `Bearer ${this.token}` } : {};
      try {
        reply.response = await fetch(url, { headers: { ...headers, ...authorization }, redirect: 'manual', signal: controller.signal });
      } catch (error) {
        reply.done();
        throw networkError(error, url);
      }
      const location = reply.response.headers.get('location');
      if (reply.response.status < 300 || reply.response.status >= 400 || !location) return reply;
      await discard(reply);
      const next = new URL(location, url);
      if (next.protocol !== 'https:' && (url.protocol === 'https:' || !(this.options.plainHttp || isLocalRegistry(next.host)))) {
        throw new WorkshopError(`${url.host} redirected to ${next.origin}, which is not https`, 'Refused: the download could be changed on the way. Pull with --plain-http only from a registry you trust on your own network.');
      }
      url = next;
    }
    throw new WorkshopError(`${url.host} redirected more than 5 times`, 'The registry is misconfigured; try again later.');
  }

  /** Get an anonymous token from the realm a 401 named (Bearer), as `docker pull` does for public images. */
  private async authenticate(challenge: string, what: string): Promise<void> {
    const scheme = challenge.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((match) => [match[1]!.toLowerCase(), match[2]!]));
    if (scheme !== 'bearer' || !params.realm) {
      throw new WorkshopError(
        `${this.ref.registry} wants a user name and password for ${what} (${scheme || 'no'} authentication)`,
        'This workshop pulls public images anonymously. Pull the image on a machine logged in to that registry, `docker save` it, and load it here: npm run rootfs -- --from IMAGE.tar',
      );
    }
    const realm = new URL(params.realm);
    if (realm.protocol !== 'https:' && !(this.options.plainHttp || isLocalRegistry(realm.host))) {
      throw new WorkshopError(`${this.ref.registry} sends for a token to ${realm.origin}, which is not https`, 'Refused. Use --plain-http only with a registry you trust on your own network.');
    }
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', params.scope ?? `repository:${this.ref.repository}:pull`);
    for (let attempt = 1; ; attempt++) {
      let reply: Reply;
      try {
        reply = await this.send(realm, {});
      } catch (error) {
        if (error instanceof Transient && attempt < ATTEMPTS) {
          await this.pause(attempt, `a token from ${realm.host}`, error.message);
          continue;
        }
        throw finalError(error, realm.host, `a token for ${what}`);
      }
      if (RETRY_STATUS.has(reply.response.status) && attempt < ATTEMPTS) {
        await discard(reply);
        await this.pause(attempt, `a token from ${realm.host}`, `HTTP ${reply.response.status}`);
        continue;
      }
      if (!reply.response.ok) {
        await discard(reply);
        throw this.denied(`${realm.host} refused an anonymous token (HTTP ${reply.response.status})`);
      }
      const body = JSON.parse((await readAll(reply, 1024 * 1024, 'the token')).toString() || '{}') as { token?: string; access_token?: string };
      this.token = body.token ?? body.access_token;
      if (!this.token) throw new WorkshopError(`${realm.host} answered without a token`, 'The registry is misconfigured; try again later.');
      return;
    }
  }

  private denied(detail: string): WorkshopError {
    return new WorkshopError(
      `pull access denied for ${referenceName(this.ref)}: the repository does not exist, or it is private (${detail})`,
      'Check the name (e.g. alpine:3.20, debian:bookworm-slim). This workshop pulls public images only, anonymously.',
    );
  }

  /** What a registry's error answer means, as one paragraph. */
  private async httpError(reply: Reply, what: string): Promise<WorkshopError> {
    const { status } = reply.response;
    let codes = '';
    try {
      const body = JSON.parse((await readAll(reply, 64 * 1024, what)).toString()) as { errors?: { code?: string; message?: string }[] };
      codes = (body.errors ?? []).map((error) => [error.code, error.message].filter(Boolean).join(': ')).join('; ');
    } catch {
      // not JSON: the status says enough
    }
    const detail = codes ? ` (${codes})` : '';
    if (status === 401 || status === 403) return this.denied(`HTTP ${status}${detail}`);
    if (status === 404) {
      return new WorkshopError(
        `${what}: not found on ${this.ref.registry}${detail}`,
        what.startsWith('the manifest')
          ? 'Check the name and the tag (e.g. alpine:3.20): the registry has no such image, or no such tag of it.'
          : 'The registry lists a blob it does not have: it is broken, or the image was deleted while pulling. Try again later.',
      );
    }
    if (status === 429) {
      return new WorkshopError(
        `${this.ref.registry} refuses more pulls for now (HTTP 429, too many requests)${detail}`,
        'Registries limit anonymous pulls per address (Docker Hub: 100 per 6 hours), and a room on one Wi-Fi shares one address. ' +
          'Wait, or pull once and share it: `docker save IMAGE > image.tar` on one machine, then `npm run rootfs -- --from image.tar` on the others.',
      );
    }
    return new WorkshopError(`${this.ref.registry} answered HTTP ${status} for ${what}${detail}`, 'Try again later; if it persists, the registry has a problem.');
  }

  private async pause(attempt: number, what: string, why: string, askedMs = 0): Promise<void> {
    const ms = Math.min(Math.max(PAUSES_MS[attempt - 1] ?? 4000, Number.isFinite(askedMs) ? askedMs : 0), 10_000);
    this.options.log?.(`${what}: ${why}; trying again in ${ms / 1000} s (${attempt}/${ATTEMPTS - 1})`);
    await sleep(ms);
  }
}

/** The sha256 state of the first `length` bytes of `file` (a resumed download's). */
async function hashOf(file: string, length: number): Promise<Hash> {
  const hash = createHash('sha256');
  if (length === 0) return hash;
  for await (const chunk of createReadStream(file, { start: 0, end: length - 1 })) hash.update(chunk as Buffer);
  return hash;
}

/** Append a response body to `file` (hashing it), at most `expected` bytes; an early end is transient (resumed). */
async function appendBody(reply: Reply, file: string, hash: Hash, expected: number, what: string, progress?: DownloadProgress): Promise<void> {
  const handle = await open(file, 'a', 0o600);
  let received = 0;
  try {
    for await (const chunk of readBody(reply)) {
      received += chunk.length;
      if (received > expected) throw new WorkshopError(`${what} is longer than the manifest says (${expected} bytes to go)`, 'Refused: the registry sends something else than the image lists. Try again later.');
      await handle.write(chunk);
      hash.update(chunk);
      progress?.advance(chunk.length);
    }
  } finally {
    await handle.close();
  }
  if (received < expected) throw new Transient(`the connection closed ${expected - received} bytes early`);
}

/** A response body, chunk by chunk; network failures and stalls become Transient. */
async function* readBody(reply: Reply): AsyncGenerator<Uint8Array> {
  const body = reply.response.body;
  if (!body) return;
  try {
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
      reply.alive();
      yield chunk;
    }
  } catch (error) {
    throw new Transient(describeNetworkError(error) ?? (error as Error).message);
  } finally {
    reply.done();
  }
}

async function readAll(reply: Reply, cap: number, what: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of readBody(reply)) {
    size += chunk.length;
    if (size > cap) throw new WorkshopError(`${what} is larger than ${cap} bytes`, 'Refused: manifests and configs are small documents. The registry is misbehaving.');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function discard(reply: Reply): Promise<void> {
  reply.done();
  await reply.response.body?.cancel().catch(() => {});
}

/** The code under fetch's "fetch failed" (ECONNRESET…), or a stall. */
function describeNetworkError(error: unknown): string | undefined {
  if ((error as Error)?.name === 'AbortError') return `nothing arrived for ${IDLE_MS / 1000} s`;
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message;
}

/** Network failures that no retry will fix. */
const PERMANENT = new Set(['ENOTFOUND', 'ECONNREFUSED', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_WRONG_VERSION_NUMBER']);

function networkError(error: unknown, url: URL): Error {
  const code = describeNetworkError(error) ?? String(error);
  if (!PERMANENT.has(code)) return new Transient(code);
  if (code === 'ENOTFOUND') {
    return new WorkshopError(`cannot find ${url.hostname} (DNS: ${code})`, 'Is this machine online? Pulling needs the network once. Offline, load an image saved with `docker save`: npm run rootfs -- --from IMAGE.tar');
  }
  if (code === 'ECONNREFUSED') {
    return new WorkshopError(`nothing answers at ${url.origin} (${code})`, 'Is the registry running, and on that port? (A registry on this machine: docker-registry, or `docker run -p 5000:5000 registry:2`.)');
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') {
    return new WorkshopError(`${url.host} does not speak https (${code})`, 'If it is a plain-HTTP registry you trust on your own network, add --plain-http.');
  }
  return new WorkshopError(`the TLS certificate of ${url.host} is not trusted (${code})`, 'Refused: the connection could be intercepted. Check the machine\'s clock and CA certificates.');
}

/** After the last try: a WorkshopError saying what failed. */
function finalError(error: unknown, registry: string, what: string): Error {
  if (error instanceof WorkshopError) return error;
  if (error instanceof Transient) {
    return new WorkshopError(
      `${what} could not be downloaded from ${registry} after ${ATTEMPTS} tries: ${error.message}`,
      'The network is unreliable. Run the same command again: what was downloaded is kept, and the pull goes on from there.',
    );
  }
  return error as Error;
}

function mismatch(what: string, registry: string, expected: string, got: string): WorkshopError {
  return new WorkshopError(
    `${what} sent by ${registry} does not match its digest: expected ${expected}, got ${got} (${short(got)}): refused, nothing was kept from it`,
    'Pull again. If it happens again, the registry (or a proxy on the way) serves corrupt or altered data.',
  );
}
