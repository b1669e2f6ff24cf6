// node --import tsx --test tests/images.test.ts
// (as root; needs Debian's docker-registry and skopeo, and openssl: .ci/run installs them)
//
// Real images, offline: the test builds a small image of four layers itself
// (our rootfs/; files added; a file and a folder deleted by whiteouts; a
// folder made opaque), pushes it with skopeo to a CNCF distribution registry
// it starts on a free localhost port (with a token server, so the pull goes
// through the same 401 → anonymous token → retry dance as Docker Hub's), pulls
// it with `npm run rootfs -- --image`, and runs it at steps 6 and 4. Also: a
// `docker save` archive, a corrupted blob, an index without this platform, and
// a pull killed half-way then resumed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { lgetxattr } from '../lib/kernel/libc.js';
import { parseReference, referenceName, type Image } from '../lib/container/image.js';
import { layersOf, overlayOptions } from '../lib/container/overlay.js';
import type { Container } from '../lib/container/options.js';
import { ensureDefaultRootfs } from '../rootfs-builder/build.js';
import { choosePlatform, hostPlatform, parseManifest, type Index } from '../rootfs-builder/oci.js';
import { unpackTar, type UnpackOptions } from '../rootfs-builder/unpack.js';
import { Readable } from 'node:stream';
import { runContainer, stepNumbered, targetFromEnv } from '../workshop/harness.js';
import { compile } from '../workshop/compile.mjs';
import { DEFAULT_ROOTFS, REPO_ROOT } from '../lib/paths.js';

const tools = ['docker-registry', 'skopeo', 'openssl'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
// CI installs the tools (.ci/run): there, a missing one is a failure, not a skip.
const skip = process.getuid?.() !== 0 ? 'needs root' : tools.length > 0 && !process.env.CI ? `needs ${tools.join(', ')} (apt-get install docker-registry skopeo openssl)` : false;

const scratch = mkdtempSync(join(tmpdir(), 'cfs-images-test-'));
const stopping: (() => void)[] = [];
after(() => {
  for (const stop of stopping.reverse()) stop();
  rmSync(scratch, { recursive: true, force: true });
});

// ── Building an image ──────────────────────────────────────────────────────

interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink';
  data?: string;
  mode?: number;
  linkname?: string;
}

function tarOf(entries: TarEntry[]): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const header = { name: entry.name, type, linkname: entry.linkname, mode: entry.mode ?? (type === 'directory' ? 0o755 : 0o644), mtime: new Date(1_700_000_000_000), uid: 0, gid: 0 };
    if (type === 'file') pack.entry(header, entry.data ?? '');
    else pack.entry(header);
  }
  pack.finalize();
  return new Promise((resolve) => pack.on('end', () => resolve(Buffer.concat(chunks))));
}

const digestOf = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

interface Blob {
  mediaType: string;
  digest: string;
  size: number;
}

class Layout {
  readonly blobs = new Map<string, Buffer>();
  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  }
  add(mediaType: string, bytes: Buffer): Blob {
    const digest = digestOf(bytes);
    this.blobs.set(digest, bytes);
    writeFileSync(join(this.dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return { mediaType, digest, size: bytes.length };
  }
  json(mediaType: string, value: unknown): Blob {
    return this.add(mediaType, Buffer.from(JSON.stringify(value)));
  }
  index(entries: (Blob & { platform?: object; annotations?: object })[]): void {
    writeFileSync(join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries }));
  }
}

const IMAGE_COMMAND = ['sh', '-c', 'echo "cwd=$(pwd) greeting=$GREETING user=$(id -u):$(id -g) home=$HOME"; ls -AR /data; cat /data/keep.txt /data/new.txt /data/dir/fresh.txt'];
const EXPECTED = [
  'cwd=/data/dir greeting=hello from the image user=65534:65534 home=/nonexistent',
  '/data:', 'dir', 'keep.txt', 'new.txt', '', '/data/dir:', 'fresh.txt',
  'keep v2', 'new', 'fresh',
].join('\n') + '\n';

interface TestImage {
  layout: Layout;
  /** The uncompressed tars, bottom first. */
  tars: Buffer[];
  layers: Blob[];
  config: Buffer;
  diffIds: string[];
}

