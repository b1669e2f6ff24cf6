// Loading an image without a registry: `npm run rootfs -- --from FILE`.
//
// What FILE is, is read from its content, not its name:
//   - a root filesystem (docker export, an Alpine minirootfs): bin/, etc/, usr/…
//     → imported as the rootfs, as before (import.ts);
//   - a `docker save` archive: manifest.json (its images, their tags, configs and
//     layers), a config <hex>.json, <id>/layer.tar per layer (Docker 25+: an OCI layout inside);
//   - an OCI image layout (`skopeo copy … oci:DIR` or oci-archive:FILE.tar):
//     oci-layout, index.json, blobs/sha256/<hex> — as a tar, or a folder
//     → loaded into the image store like a pull, named after their tags.
//
// An archive is read once, as a stream: its blobs are copied into the store
// by the sha256 of their bytes (an OCI blob whose bytes do not match its name
// is refused), small JSON documents are kept in memory. Names inside the
// archive are only looked up, never used as paths to write.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract, type ExtractEvents, type Header } from 'tar-stream';

/** One entry's data, as tar-stream hands it over. */
type EntryStream = ExtractEvents['entry'][1];
import { EXIT, WorkshopError } from '../lib/kernel/errors.js';
import { parseReference, referenceName, type ImageRecord, type Reference } from '../lib/container/image.js';
import { openArchive } from './archive.js';
import { ImageStore } from './image-store.js';
import { choosePlatform, hostPlatform, MEDIA, parseManifest, platformName, runsOn, sha256, short, type Descriptor, type Manifest } from './oci.js';
import { installImage, type PullOptions } from './pull.js';
import { formatBytes } from './unpack.js';

/** Top-level names that only image archives have (a root filesystem has bin/, etc/, usr/…). */
const IMAGE_MARKERS = /^(?:oci-layout|index\.json|manifest\.json|repositories|blobs(?:\/.*)?|[0-9a-f]{64}(?:\.json|\/.*)?)$/;
/** JSON documents kept in memory while an archive streams by: at most this big each. */
const MAX_DOCUMENT = 8 * 1024 * 1024;

/** "image" when `file` is an image archive or an OCI layout folder, "rootfs" when it is a root filesystem archive. */
export async function archiveKind(file: string): Promise<'image' | 'rootfs'> {
  if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
    const hasFile = (name: string): boolean => statSync(join(file, name), { throwIfNoEntry: false })?.isFile() === true;
    if (hasFile('oci-layout') || hasFile('manifest.json')) return 'image';
    return 'rootfs'; // openArchive explains that a folder is not an archive
  }
  const archive = openArchive(file);
  return new Promise((resolve) => {
    const extract = tarExtract();
    let decided = false;
    const decide = (kind: 'image' | 'rootfs'): void => {
      if (decided) return;
      decided = true;
      archive.tar.destroy();
      extract.destroy();
      resolve(kind);
    };
    extract.on('entry', (header: Header, stream: EntryStream, next: () => void) => {
      const name = posix.normalize(header.name).replace(/^(\.\/|\/)+/, '').replace(/\/$/, '');
      stream.resume();
      if (name === '.' || name === '') return next();
      decide(IMAGE_MARKERS.test(name) ? 'image' : 'rootfs');
    });
    // Not a tar we can read: the importer says what is wrong with it.
    extract.on('error', () => decide('rootfs'));
    extract.on('finish', () => decide('rootfs'));
    archive.tar.on('error', () => decide('rootfs'));
    archive.tar.pipe(extract);
  });
}

/** What a pass over an archive found: documents, and the blobs it copied into the store (by the archive's names). */
interface Contents {
  documents: Map<string, Buffer>;
  /** Archive path → digest of its bytes, now in the store. */
  blobs: Map<string, { digest: string; size: number }>;
  /** Archive path → the path it links to (legacy `docker save` links layers that appear twice). */
  links: Map<string, string>;
}

