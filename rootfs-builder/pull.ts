// Pulling an image: `npm run rootfs -- --image alpine:3.20`.
//
//   1. the manifest of alpine:3.20; if it is an index (one manifest per
//      platform), the one for this machine (linux/amd64 or linux/arm64)
//   2. its config: the command, environment… and the digests of the layers' content
//   3. each layer not in the store yet: downloaded (3 at a time, resumed where
//      an earlier pull stopped), checked against its digest, unpacked into a
//      folder of its own
//   4. a record under the image's name, which `--image alpine:3.20` finds
//
// The install (steps 2–4) is shared with images loaded from a `docker save`
// archive or an OCI layout (image-archive.ts): `installImage`.
import { parseReference, referenceName, type ImageRecord, type Reference } from '../lib/container/image.js';
import { WorkshopError } from '../lib/kernel/errors.js';
import { canReadZstd, freeSpace, ImageStore } from './image-store.js';
import { choosePlatform, hostPlatform, layerCompression, parseConfig, parseManifest, platformName, runsOn, short, type Descriptor, type Manifest } from './oci.js';
import type { PullProgress } from './progress.js';
import { Registry } from './registry.js';
import { formatBytes } from './unpack.js';

export interface PullOptions {
  /** Plain HTTP to a registry that is not on this machine. */
  plainHttp?: boolean;
  log: (line: string) => void;
  progress: PullProgress;
  /** The most a layer may unpack to (a bomb stops there). */
  maxBytes?: number;
  store?: string;
}

/** Layers downloaded and unpacked at once. */
const PARALLEL_LAYERS = 3;

/** Pull `text` (e.g. alpine:3.20) into the image store; resolves with its record. */
export async function pullImage(text: string, options: PullOptions): Promise<ImageRecord> {
  const ref = parseReference(text);
  const store = new ImageStore(options.store, options.maxBytes);
  const registry = new Registry(ref, { plainHttp: options.plainHttp, log: options.log });
  const source = referenceName(ref);

  let { bytes, contentType, digest } = await registry.manifest(ref.digest ?? ref.tag!);
  let parsed = parseManifest(bytes, contentType, source);
  for (let depth = 0; 'index' in parsed; depth++) {
    if (depth === 2) throw new WorkshopError(`${source}: its index points to indexes, three deep`, 'The image is broken.');
    const chosen = choosePlatform(parsed.index, source);
    options.log(`${source} is an index of ${parsed.index.manifests.length} manifests: taking ${platformName(chosen.platform)} (${short(chosen.digest)})`);
    ({ bytes, contentType, digest } = await registry.manifest(chosen.digest));
    parsed = parseManifest(bytes, contentType, source);
  }
  store.writeBlob(digest, bytes);
  const manifest = parsed.manifest;
  const configBytes = store.hasBlob(manifest.config.digest) ? store.readBlob(manifest.config.digest) : await registry.smallBlob(manifest.config, `the config of ${source}`);

  return installImage(store, ref, digest, manifest, configBytes, options, async (layer, file, progress) => {
    await registry.download(layer, file, `layer ${short(layer.digest)} of ${source}`, progress);
  });
}

/** Fetches one layer blob into `file` (a registry download; a copy out of an archive). */
export type FetchLayer = (layer: Descriptor, file: string, progress: ReturnType<PullProgress['layer']>) => Promise<void>;

/**
 * Steps 2–4 above: the config checked, every layer fetched (unless the store
 * has it) and unpacked, the record written under `ref`.
 */
export async function installImage(
  store: ImageStore,
  ref: Reference,
  manifestDigest: string,
  manifest: Manifest,
  configBytes: Buffer,
  options: Pick<PullOptions, 'log' | 'progress'>,
  fetchLayer: FetchLayer,
): Promise<ImageRecord> {
  const source = referenceName(ref);
  const config = parseConfig(configBytes, manifest.layers.length, `the config of ${source}`);
  store.writeBlob(manifest.config.digest, configBytes);
  const host = hostPlatform();
  if (!runsOn(config, host)) {
    throw new WorkshopError(
      `${source} is an image for ${platformName(config)}, and this machine runs ${platformName(host)} programs`,
      `Containers run the host's own processor's programs. Choose an image built for ${host.architecture}.`,
    );
  }

  const zstd = manifest.layers.find((layer) => layerCompression(layer, source) === 'zstd');
  if (zstd && !canReadZstd()) {
    throw new WorkshopError(`${source} has zstd-compressed layers, which this Node (${process.version}) cannot read`, 'Node 22.15 or later reads zstd; or pull a tag of the image whose layers are gzip-compressed (most are).');
  }
  const total = manifest.layers.reduce((sum, layer) => sum + layer.size, 0);
  options.log(`${source}: ${manifest.layers.length} layer${manifest.layers.length === 1 ? '' : 's'}, ${formatBytes(total)} to download at most`);
  const dirs: string[] = [];
  try {
    await eachAtMost(PARALLEL_LAYERS, manifest.layers, async (layer, index) => {
    const diffId = config.diffIds[index]!;
    const progress = options.progress.layer(short(layer.digest));
    if (store.hasLayer(diffId)) {
      dirs[index] = short(diffId);
      progress.cached('already unpacked (shared with an image pulled before)');
      return;
    }
    if (!store.hasBlob(layer.digest)) {
      if (layer.size > freeSpace(store.root)) {
        throw new WorkshopError(`layer ${short(layer.digest)} of ${source} is ${formatBytes(layer.size)}: more than the free space of ${store.root}`, 'Free some space (df -h), or put the image store elsewhere: CFS_IMAGES=DIR npm run rootfs -- --image …');
      }
      const partial = store.claimPartial(layer.digest);
      await fetchLayer(layer, partial, progress);
      store.commitBlob(layer.digest, partial);
    } else {
      progress.start(layer.size, layer.size);
    }
    progress.stage('unpacking');
    const result = await store.unpackLayer(layer.digest, diffId, `layer ${index + 1} (${short(layer.digest)}) of ${source}`);
    dirs[index] = result.dir;
    const report = result.report;
    progress.done(
      report
        ? `unpacked: ${report.files} files, ${report.dirs} folders, ${report.symlinks} symlinks, ${formatBytes(report.bytes)}${report.whiteouts + report.opaqueDirs > 0 ? `, ${report.whiteouts} whiteouts, ${report.opaqueDirs} opaque folders` : ''}`
        : 'unpacked by another pull meanwhile',
    );
    });
  } finally {
    options.progress.stop();
  }
  if (!store.keepOwners) options.log(`owners: every file of the layers is yours (uid ${process.getuid?.()}); only root keeps an image's owners and groups`);

  const record: ImageRecord = {
    name: source,
    id: manifest.config.digest,
    manifest: manifestDigest,
    platform: platformName(config),
    layers: manifest.layers.map((layer, index) => ({ digest: layer.digest, diffId: config.diffIds[index]!, dir: dirs[index]!, size: layer.size, mediaType: layer.mediaType })),
    config: config.config,
    xattrs: store.keepOwners ? 'trusted' : 'user',
  };
  store.writeRecord(ref, record);
  return record;
}

/**
 * Run `work` on every item, at most `limit` at once. On the first failure no
 * new item starts; the ones running finish (their downloads stay resumable),
 * then that failure is thrown.
 */
async function eachAtMost<T>(limit: number, items: readonly T[], work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const index = next++;
      try {
        await work(items[index]!, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/** The familiar name of a record, e.g. alpine:3.20 for docker.io/library/alpine:3.20. */
export function familiarName(name: string): string {
  return name.replace(/^docker\.io\/(?:library\/)?/, '');
}