/** Four layers: our rootfs (uncompressed), files added, a file and a folder deleted, a folder made opaque (gzip). */
async function buildImage(dir: string): Promise<TestImage> {
  ensureDefaultRootfs();
  // rootfs/ is shared with the other test files, whose step-4/5 containers write into its /tmp meanwhile: leave
  // /tmp's content out, and let tar say (exit status 1) that a folder changed while it read it.
  const tar = spawnSync('tar', ['-C', DEFAULT_ROOTFS, '--numeric-owner', '--exclude=./tmp/*', '--warning=no-file-changed', '-cf', '-', '.'], { maxBuffer: 512 * 1024 * 1024 });
  if (tar.status !== 0 && tar.status !== 1) throw new Error(`tar of rootfs/ failed (${tar.status}): ${tar.stderr}`);
  const base = tar.stdout;
  const tars = [
    base,
    await tarOf([
      { name: 'data/', type: 'directory' },
      { name: 'data/keep.txt', data: 'keep\n' },
      { name: 'data/gone.txt', data: 'gone\n' },
      { name: 'data/olddir/', type: 'directory' },
      { name: 'data/olddir/x', data: 'x\n' },
      { name: 'data/dir/', type: 'directory' },
      { name: 'data/dir/old.txt', data: 'old\n' },
      { name: 'data/dir/sub/', type: 'directory' },
      { name: 'data/dir/sub/older.txt', data: 'older\n' },
    ]),
    await tarOf([
      { name: 'data/', type: 'directory' },
      { name: 'data/.wh.gone.txt' },
      { name: 'data/.wh.olddir' },
      { name: 'data/keep.txt', data: 'keep v2\n' },
      { name: 'data/new.txt', data: 'new\n' },
    ]),
    await tarOf([
      { name: 'data/dir/', type: 'directory' },
      { name: 'data/dir/.wh..wh..opq' },
      { name: 'data/dir/fresh.txt', data: 'fresh\n' },
    ]),
  ];
  const layout = new Layout(dir);
  const layers = tars.map((tar, index) =>
    index === 0 ? layout.add('application/vnd.oci.image.layer.v1.tar', tar) : layout.add('application/vnd.oci.image.layer.v1.tar+gzip', gzipSync(tar)),
  );
  const diffIds = tars.map(digestOf);
  const platform = hostPlatform();
  const configOf = (architecture: string): Buffer =>
    Buffer.from(
      JSON.stringify({
        architecture,
        os: 'linux',
        config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'GREETING=hello from the image'], Cmd: IMAGE_COMMAND, WorkingDir: '/data/dir', User: 'nobody' },
        rootfs: { type: 'layers', diff_ids: diffIds },
      }),
    );
  const config = configOf(platform.architecture);
  const manifest = layout.json('application/vnd.oci.image.manifest.v1+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: layout.add('application/vnd.oci.image.config.v1+json', config),
    layers,
  });
  // An index whose only image is for another processor (its config says so too).
  const foreignArchitecture = platform.architecture === 's390x' ? 'riscv64' : 's390x';
  const foreignManifest = layout.json('application/vnd.oci.image.manifest.v1+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: layout.add('application/vnd.oci.image.config.v1+json', configOf(foreignArchitecture)),
    layers,
  });
  const foreignIndex = layout.json('application/vnd.oci.image.index.v1+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ ...foreignManifest, platform: { os: 'linux', architecture: foreignArchitecture } }],
  });
  // A small image of its own, whose layer the test corrupts in the registry.
  const corruptibleTar = await tarOf([{ name: 'corrupt.bin', data: randomBytes(4096).toString('hex') }]);
  const corruptible = layout.add('application/vnd.oci.image.layer.v1.tar+gzip', gzipSync(corruptibleTar));
  const smallConfig = Buffer.from(JSON.stringify({ architecture: platform.architecture, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [digestOf(corruptibleTar)] } }));
  const bad = layout.json('application/vnd.oci.image.manifest.v1+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: layout.add('application/vnd.oci.image.config.v1+json', smallConfig),
    layers: [corruptible],
  });
  layout.index([
    { ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } },
    { ...foreignIndex, annotations: { 'org.opencontainers.image.ref.name': 'foreign' } },
    { ...bad, annotations: { 'org.opencontainers.image.ref.name': 'bad' } },
  ]);
  return { layout, tars, layers, config, diffIds };
}

/** The same image as `docker save` writes it (before Docker 25): manifest.json, <config>.json, <id>/layer.tar. */
async function dockerSaveArchive(image: TestImage, tag: string): Promise<Buffer> {
  const configName = `${digestOf(image.config).slice(7)}.json`;
  const layerNames = image.diffIds.map((id) => `${id.slice(7)}/layer.tar`);
  const entries: { name: string; data: Buffer }[] = [
    ...image.tars.map((tar, index) => ({ name: layerNames[index]!, data: tar })),
    { name: configName, data: image.config },
    { name: 'manifest.json', data: Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: layerNames }])) },
  ];
  const pack = tarPack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  for (const entry of entries) pack.entry({ name: entry.name, mode: 0o644 }, entry.data);
  pack.finalize();
  return new Promise((resolve) => pack.on('end', () => resolve(Buffer.concat(chunks))));
}

// ── A registry on localhost, with a token server ───────────────────────────

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const base64url = (value: Buffer | string): string => Buffer.from(value).toString('base64url');