/** Load every image of the archive or layout `file` into the store; resolves with their records. */
export async function loadImageArchive(file: string, options: PullOptions): Promise<ImageRecord[]> {
  const store = new ImageStore(options.store, options.maxBytes);
  const folder = statSync(file).isDirectory();
  const contents = folder ? readLayoutFolder(file) : await readArchive(file, store, options);
  const copied = new Set([...contents.blobs.values()].map((blob) => blob.digest));
  const used = new Set<string>();
  const records: ImageRecord[] = [];
  try {
    const images = contents.documents.has('manifest.json') ? dockerSaveImages(contents, file) : ociLayoutImages(contents, file, store, folder);
    if (images.length === 0) throw new WorkshopError(`${file} holds no image`, 'Save one with `docker save IMAGE > FILE.tar`, or `skopeo copy docker://IMAGE oci-archive:FILE.tar`.');
    for (const image of images) {
      const configBytes = image.config ?? blobBytes(image.manifest.config, store, contents, file, folder);
      for (const layer of image.manifest.layers) {
        used.add(layer.digest);
        if (folder && !store.hasBlob(layer.digest)) await copyVerified(join(file, 'blobs', 'sha256', layer.digest.slice(7)), layer.digest, store, file);
      }
      used.add(image.manifest.config.digest);
      const fetchMissing = async (layer: Descriptor): Promise<void> => {
        throw new WorkshopError(`${file} lacks layer ${short(layer.digest)} of ${referenceName(image.refs[0]!)}`, 'The archive is incomplete: save it again.');
      };
      const [first, ...others] = image.refs;
      const record = await installImage(store, first!, image.manifestDigest, image.manifest, configBytes, options, fetchMissing);
      for (const ref of others) store.writeRecord(ref, { ...record, name: referenceName(ref) });
      records.push(...[first!, ...others].map((ref) => ({ ...record, name: referenceName(ref) })));
    }
  } finally {
    // Blobs of the archive that no loaded image uses (other platforms, attestations) are not kept.
    for (const digest of copied) if (!used.has(digest)) rmSync(store.blobPath(digest), { force: true });
  }
  return records;
}

/** One image of an archive: its manifest (made up for a legacy `docker save`), config, and names. */
interface ArchivedImage {
  refs: Reference[];
  manifest: Manifest;
  manifestDigest: string;
  config?: Buffer;
}

/** The images of a `docker save` archive, from its manifest.json. */
function dockerSaveImages(contents: Contents, file: string): ArchivedImage[] {
  let entries: { Config?: unknown; RepoTags?: unknown; Layers?: unknown }[];
  try {
    entries = JSON.parse(contents.documents.get('manifest.json')!.toString()) as typeof entries;
    if (!Array.isArray(entries)) throw new Error('not a list');
  } catch {
    throw new WorkshopError(`${file}: its manifest.json is not the list \`docker save\` writes`, 'The archive is broken: save it again.');
  }
  return entries.map((entry, index) => {
    if (typeof entry.Config !== 'string' || !Array.isArray(entry.Layers) || !entry.Layers.every((layer) => typeof layer === 'string')) {
      throw new WorkshopError(`${file}: image ${index + 1} of its manifest.json has no Config or Layers`, 'The archive is broken: save it again.');
    }
    const config = documentOrBlob(contents, entry.Config, file);
    const configDigest = sha256(config);
    const layers = (entry.Layers as string[]).map((path): Descriptor => {
      const blob = contents.blobs.get(resolveLink(contents, path));
      if (!blob) throw new WorkshopError(`${file}: layer ${path} is listed in manifest.json but not in the archive`, 'The archive is incomplete: save it again.');
      return { mediaType: 'application/vnd.docker.image.rootfs.diff.tar', digest: blob.digest, size: blob.size };
    });
    const manifest: Manifest = { mediaType: MEDIA.dockerManifest, config: { mediaType: MEDIA.dockerConfig, digest: configDigest, size: config.length }, layers };
    const tags = Array.isArray(entry.RepoTags) ? entry.RepoTags.filter((tag): tag is string => typeof tag === 'string') : [];
    const refs = tags.length > 0 ? tags.map((tag) => parseReference(tag)) : [untagged(configDigest)];
    return { refs, manifest, manifestDigest: sha256(Buffer.from(JSON.stringify(manifest))), config };
  });
}

