// The image formats: what a registry, `docker save` or an OCI layout hands over.
//
//   index (or "manifest list")   one manifest per platform: linux/amd64, linux/arm64…
//     └ manifest                 the config blob, then the layers, bottom first
//         ├ config               how to run it (Entrypoint, Cmd, Env, WorkingDir, User),
//         │                      and rootfs.diff_ids: the digest of each layer's *uncompressed* tar
//         └ layers               tar archives (usually gzip-compressed), each addressed by its digest
//
// Every piece is addressed by the sha256 digest of its bytes: a "descriptor"
// names the media type, the digest and the size, and whatever arrives is
// checked against them. Docker's media types (v2, schema 2) and the OCI image
// spec's are the same shapes under two names; both are read here.
import { createHash } from 'node:crypto';
import { WorkshopError } from '../lib/kernel/errors.js';
import type { ImageConfig } from '../lib/container/image.js';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

/** What a registry is asked for: any of the four manifest kinds. */
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest].join(', ');

/** Layer media types, and how their bytes are compressed. */
const LAYER_MEDIA: Readonly<Record<string, 'gzip' | 'none' | 'zstd'>> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar': 'none', // what `docker save` archives hold
};

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  urls?: string[];
  annotations?: Record<string, string>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Manifest {
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface Index {
  mediaType: string;
  manifests: Descriptor[];
}

/** The parts of an image config this workshop uses. */
export interface Config {
  os: string;
  architecture: string;
  variant?: string;
  config: ImageConfig;
  diffIds: string[];
}

export const SHA256 = /^sha256:[a-f0-9]{64}$/;
/** The most layers overlayfs can stack (OVL_MAX_STACK). */
const MAX_LAYERS = 500;

/** "sha256:<hex>" of these bytes. */
export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** "sha256:0123456789ab…" → "0123456789ab": how digests are shown. */
export function short(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** What went wrong with an image's metadata, said as one paragraph (exit 1 in npm run rootfs). */
export function broken(source: string, problem: string): WorkshopError {
  return new WorkshopError(`${source}: ${problem}`, 'Nothing was kept from it. The image is broken, or is not a container image (an artifact, a Helm chart…).');
}

function parseJson(bytes: Buffer, source: string): Record<string, unknown> {
  try {
    const value = JSON.parse(bytes.toString('utf8')) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // below
  }
  throw broken(source, 'its manifest is not a JSON object');
}

function descriptor(value: unknown, source: string, what: string): Descriptor {
  const d = value as Partial<Descriptor> | undefined;
  if (!d || typeof d !== 'object' || typeof d.digest !== 'string' || typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw broken(source, `${what} is not a valid descriptor (mediaType, digest, size)`);
  }
  if (!SHA256.test(d.digest)) {
    throw new WorkshopError(`${source}: ${what} is addressed by "${d.digest}", which this workshop cannot check`, 'Only sha256 digests are supported (sha512 and others are not).');
  }
  return { ...d, mediaType: typeof d.mediaType === 'string' ? d.mediaType : '' } as Descriptor;
}

/** A manifest or an index, whichever `bytes` is (the media type comes from the JSON, else from the HTTP header). */
export function parseManifest(bytes: Buffer, headerType: string, source: string): { index: Index } | { manifest: Manifest } {
  const json = parseJson(bytes, source);
  const mediaType = (typeof json.mediaType === 'string' && json.mediaType) || headerType.split(';')[0]!.trim();
  if (json.schemaVersion === 1 || mediaType.startsWith('application/vnd.docker.distribution.manifest.v1')) {
    throw new WorkshopError(`${source} is a Docker "schema 1" image, a format retired in 2019`, 'Pull a newer tag of it (registries convert old images on push), or rebuild it.');
  }
  if (Array.isArray(json.manifests) && (mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerList || mediaType === '')) {
    return { index: { mediaType, manifests: json.manifests.map((m, i) => descriptor(m, source, `manifest ${i + 1} of the index`)) } };
  }
  if ((mediaType === MEDIA.ociManifest || mediaType === MEDIA.dockerManifest || mediaType === '') && json.config && Array.isArray(json.layers)) {
    const config = descriptor(json.config, source, 'the config');
    if (config.mediaType !== MEDIA.ociConfig && config.mediaType !== MEDIA.dockerConfig) {
      throw new WorkshopError(
        `${source} is not a container image: its config is of type "${config.mediaType}"`,
        'It is an OCI artifact (a Helm chart, a signature, a WebAssembly module…), which has no root filesystem to run.',
      );
    }
    if (json.layers.length > MAX_LAYERS) {
      throw new WorkshopError(`${source} has ${json.layers.length} layers`, `overlayfs stacks at most ${MAX_LAYERS} (Docker builds at most 127): the image is broken or malicious.`);
    }
    const layers = json.layers.map((layer, i) => descriptor(layer, source, `layer ${i + 1}`));
    for (const layer of layers) layerCompression(layer, source);
    return { manifest: { mediaType, config, layers } };
  }
  throw new WorkshopError(
    `${source} has a manifest of type "${mediaType || 'unknown'}", which is not an image`,
    `Images have these types: ${[MEDIA.ociManifest, MEDIA.dockerManifest].join(', ')} (or an index of them).`,
  );
}

/** How a layer is compressed, from its media type; a clear error for what cannot be unpacked. */
export function layerCompression(layer: Descriptor, source: string): 'gzip' | 'none' | 'zstd' {
  const compression = LAYER_MEDIA[layer.mediaType];
  if (compression) return compression;
  if (/nondistributable|foreign/.test(layer.mediaType)) {
    throw new WorkshopError(`${source} has a "foreign" layer (${layer.mediaType}), hosted elsewhere`, 'Those are Windows base layers: this workshop runs Linux images only.');
  }
  throw new WorkshopError(
    `${source} has a layer of type "${layer.mediaType || 'unknown'}", which this workshop does not unpack`,
    `It unpacks tar layers, plain or gzip-compressed (${Object.keys(LAYER_MEDIA).join(', ')}).`,
  );
}

/** The fields of an image config the workshop uses, checked. */
export function parseConfig(bytes: Buffer, layers: number, source: string): Config {
  const json = parseJson(bytes, source);
  const run = (json.config ?? {}) as Record<string, unknown>;
  const strings = (value: unknown): string[] | null => (Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : null);
  const rootfs = (json.rootfs ?? {}) as { type?: unknown; diff_ids?: unknown };
  const diffIds = strings(rootfs.diff_ids) ?? [];
  if (rootfs.type !== 'layers' || diffIds.length !== layers || !diffIds.every((id) => SHA256.test(id))) {
    throw broken(source, `its config lists ${diffIds.length} layer digests (rootfs.diff_ids) for ${layers} layers`);
  }
  if (typeof json.os !== 'string' || typeof json.architecture !== 'string') throw broken(source, 'its config does not say its os and architecture');
  return {
    os: json.os,
    architecture: json.architecture,
    variant: typeof json.variant === 'string' ? json.variant : undefined,
    diffIds,
    config: {
      Entrypoint: strings(run.Entrypoint),
      Cmd: strings(run.Cmd),
      Env: strings(run.Env) ?? [],
      WorkingDir: typeof run.WorkingDir === 'string' ? run.WorkingDir : '',
      User: typeof run.User === 'string' ? run.User : '',
    },
  };
}

/** This machine's platform, in the registries' words (Node says x64, images say amd64). */
export function hostPlatform(): Platform {
  const architecture = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
  return { os: 'linux', architecture, variant: architecture === 'arm64' ? 'v8' : undefined };
}

export function platformName(platform: Platform | undefined): string {
  if (!platform) return 'unknown';
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** Does an image for `platform` run on `host`? (arm64 images often leave out their v8 variant.) */
export function runsOn(platform: Platform | undefined, host: Platform): boolean {
  if (!platform || platform.os !== host.os || platform.architecture !== host.architecture) return false;
  return !platform.variant || !host.variant || platform.variant === host.variant;
}

/** The manifest of an index that this machine can run; a clear error naming the platforms there are. */
export function choosePlatform(index: Index, source: string, host = hostPlatform()): Descriptor {
  const chosen = index.manifests.find((manifest) => runsOn(manifest.platform, host));
  if (chosen) return chosen;
  // Attestations (build provenance, SBOMs) sit in indexes as "unknown/unknown": not platforms.
  const platforms = index.manifests.map((manifest) => manifest.platform).filter((platform) => platform && platform.os !== 'unknown').map(platformName);
  throw new WorkshopError(
    `${source} has no image for this machine (${platformName(host)}): it has ${platforms.length > 0 ? [...new Set(platforms)].join(', ') : 'no platform at all'}`,
    `Containers run the host's own processor's programs. Choose an image built for ${host.architecture} (most official images are; check the tags on the registry).`,
  );
}