/** Grants any scope it is asked for, as a JWT the registry checks against the certificate it was given. */
async function startTokenServer(dir: string): Promise<{ url: string; cert: string; requests: string[] }> {
  const key = join(dir, 'token.key');
  const cert = join(dir, 'token.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=cfs-test-token'], { stdio: 'ignore' });
  const privateKey = createPrivateKey(readFileSync(key));
  const der = Buffer.from(readFileSync(cert, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    requests.push(url.search);
    if (url.searchParams.getAll('scope').some((scope) => scope.includes('cfs/private'))) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"details":"access to the requested resource is not authorized"}');
      return;
    }
    const access = url.searchParams.getAll('scope').map((scope) => {
      const [type, ...rest] = scope.split(':');
      const actions = rest.pop()!.split(',');
      return { type, name: rest.join(':'), actions };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c: [der.toString('base64')] }));
    const claims = base64url(JSON.stringify({ iss: 'cfs-test', sub: '', aud: url.searchParams.get('service'), exp: now + 600, nbf: now - 60, iat: now, jti: randomBytes(8).toString('hex'), access }));
    const signature = sign('sha256', Buffer.from(`${header}.${claims}`), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ token: `${header}.${claims}.${base64url(signature)}` }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stopping.push(() => server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`, cert, requests };
}

interface Registry {
  host: string;
  storage: string;
  process: ChildProcess;
}

/** docker-registry on a free port, its own config and storage; killed with the test (and with this process: --pdeathsig). */
async function startRegistry(dir: string, token: { url: string; cert: string }): Promise<Registry> {
  const storage = join(dir, 'storage');
  for (let tries = 1; ; tries++) {
    const port = await freePort();
    const config = join(dir, 'registry.yml');
    writeFileSync(
      config,
      [
        'version: 0.1',
        'log: { level: error, accesslog: { disabled: true } }',
        `storage: { filesystem: { rootdirectory: ${storage} }, delete: { enabled: true } }`,
        `http: { addr: "127.0.0.1:${port}", secret: test }`,
        `auth: { token: { realm: "${token.url}", service: cfs-test-registry, issuer: cfs-test, rootcertbundle: ${token.cert} } }`,
      ].join('\n'),
    );
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', 'docker-registry', 'serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    stopping.push(() => child.kill('SIGKILL'));
    for (const start = Date.now(); Date.now() - start < 10_000 && child.exitCode === null; await new Promise((resolve) => setTimeout(resolve, 50))) {
      const status = await new Promise<number>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/v2/' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', () => resolve(0));
        req.end();
      });
      if (status === 401) return { host: `127.0.0.1:${port}`, storage, process: child };
    }
    child.kill('SIGKILL');
    if (tries === 3) throw new Error(`docker-registry did not start: ${stderr}`);
  }
}

/** skopeo copy (asynchronous: the token server it asks is in this process). */
async function skopeoCopy(from: string, to: string, ...flags: string[]): Promise<void> {
  const child = spawn('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--insecure-policy', ...flags, from, to], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000, killSignal: 'SIGKILL' });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(status, 0, `skopeo copy ${from} ${to}: ${stderr}`);
}

// ── Running the commands ───────────────────────────────────────────────────

let rootfsBundle = '';

/** npm run rootfs -- ARGS, with the image store `store`. */
interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function rootfsCommand(args: string[], store: string): Promise<CommandResult> & { child: ChildProcess } {
  const child = spawn(process.execPath, [rootfsBundle, ...args], { cwd: REPO_ROOT, env: { ...process.env, CFS_IMAGES: store, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, killSignal: 'SIGKILL' });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<CommandResult>((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
  return Object.assign(done, { child });
}

/** Every file under `root` with its type (and content for small files): what a layer or a merged tree holds. */
function listing(root: string, under = ''): string[] {
  return readdirSync(join(root, under))
    .sort()
    .flatMap((name) => {
      const path = join(under, name);
      const stat = lstatSync(join(root, path));
      if (stat.isDirectory()) return [`${path}/`, ...listing(root, path)];
      if (stat.isCharacterDevice()) return [`${path} c${stat.rdev}`];
      return [`${path} ${stat.size <= 64 ? JSON.stringify(readFileSync(join(root, path), 'utf8')) : stat.size}`];
    });
}

describe('real images: pull from a registry, docker save, layers stacked by overlay', { skip }, () => {
  let image: TestImage;
  let registry: Registry;
  let tokens: { url: string; cert: string; requests: string[] };
  const store = join(scratch, 'images');
  let ref = '';

  before(async () => {
    rootfsBundle = await compile(`${REPO_ROOT}/cli/rootfs.ts`);
    image = await buildImage(join(scratch, 'layout'));
    tokens = await startTokenServer(scratch);
    registry = await startRegistry(scratch, tokens);
    ref = `${registry.host}/cfs/test:v1`;
    const layout = join(scratch, 'layout');
    await skopeoCopy(`oci:${layout}:v1`, `docker://${ref}`);
    await Promise.all([
      skopeoCopy(`oci:${layout}:v1`, `docker://${registry.host}/cfs/test:v2s2`, '--format', 'v2s2'),
      skopeoCopy(`oci:${layout}:foreign`, `docker://${registry.host}/cfs/test:foreign`, '--all'),
      skopeoCopy(`oci:${layout}:bad`, `docker://${registry.host}/cfs/bad:1`),
    ]);
  });

  test('npm run rootfs -- --image pulls an OCI image: anonymous token, every layer unpacked once, whiteouts for overlayfs', async () => {
    const result = await rootfsCommand(['--image', ref], store);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /✓ image 127\.0\.0\.1:\d+\/cfs\/test:v1 \(linux\/\w+, id [0-9a-f]{12}\): 4 layers/);
    assert.match(result.stdout, /run it: npm run step 6 -- --image 127\.0\.0\.1:\d+\/cfs\/test:v1/);
    assert.ok(tokens.requests.some((query) => query.includes('scope=repository%3Acfs%2Ftest%3Apull')), `no anonymous token was asked for: ${tokens.requests.join(' ')}`);
    // Each layer in a folder of its own, named after its content's digest; whiteouts as overlayfs reads them.
    const layers = join(store, 'layers');
    const [, added, deleted, opaque] = image.diffIds.map((id) => join(layers, id.slice(7, 19)));
    assert.deepEqual(listing(added!), ['data/', 'data/dir/', 'data/dir/old.txt "old\\n"', 'data/dir/sub/', 'data/dir/sub/older.txt "older\\n"', 'data/gone.txt "gone\\n"', 'data/keep.txt "keep\\n"', 'data/olddir/', 'data/olddir/x "x\\n"']);
    assert.deepEqual(listing(deleted!), ['data/', 'data/gone.txt c0', 'data/keep.txt "keep v2\\n"', 'data/new.txt "new\\n"', 'data/olddir c0']);
    assert.deepEqual(listing(opaque!), ['data/', 'data/dir/', 'data/dir/fresh.txt "fresh\\n"']);
    assert.equal(lgetxattr(join(opaque!, 'data/dir'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(lgetxattr(join(opaque!, 'data'), 'trusted.overlay.opaque'), undefined);
    assert.equal(statSync(store).mode & 0o777, 0o700, 'the store is private: its setuid programs are out of other users\' reach');
  });

  test('step 6 stacks the layers with overlay and runs the image\'s Cmd with its Env and WorkingDir; step 4 runs a flattened copy', async () => {
    for (const number of [6, 4]) {
      const step = stepNumbered(number);
      const result = await runContainer(step, targetFromEnv(), [], { options: ['--image', ref], env: { CFS_IMAGES: store } });
      assert.equal(result.stdout, EXPECTED, `step ${number}: ${result.reproduce}\n${result.stderr}`);
      assert.equal(result.status, 0, result.stderr);
    }
    // A command typed replaces the image's Cmd (--user root: the image's files are root's); step 6's writes stay in the container's own layer.
    const step6 = stepNumbered(6);
    const written = await runContainer(step6, targetFromEnv(), ['sh', '-c', 'echo changed > /data/keep.txt; rm /data/new.txt; cat /data/keep.txt; id -u'], { options: ['--image', ref, '--user', 'root'], env: { CFS_IMAGES: store } });
    assert.equal(written.stdout, 'changed\n0\n', written.stderr);
    const again = await runContainer(step6, targetFromEnv(), ['cat', '/data/keep.txt', '/data/new.txt'], { options: ['--image', ref], env: { CFS_IMAGES: store } });
    assert.equal(again.stdout, 'keep v2\nnew\n', again.stderr);
  });

  test('a Docker v2 manifest of the same image: its layers are found unpacked already', async () => {
    const result = await rootfsCommand(['--image', `${registry.host}/cfs/test:v2s2`], store);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.equal((result.stdout.match(/already unpacked/g) ?? []).length, 4, result.stdout);
    const record = JSON.parse(readFileSync(join(store, 'names', registry.host, 'cfs', 'test', 'v2s2.json'), 'utf8')) as { layers: { mediaType: string }[] };
    assert.ok(record.layers.every((layer) => layer.mediaType.startsWith('application/vnd.docker.image.rootfs.diff.tar')), JSON.stringify(record.layers));
  });

  test('clear errors: an index with only a foreign platform, a tag that does not exist, a repository the token server refuses, layer content that is not what the config says', async () => {
    const archive = join(scratch, 'wrong-diff-id.tar');
    const wrong = { ...image, tars: [image.tars[1]!], diffIds: [image.diffIds[2]!] };
    wrong.config = Buffer.from(JSON.stringify({ architecture: hostPlatform().architecture, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: wrong.diffIds } }));
    writeFileSync(archive, await dockerSaveArchive(wrong, 'cfs/wrong:1'));
    const [foreign, missing, denied, mismatch] = await Promise.all([
      rootfsCommand(['--image', `${registry.host}/cfs/test:foreign`], store),
      rootfsCommand(['--image', `${registry.host}/cfs/test:nope`], store),
      rootfsCommand(['--image', `${registry.host}/cfs/private:1`], store),
      rootfsCommand(['--from', archive], join(scratch, 'images-wrong')),
    ]);
    const failed = (result: CommandResult, pattern: RegExp): void => {
      assert.equal(result.status, 1, result.stdout + result.stderr);
      assert.match(result.stderr, pattern);
      assert.doesNotMatch(result.stderr, /at .*\.(ts|cjs):\d+/, 'no stack trace');
    };
    failed(foreign, /has no image for this machine \(linux\/\w+(\/v8)?\): it has linux\/(s390x|riscv64)\n.*Choose an image built for/);
    failed(missing, /the manifest of 127\.0\.0\.1:\d+\/cfs\/test:nope: not found on 127\.0\.0\.1:\d+ \(MANIFEST_UNKNOWN/);
    failed(denied, /pull access denied for 127\.0\.0\.1:\d+\/cfs\/private:1: the repository does not exist, or it is private/);
    failed(mismatch, /its unpacked content does not match the digest its config lists.*refused, nothing was kept/);
    assert.deepEqual(readdirSync(join(scratch, 'images-wrong', 'layers')), ['init'], 'no layer kept');
  });

  test('a blob that does not match its digest is refused, and nothing of it is kept', async () => {
    const manifest = JSON.parse(image.layout.blobs.get(JSON.parse(readFileSync(join(image.layout.dir, 'index.json'), 'utf8')).manifests[2].digest)!.toString()) as { layers: Blob[] };
    const hex = manifest.layers[0]!.digest.slice(7);
    const data = join(registry.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const bytes = readFileSync(data);
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(data, bytes);
    const result = await rootfsCommand(['--image', `${registry.host}/cfs/bad:1`], store);
    assert.equal(result.status, 1, result.stdout);
    assert.match(result.stderr, new RegExp(`layer ${hex.slice(0, 12)} of .*does not match its digest: expected sha256:${hex}, got sha256:[0-9a-f]{64}.*refused`));
    assert.equal(existsSync(join(store, 'names', registry.host, 'cfs', 'bad')), false, 'no record');
    assert.deepEqual(readdirSync(join(store, 'blobs', 'sha256')).filter((name) => name.startsWith(hex)), [], 'no blob, no partial download');
  });

  test('an OCI layout, as a folder or a tar, is loaded with its tags; its index for another platform is passed over; docker save of Docker 25+ (a layout inside)', async () => {
    const layoutTar = join(scratch, 'layout.tar');
    execFileSync('tar', ['-C', image.layout.dir, '-cf', layoutTar, '.']);
    // Docker 25+ writes an OCI layout, plus manifest.json naming its blobs.
    const modern = join(scratch, 'modern');
    execFileSync('cp', ['-a', image.layout.dir, modern]);
    const v1 = JSON.parse(readFileSync(join(modern, 'index.json'), 'utf8')).manifests[0] as Blob;
    const v1Manifest = JSON.parse(image.layout.blobs.get(v1.digest)!.toString()) as { config: Blob; layers: Blob[] };
    writeFileSync(join(modern, 'manifest.json'), JSON.stringify([{ Config: `blobs/sha256/${v1Manifest.config.digest.slice(7)}`, RepoTags: ['cfs/modern:1'], Layers: v1Manifest.layers.map((layer) => `blobs/sha256/${layer.digest.slice(7)}`) }]));
    const modernTar = join(scratch, 'modern.tar');
    execFileSync('tar', ['-C', modern, '-cf', modernTar, '.']);
    const stores = [join(scratch, 'images-layout-folder'), join(scratch, 'images-layout-tar'), join(scratch, 'images-modern')];
    const [modernResult, ...results] = await Promise.all([rootfsCommand(['--from', modernTar], stores[2]!), rootfsCommand(['--from', image.layout.dir], stores[0]!), rootfsCommand(['--from', layoutTar], stores[1]!)]);
    assert.equal(modernResult!.status, 0, modernResult!.stdout + modernResult!.stderr);
    assert.match(modernResult!.stdout, /✓ image cfs\/modern:1 \(linux\/\w+, id [0-9a-f]{12}\): 4 layers/);
    assert.deepEqual(listing(join(stores[2]!, 'layers', image.diffIds[2]!.slice(7, 19))), listing(join(store, 'layers', image.diffIds[2]!.slice(7, 19))));
    for (const [index, result] of results.entries()) {
      assert.equal(result.status, 0, result.stdout + result.stderr);
      const stem = 'layout'; // localhost/<the folder's or the file's name>:<its tag>
      assert.match(result.stdout, new RegExp(`✓ image localhost/${stem}:v1 \\(linux/\\w+, id [0-9a-f]{12}\\): 4 layers[^]*✓ image localhost/${stem}:bad`));
      assert.ok(existsSync(join(stores[index]!, 'names', 'localhost', stem, 'v1.json')));
      assert.deepEqual(listing(join(stores[index]!, 'layers', image.diffIds[3]!.slice(7, 19))), listing(join(store, 'layers', image.diffIds[3]!.slice(7, 19))));
    }
  });

  test('a docker save archive is recognised by its content, loaded, and merged into --target', async () => {
    const archive = join(scratch, 'saved.tar');
    writeFileSync(archive, await dockerSaveArchive(image, 'cfs/saved:1'));
    const fresh = join(scratch, 'images-saved');
    const target = join(scratch, 'saved-rootfs');
    const result = await rootfsCommand(['--from', archive, '--target', target], fresh);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /✓ image cfs\/saved:1 \(linux\/\w+, id [0-9a-f]{12}\): 4 layers/);
    assert.deepEqual(listing(join(target, 'data')), ['dir/', 'dir/fresh.txt "fresh\\n"', 'keep.txt "keep v2\\n"', 'new.txt "new\\n"']);
    assert.ok(existsSync(join(fresh, 'names', 'docker.io', 'cfs', 'saved', '1.json')));
    // The same layers as pulled: the folders are identical.
    for (const id of image.diffIds.slice(1)) assert.deepEqual(listing(join(fresh, 'layers', id.slice(7, 19))), listing(join(store, 'layers', id.slice(7, 19))));
  });

  test('a connection cut mid-layer is retried from where it stopped; a pull killed half-way goes on from there the next time', async () => {
    // The biggest layer: our rootfs (which skopeo compressed on its way into the registry).
    const record = JSON.parse(readFileSync(join(store, 'names', registry.host, 'cfs', 'test', 'v1.json'), 'utf8')) as { layers: Blob[] };
    const base = record.layers[0]!;
    const quarter = Math.floor(base.size / 4);
    const half = Math.floor(base.size / 2);
    const ranges: string[] = [];
    // A proxy in front of the registry. Downloads of the base layer: the 1st is cut after a quarter
    // (the connection closes); the 2nd (resumed at once) stops at half, and hangs; the others go through.
    const proxy: Server = createServer((req, res) => {
      const upstream = request({ host: '127.0.0.1', port: Number(registry.host.split(':')[1]), path: req.url, method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        const attempt = req.url?.endsWith(`/blobs/${base.digest}`) ? ranges.push(String(req.headers.range ?? 'whole')) : 0;
        if (attempt === 1 || attempt === 2) {
          const start = Number(/^bytes=(\d+)-$/.exec(String(req.headers.range))?.[1] ?? 0);
          const stop = attempt === 1 ? quarter : half;
          let sent = start;
          answer.on('data', (chunk: Buffer) => {
            if (sent < stop) res.write(chunk.subarray(0, stop - sent));
            sent += chunk.length;
            if (attempt === 1 && sent >= stop) res.destroy();
          });
          return;
        }
        answer.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    stopping.push(() => proxy.closeAllConnections());
    stopping.push(() => proxy.close());
    const proxied = `127.0.0.1:${(proxy.address() as AddressInfo).port}/cfs/test:v1`;
    const fresh = join(scratch, 'images-resumed');
    const partialSize = (): number => {
      const name = existsSync(join(fresh, 'blobs/sha256')) ? readdirSync(join(fresh, 'blobs/sha256')).find((entry) => entry.startsWith(`${base.digest.slice(7)}.partial-`)) : undefined;
      return name ? statSync(join(fresh, 'blobs/sha256', name)).size : -1;
    };

    const first = rootfsCommand(['--image', proxied], fresh);
    for (const start = Date.now(); partialSize() < half && Date.now() - start < 30_000; ) await new Promise((resolve) => setTimeout(resolve, 20));
    const arrived = partialSize();
    first.child.kill('SIGKILL');
    const killed = await first;
    assert.equal(arrived, half, `half of the layer arrived: ${killed.stdout}${killed.stderr}`);
    assert.match(killed.stdout, new RegExp(`layer ${base.digest.slice(7, 19)} of .*: (terminated|other side closed|UND_ERR_SOCKET|ECONNRESET|the connection closed \\d+ bytes early); trying again in 0.5 s`));

    // What a pull killed while unpacking leaves: a staging folder named after its (now gone) process.
    const leftover = join(fresh, 'layers', `.${'e'.repeat(12)}.importing-${first.child.pid}-beef`);
    mkdirSync(join(leftover, 'usr'), { recursive: true });

    const second = await rootfsCommand(['--image', proxied], fresh);
    assert.equal(second.status, 0, second.stdout + second.stderr);
    assert.equal(existsSync(leftover), false, 'the killed pull\'s half-unpacked layer is removed');
    // The retry asked for the rest of what had arrived (the cut may lose what the proxy had not yet flushed); the next pull for the rest after half.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1]);
    assert.ok(ranges.length === 3 && ranges[0] === 'whole' && resumedAt > 0 && resumedAt <= quarter && ranges[2] === `bytes=${half}-`, `each download asked only for what was missing: ${ranges.join(', ')}`);
    assert.match(second.stdout, new RegExp(`layer ${base.digest.slice(7, 19)}: [\\d.]+ \\w+ downloaded`), second.stdout);
    assert.deepEqual(listing(join(fresh, 'layers', image.diffIds[0]!.slice(7, 19))), listing(join(store, 'layers', image.diffIds[0]!.slice(7, 19))));
    assert.deepEqual(readdirSync(join(fresh, 'blobs/sha256')).filter((name) => name.includes('.partial-') || name.includes('.tmp-')), [], 'no partial download left');
  });
});

// ── The pieces, without a registry ─────────────────────────────────────────

describe('image references, platforms, overlay options, whiteouts', () => {
  test('references are read as docker reads them; bad ones are usage errors', () => {
    const cases: [string, string][] = [
      ['alpine', 'docker.io/library/alpine:latest'],
      ['alpine:3.20', 'docker.io/library/alpine:3.20'],
      ['docker.io/library/busybox', 'docker.io/library/busybox:latest'],
      ['index.docker.io/library/debian:bookworm-slim', 'docker.io/library/debian:bookworm-slim'],
      ['someone/tool:1.0', 'docker.io/someone/tool:1.0'],
      ['localhost:5000/x:tag', 'localhost:5000/x:tag'],
      ['localhost/x', 'localhost/x:latest'],
      ['ghcr.io/owner/sub/name:v1.2_3', 'ghcr.io/owner/sub/name:v1.2_3'],
      [`alpine@sha256:${'a'.repeat(64)}`, `docker.io/library/alpine@sha256:${'a'.repeat(64)}`],
    ];
    assert.deepEqual(cases.map(([text]) => referenceName(parseReference(text))), cases.map(([, name]) => name));
    for (const bad of ['', 'Alpine', 'alpine:', 'alpine:-x', 'a b', 'alpine@sha256:abc', '../x', 'x//y', `${'a'.repeat(300)}`]) {
      assert.throws(() => parseReference(bad), (error: { exitCode?: number; message: string }) => error.exitCode === 2 && /is not an image reference/.test(error.message), bad);
    }
  });

  test('an index resolves to this machine\'s platform; attestations are not platforms', () => {
    const descriptor = (architecture: string, variant?: string, os = 'linux') => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${architecture.padEnd(64, '0').slice(0, 64).replace(/[^0-9a-f]/g, '0')}`, size: 1, platform: { os, architecture, variant } });
    const index: Index = { mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [descriptor('amd64'), descriptor('arm', 'v7'), descriptor('arm64', 'v8'), descriptor('unknown', undefined, 'unknown')] };
    assert.equal(choosePlatform(index, 'x', { os: 'linux', architecture: 'arm64', variant: 'v8' }).platform?.architecture, 'arm64');
    assert.equal(choosePlatform(index, 'x', { os: 'linux', architecture: 'amd64' }).platform?.architecture, 'amd64');
    assert.throws(() => choosePlatform(index, 'x', { os: 'linux', architecture: 's390x' }), /no image for this machine \(linux\/s390x\): it has linux\/amd64, linux\/arm\/v7, linux\/arm64\/v8$/);
  });

  test('what is not a Linux image is refused with a reason: schema 1, artifacts, foreign layers, unknown layer types, too many layers', () => {
    const digest = `sha256:${'b'.repeat(64)}`;
    const manifest = (config: string, layers: string[]) =>
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: config, digest, size: 1 }, layers: layers.map((mediaType) => ({ mediaType, digest, size: 1 })) }));
    const refused = (bytes: Buffer, pattern: RegExp): void => assert.throws(() => parseManifest(bytes, '', 'x'), (error: Error & { fix?: string }) => pattern.test(`${error.message} ${error.fix}`));
    refused(Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'x', fsLayers: [] })), /"schema 1" image, a format retired in 2019/);
    refused(manifest('application/vnd.cncf.helm.config.v1+json', []), /is not a container image: its config is of type "application\/vnd\.cncf\.helm\.config\.v1\+json".*OCI artifact/);
    refused(manifest('application/vnd.oci.image.config.v1+json', ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip']), /"foreign" layer.*Windows base layers/);
    refused(manifest('application/vnd.oci.image.config.v1+json', ['application/vnd.oci.image.layer.v1.tar+bzip2']), /layer of type "application\/vnd\.oci\.image\.layer\.v1\.tar\+bzip2", which this workshop does not unpack/);
    refused(manifest('application/vnd.oci.image.config.v1+json', Array(501).fill('application/vnd.oci.image.layer.v1.tar')), /has 501 layers/);
    assert.ok('manifest' in parseManifest(manifest('application/vnd.docker.container.image.v1+json', ['application/vnd.docker.image.rootfs.diff.tar.gzip']), '', 'x'));
  });

  test('overlay options stack an image\'s layers top first; past one page, relative to the store', () => {
    const store = mkdtempSync(join(scratch, 'store-with-a-rather-long-name-to-fill-the-page-'));
    const folders = (count: number): string[] => ['init', ...Array.from({ length: count }, (_, index) => index.toString(16).padStart(12, '0'))].map((name) => join(store, 'layers', name));
    const container = (layers: string[], userXattrs = false): Container =>
      ({ command: [], hostname: 'h', rootfs: '/unused', id: 'cfs-test', pidsMax: 1, memory: '6M', env: [], image: { layers, userXattrs } as Image }) as Container;
    const layers = layersOf('cfs-test');
    assert.equal(overlayOptions(container(folders(2)), layers), `lowerdir=${folders(2).join(':')},upperdir=${layers.upper},workdir=${layers.work}`);
    assert.match(overlayOptions(container(folders(2), true), layers), /,userxattr$/);
    const many = folders(150);
    for (const folder of many) mkdirSync(folder, { recursive: true });
    const cwd = process.cwd();
    try {
      const options = overlayOptions(container(many), layers);
      assert.ok(options.startsWith(`lowerdir=layers/init:layers/${'0'.repeat(12)}:`) && Buffer.byteLength(options) <= 4095, options.slice(0, 80));
      assert.equal(readlinkSync('/proc/self/cwd'), store, 'the layers are named relative to the current folder');
    } finally {
      process.chdir(cwd);
    }
    assert.throws(() => overlayOptions(container(folders(400)), layers), (error: { fix?: string }) => /The image has 400 layers: too many for one mount/.test(error.fix ?? ''));
  });

  /** Unpack layers (tar entries) into `into`, as a pull ('overlay') or a flattening ('apply') does. */
  async function unpackLayer(into: string, entries: TarEntry[], whiteouts: 'overlay' | 'apply'): Promise<void> {
    const options: UnpackOptions = { maxBytes: 1 << 20, keepOwners: false, keepPrivileges: false, source: 'layer', whiteouts, opaqueXattrs: ['user.overlay.opaque'] };
    await unpackTar(Readable.from([await tarOf(entries)]), into, options);
  }

  test('whiteouts are never written or applied through a symlink, nor outside the layer', async () => {
    const victim = mkdtempSync(join(scratch, 'victim-'));
    writeFileSync(join(victim, 'file'), 'precious');
    const evil = { name: 'evil', type: 'symlink' as const, linkname: victim };
    // A layer of its own (pull): a whiteout or an opaque marker behind its own symlink is refused.
    for (const marker of ['evil/.wh.file', 'evil/.wh..wh..opq']) {
      const layer = mkdtempSync(join(scratch, 'layer-'));
      await assert.rejects(unpackLayer(layer, [evil, { name: marker }], 'overlay'), /through the symlink "evil"/);
    }
    for (const name of ['../.wh.file', 'a/.wh..', '.wh...']) {
      await assert.rejects(unpackLayer(mkdtempSync(join(scratch, 'layer-')), [{ name }], 'overlay'), /outside the target folder|names no file/, name);
    }
    // Flattening: a lower layer's symlink is replaced by a folder, never followed.
    const flat = mkdtempSync(join(scratch, 'flat-'));
    await unpackLayer(flat, [evil, { name: 'keep' }], 'apply');
    await unpackLayer(flat, [{ name: 'evil/.wh.file' }], 'apply');
    await unpackLayer(flat, [{ name: 'evil/.wh..wh..opq' }, { name: 'evil/new', data: 'n' }], 'apply');
    assert.equal(readFileSync(join(victim, 'file'), 'utf8'), 'precious');
    assert.deepEqual(readdirSync(victim), ['file']);
    assert.deepEqual(listing(flat), ['evil/', 'evil/new "n"', 'keep ""']);
    assert.equal(lgetxattr(victim, 'user.overlay.opaque'), undefined);
  });

  test('flattening: whiteouts and opaque folders hide lower layers only; files and folders replace each other', async () => {
    const flat = mkdtempSync(join(scratch, 'flat-'));
    await unpackLayer(flat, [{ name: 'd/', type: 'directory' }, { name: 'd/lower' }, { name: 'f/', type: 'directory' }, { name: 'f/x' }, { name: 'g' }, { name: 'gone' }], 'apply');
    await unpackLayer(flat, [{ name: 'd/mine', data: '1' }, { name: 'd/.wh..wh..opq' }, { name: 'f', data: 'file now' }, { name: 'g/', type: 'directory' }, { name: 'g/y' }, { name: '.wh.gone' }, { name: 'late' }, { name: '.wh.late' }], 'apply');
    assert.deepEqual(listing(flat), ['d/', 'd/mine "1"', 'f "file now"', 'g/', 'g/y ""', 'late ""']);
    // For overlayfs: the same layer as markers in a folder of its own.
    const layer = mkdtempSync(join(scratch, 'layer-'));
    await unpackLayer(layer, [{ name: 'd/mine', data: '1' }, { name: 'd/.wh..wh..opq' }, { name: '.wh.gone' }], 'overlay');
    assert.deepEqual(listing(layer), ['d/', 'd/mine "1"', 'gone c0']);
    assert.equal(lgetxattr(join(layer, 'd'), 'user.overlay.opaque')?.toString(), 'y');
  });
});