/** The images of an OCI layout, from its index.json: for an index, the manifest for this machine. */
function ociLayoutImages(contents: Contents, file: string, store: ImageStore, folder: boolean): ArchivedImage[] {
  if (!contents.documents.has('index.json')) {
    throw new WorkshopError(`${file} looks like an image archive, but has neither manifest.json (docker save) nor index.json (OCI layout)`, 'The archive is broken or of another kind: save it again.');
  }
  const top = parseManifest(contents.documents.get('index.json')!, MEDIA.ociIndex, `${file} (index.json)`);
  if (!('index' in top)) throw new WorkshopError(`${file}: its index.json is not an index`, 'The OCI layout is broken.');
  const images: ArchivedImage[] = [];
  const foreign: string[] = [];
  let skipped: WorkshopError | undefined;
  for (const entry of top.index.manifests) {
    if (entry.platform && !runsOn(entry.platform, hostPlatform())) {
      foreign.push(platformName(entry.platform));
      continue;
    }
    let descriptor = entry;
    let parsed = parseManifest(blobBytes(descriptor, store, contents, file, folder), descriptor.mediaType, `${file} (${short(descriptor.digest)})`);
    try {
      for (let depth = 0; 'index' in parsed; depth++) {
        if (depth === 2) throw new WorkshopError(`${file}: indexes nested three deep`, 'The OCI layout is broken.');
        descriptor = choosePlatform(parsed.index, `${file} (${short(descriptor.digest)})`);
        parsed = parseManifest(blobBytes(descriptor, store, contents, file, folder), descriptor.mediaType, `${file} (${short(descriptor.digest)})`);
      }
    } catch (error) {
      // An index without this machine's platform: the layout's other images may still be loaded.
      if (!(error instanceof WorkshopError)) throw error;
      skipped ??= error;
      continue;
    }
    images.push({ refs: [ociName(entry, file, parsed.manifest.config.digest)], manifest: parsed.manifest, manifestDigest: descriptor.digest });
  }
  if (images.length === 0 && skipped) throw skipped;
  if (images.length === 0 && foreign.length > 0) {
    throw new WorkshopError(
      `${file} has no image for this machine (${platformName(hostPlatform())}): it has ${[...new Set(foreign)].join(', ')}`,
      `Containers run the host's own processor's programs. Save the image for ${hostPlatform().architecture} (e.g. docker save on a machine like this one, or skopeo copy --override-arch ${hostPlatform().architecture}).`,
    );
  }
  return images;
}

/** An OCI layout's name for an image: its full name (containerd's annotation), or localhost/<file>:<tag>. */
function ociName(entry: Descriptor, file: string, configDigest: string): Reference {
  const full = entry.annotations?.['io.containerd.image.name'];
  if (full) return parseReference(full);
  const tag = entry.annotations?.['org.opencontainers.image.ref.name'];
  if (tag && /[/:@]/.test(tag)) return parseReference(tag);
  const stem = basename(file).replace(/\.(tar|tgz|tar\.gz)$/, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  if (!stem) return untagged(configDigest);
  return parseReference(`localhost/${stem}:${tag && /^[\w][\w.-]{0,127}$/.test(tag) ? tag : 'latest'}`);
}

/** An image saved without a tag: localhost/<12 hex of its id> (podman names local images localhost/… too). */
function untagged(configDigest: string): Reference {
  return parseReference(`localhost/${short(configDigest)}:latest`);
}

function resolveLink(contents: Contents, path: string): string {
  let name = posix.normalize(path).replace(/^\.\//, '');
  for (let hops = 0; contents.links.has(name) && hops < 10; hops++) name = contents.links.get(name)!;
  return name;
}

/** A document of the archive: kept in memory, or a blob copied into the store. */
function documentOrBlob(contents: Contents, path: string, file: string): Buffer {
  const name = resolveLink(contents, path);
  const document = contents.documents.get(name);
  if (document) return document;
  throw new WorkshopError(`${file}: ${path} is listed but not in the archive (or larger than ${formatBytes(MAX_DOCUMENT)})`, 'The archive is incomplete: save it again.');
}

/** A manifest or config blob of an OCI layout, checked against its digest. */
function blobBytes(descriptor: Descriptor, store: ImageStore, contents: Contents, file: string, folder: boolean): Buffer {
  const name = `blobs/sha256/${descriptor.digest.slice(7)}`;
  let bytes = contents.documents.get(name);
  if (!bytes && store.hasBlob(descriptor.digest) && !folder) bytes = store.readBlob(descriptor.digest);
  if (!bytes && folder) {
    try {
      if (statSync(join(file, name)).size > MAX_DOCUMENT) throw new Error('too big');
      bytes = readFileSync(join(file, name));
    } catch {
      bytes = undefined;
    }
  }
  if (!bytes) throw new WorkshopError(`${file} lacks ${name}`, 'The OCI layout is incomplete: copy it again.');
  if (sha256(bytes) !== descriptor.digest) throw blobMismatch(file, name, sha256(bytes));
  return bytes;
}

function blobMismatch(file: string, name: string, got: string): WorkshopError {
  return new WorkshopError(`${file}: ${name} does not match its digest (its bytes hash to ${got}): refused, nothing was kept from it`, 'The archive is corrupt or was altered: save or copy it again.');
}

/** An OCI layout folder: its small documents (the blobs stay where they are until a layer is copied). */
function readLayoutFolder(folder: string): Contents {
  const documents = new Map<string, Buffer>();
  for (const name of ['oci-layout', 'index.json', 'manifest.json']) {
    const path = join(folder, name);
    const stat = statSync(path, { throwIfNoEntry: false });
    if (stat?.isFile() && stat.size <= MAX_DOCUMENT) documents.set(name, readFileSync(path));
  }
  if (documents.has('manifest.json')) {
    throw new WorkshopError(`${folder} is an unpacked \`docker save\` archive`, `Load the archive itself (npm run rootfs -- --from FILE.tar), or pack it again: tar -cf image.tar -C ${folder} .`, EXIT.usage);
  }
  return { documents, blobs: new Map(), links: new Map() };
}

/** Copy a blob of an OCI layout folder into the store, checking its digest on the way. */
async function copyVerified(path: string, digest: string, store: ImageStore, file: string): Promise<void> {
  const temporary = store.temporary(digest.slice(7));
  const hash = createHash('sha256');
  try {
    const input = createReadStream(path);
    input.on('data', (chunk) => hash.update(chunk as Buffer));
    await pipeline(input, createWriteStream(temporary, { mode: 0o600 }));
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new WorkshopError(`${file}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 'The OCI layout is incomplete: copy it again.');
  }
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== digest) {
    rmSync(temporary, { force: true });
    throw blobMismatch(file, `blobs/sha256/${digest.slice(7)}`, got);
  }
  renameSync(temporary, store.blobPath(digest));
}

/** One pass over an image archive: blobs into the store (checked), small documents kept. */
function readArchive(file: string, store: ImageStore, options: PullOptions): Promise<Contents> {
  const archive = openArchive(file);
  const contents: Contents = { documents: new Map(), blobs: new Map(), links: new Map() };
  let count = 0;
  let bytes = 0;
  return new Promise((resolve, reject) => {
    const extract = tarExtract();
    let failed = false;
    const fail = (error: Error): void => {
      if (failed) return;
      failed = true;
      archive.tar.destroy();
      extract.destroy();
      reject(error instanceof WorkshopError ? error : archive.explain(error));
    };
    extract.on('entry', (header: Header, stream: EntryStream, next: () => void) => {
      const name = posix.normalize(header.name).replace(/^(\.\/|\/)+/, '');
      if (header.type === 'symlink' || header.type === 'link') {
        const target = header.type === 'symlink' ? posix.normalize(posix.join(posix.dirname(name), header.linkname ?? '')) : posix.normalize(header.linkname ?? '');
        contents.links.set(name, target.replace(/^(\.\/|\/)+/, ''));
      }
      if (header.type !== 'file' && header.type !== 'contiguous-file') {
        stream.on('end', next);
        stream.resume();
        return;
      }
      const ociBlob = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name);
      const isDocument = !ociBlob && (name.endsWith('.json') || name === 'oci-layout' || name === 'repositories' || /(^|\/)json$/.test(name));
      if (isDocument || (ociBlob && (header.size ?? 0) <= MAX_DOCUMENT / 8)) {
        // Small: kept in memory (manifests, configs; small OCI blobs too, they may be either).
        const chunks: Buffer[] = [];
        let size = 0;
        stream.on('data', (data: unknown) => {
          const chunk = data as Buffer;
          size += chunk.length;
          if (size <= MAX_DOCUMENT) chunks.push(chunk);
        });
        stream.on('end', () => {
          if (size > MAX_DOCUMENT) return next(); // not a document after all
          const data = Buffer.concat(chunks);
          if (ociBlob) {
            const digest = sha256(data);
            if (digest !== `sha256:${ociBlob[1]}`) return fail(blobMismatch(file, name, digest));
            store.writeBlob(digest, data);
            contents.blobs.set(name, { digest, size: data.length });
          }
          contents.documents.set(name, data);
          next();
        });
        stream.on('error', fail);
        return;
      }
      // A layer: streamed into the store, named by the sha256 of its bytes.
      const temporary = store.temporary(`load-${++count}`);
      const hash = createHash('sha256');
      const output = createWriteStream(temporary, { mode: 0o600 });
      stream.on('data', (data: unknown) => {
        const chunk = data as Buffer;
        hash.update(chunk);
        if (!output.write(chunk)) stream.pause();
      });
      output.on('drain', () => stream.resume());
      stream.on('end', () => output.end());
      stream.on('error', fail);
      output.on('error', fail);
      output.on('finish', () => {
        const digest = `sha256:${hash.digest('hex')}`;
        if (ociBlob && digest !== `sha256:${ociBlob[1]}`) {
          rmSync(temporary, { force: true });
          return fail(blobMismatch(file, name, digest));
        }
        renameSync(temporary, store.blobPath(digest));
        contents.blobs.set(name, { digest, size: header.size ?? 0 });
        bytes += header.size ?? 0;
        next();
      });
    });
    extract.on('error', fail);
    extract.on('finish', () => {
      if (failed) return;
      options.log(`read ${file}: ${contents.blobs.size} blobs, ${formatBytes(bytes)} of layers`);
      resolve(contents);
    });
    archive.tar.on('error', fail);
    archive.tar.pipe(extract);
  });
}

