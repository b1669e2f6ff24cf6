// Writing the image store (its layout: lib/container/image.ts).
//
// Blobs are kept by digest: a layer two images share is downloaded once. Each
// layer is unpacked once, into a folder of its own named after the digest of
// its uncompressed tar (the config's rootfs.diff_ids; a `docker save` archive
// and a registry address the same layer by different digests, but its
// content is the same), with its whiteouts written the way overlayfs reads
// them. The runtime then stacks those folders with overlayfs (step 6), or a
// copy of them merged into one folder (steps 4–5, or --target).
//
// Everything is written beside its final place and renamed into it when
// complete (staging.ts): a pull that is interrupted leaves no half layer, only
// a partial download (<hex>.partial-<pid>), which the next pull goes on from.
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, createReadStream, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statfsSync, statSync, writeFileSync, writeSync } from 'node:fs';
import chalk from 'chalk';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { WorkshopError } from '../lib/kernel/errors.js';
import { inInitialUserNamespace } from '../lib/host/machine.js';
import { findImage, flatFolder, layerFolder, parseReference, readRecord, recordPath, type ImageRecord, type Reference } from '../lib/container/image.js';
import { IMAGES_DIR } from '../lib/paths.js';
import { processIsGone } from '../lib/container/stale.js';
import { closedToOthers } from './import.js';
import { short } from './oci.js';
import { makeDirs, RUNTIME_DIRS } from './safe-fs.js';
import { makeStaging, putInPlace, removeStaleStaging } from './staging.js';
import { unpackTar, type UnpackReport } from './unpack.js';

/** Folders the runtime mounts onto, in a layer of their own on top of every image (Docker has an "-init" layer too). */
const INIT_LAYER = 'init';

export interface LayerResult {
  /** The layer's folder name (12 hex digits). */
  dir: string;
  /** It was there already (another image has it): nothing was unpacked. */
  reused: boolean;
  report?: UnpackReport;
}

export class ImageStore {
  readonly blobs: string;
  readonly layers: string;
  /** Owners kept (root, outside a user namespace): the archive's uids and gids. */
  readonly keepOwners = process.getuid?.() === 0 && inInitialUserNamespace();
  /** Opaque folders: trusted.overlay.* needs root; user.overlay.* is read with the `userxattr` mount option (rootless). */
  readonly opaqueXattrs = this.keepOwners ? ['trusted.overlay.opaque', 'user.overlay.opaque'] : ['user.overlay.opaque'];

  constructor(
    readonly root: string = IMAGES_DIR,
    private readonly maxBytes?: number,
  ) {
    this.blobs = join(root, 'blobs', 'sha256');
    this.layers = join(root, 'layers');
    makeStoreFolder(root);
    for (const folder of [join(root, 'blobs'), this.blobs, this.layers, join(root, 'names'), join(root, 'flat')]) mkdirSync(folder, { recursive: true, mode: 0o700 });
    this.ensureInitLayer();
    this.removeStaleTemporaries();
  }

  /** A temporary file in the blob folder, named after this process: <name>.tmp-<pid>. */
  temporary(name: string): string {
    return join(this.blobs, `${name}.tmp-${process.pid}`);
  }

  /** Temporary files and half-unpacked layers of loads and pulls that were killed (their process is gone). */
  private removeStaleTemporaries(): void {
    for (const name of readdirSync(this.blobs)) {
      const match = /\.tmp-(\d+)$/.exec(name);
      if (match && processIsGone(Number(match[1]))) rmSync(join(this.blobs, name), { force: true });
    }
    for (const folder of [this.layers, join(this.root, 'flat')]) {
      for (const name of readdirSync(folder)) {
        const match = /^\..+\.(?:importing|building)-(\d+)-[0-9a-f]+$/.exec(name);
        if (match && processIsGone(Number(match[1]))) rmSync(join(folder, name), { recursive: true, force: true });
      }
    }
  }

  blobPath(digest: string): string {
    return join(this.blobs, digest.replace(/^sha256:/, ''));
  }

  hasBlob(digest: string): boolean {
    return statSync(this.blobPath(digest), { throwIfNoEntry: false })?.isFile() === true;
  }

  /** A small blob (manifest, config) kept in the store, written whole or not at all. */
  writeBlob(digest: string, bytes: Buffer): void {
    if (this.hasBlob(digest)) return;
    const temporary = this.temporary(digest.replace(/^sha256:/, ''));
    writeFileSync(temporary, bytes, { mode: 0o600 });
    renameSync(temporary, this.blobPath(digest));
  }

  readBlob(digest: string): Buffer {
    return readFileSync(this.blobPath(digest));
  }

  /**
   * The file a download of `digest` goes into: <hex>.partial-<this pid>. A
   * partial download left by a pull that was interrupted (its process is gone)
   * is taken over, so that this one goes on from there.
   */
  claimPartial(digest: string): string {
    const hex = digest.replace(/^sha256:/, '');
    const mine = join(this.blobs, `${hex}.partial-${process.pid}`);
    for (const name of readdirSync(this.blobs)) {
      const match = /^([0-9a-f]{64})\.partial-(\d+)$/.exec(name);
      if (!match || match[1] !== hex || Number(match[2]) === process.pid || !processIsGone(Number(match[2]))) continue;
      try {
        renameSync(join(this.blobs, name), mine);
        break;
      } catch {
        // another pull took it over first
      }
    }
    return mine;
  }

  /** A complete, checked download becomes the blob. */
  commitBlob(digest: string, partial: string): void {
    chmodSync(partial, 0o600);
    renameSync(partial, this.blobPath(digest));
  }

  /** The folder of the layer whose uncompressed digest is `diffId`, if it was unpacked already. */
  hasLayer(diffId: string): boolean {
    const folder = layerFolder(short(diffId), this.root);
    if (!statSync(folder, { throwIfNoEntry: false })?.isDirectory()) return false;
    const recorded = readIfExists(`${folder}.diffid`)?.trim();
    if (recorded !== diffId) {
      throw new WorkshopError(`the image store has a layer ${short(diffId)} that is not ${diffId} (it says ${recorded ?? 'nothing'})`, `The store (${this.root}) is damaged: remove ${folder}, and pull again.`);
    }
    return true;
  }

  /**
   * Unpack the layer in blob `digest` into its own folder, whiteouts written
   * for overlayfs, checking that its uncompressed bytes have the digest the
   * config lists for it (`diffId`). Reused when another image unpacked it.
   */
  async unpackLayer(digest: string, diffId: string, source: string): Promise<LayerResult> {
    const dir = short(diffId);
    if (this.hasLayer(diffId)) return { dir, reused: true };
    const folder = layerFolder(dir, this.root);
    removeStaleStaging(folder);
    const staging = makeStaging(folder, 'importing');
    try {
      const { tar, explain } = decompressed(this.blobPath(digest), source);
      const hash = createHash('sha256');
      tar.on('data', (chunk: Buffer) => hash.update(chunk));
      const report = await unpackTar(tar, staging, {
        maxBytes: this.maxBytes ?? freeSpace(this.root),
        keepOwners: this.keepOwners,
        keepPrivileges: closedToOthers(this.root),
        source,
        inputError: explain,
        whiteouts: 'overlay',
        opaqueXattrs: this.opaqueXattrs,
      });
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== diffId) {
        throw new WorkshopError(
          `${source}: its unpacked content does not match the digest its config lists (expected ${diffId}, got ${got}): refused, nothing was kept from it`,
          'The image is broken, or was altered. Pull it again; if it happens again, do not use it.',
        );
      }
      writeFileSync(`${folder}.diffid`, `${diffId}\n`, { mode: 0o600 });
      try {
        putInPlace(staging, folder, false);
      } catch (error) {
        if (!['ENOTEMPTY', 'EEXIST'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
        rmSync(staging, { recursive: true, force: true }); // another pull unpacked it meanwhile
        return { dir, reused: true };
      }
      return { dir, reused: false, report };
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      throw error;
    }
  }

  /** Record an image under a name: the runtime finds it there (--image NAME). */
  writeRecord(ref: Reference, record: ImageRecord): void {
    const path = recordPath(ref, this.root);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const temporary = `${path}.tmp-${process.pid}`;
    writeFileSync(temporary, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    renameSync(temporary, path);
  }

  /**
   * The image's layers merged into one plain folder, `target` (by default its
   * folder in the store, which steps 4–5 use): each layer unpacked over the
   * ones below, its whiteouts deleting what they hide.
   */
  async flatten(record: ImageRecord, target = flatFolder(record.id, this.root), options: { replace?: boolean; keepPrivileges?: boolean } = {}): Promise<string> {
    removeStaleStaging(target);
    const staging = makeStaging(target, 'importing');
    try {
      for (const [index, layer] of record.layers.entries()) {
        if (!this.hasBlob(layer.digest)) {
          throw new WorkshopError(`the image store lacks layer ${short(layer.digest)} of ${record.name}`, `Pull it again: npm run rootfs -- --image ${record.name}`);
        }
        const source = `layer ${index + 1} (${short(layer.digest)}) of ${record.name}`;
        const { tar, explain } = decompressed(this.blobPath(layer.digest), source);
        await unpackTar(tar, staging, {
          maxBytes: this.maxBytes ?? freeSpace(dirname(target)),
          keepOwners: this.keepOwners,
          keepPrivileges: options.keepPrivileges ?? closedToOthers(dirname(target)),
          source,
          inputError: explain,
          whiteouts: 'apply',
        });
      }
      makeDirs(staging, RUNTIME_DIRS);
      putInPlace(staging, target, options.replace ?? false);
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      if (['ENOTEMPTY', 'EEXIST'].includes((error as NodeJS.ErrnoException).code ?? '') && !options.replace) return target; // made meanwhile by another run
      throw error;
    }
    return target;
  }

  /** layers/init: the empty /proc, /dev and /sys the runtime mounts onto, whatever the image has. */
  private ensureInitLayer(): void {
    const folder = layerFolder(INIT_LAYER, this.root);
    if (statSync(folder, { throwIfNoEntry: false })?.isDirectory()) return;
    removeStaleStaging(folder);
    const staging = makeStaging(folder, 'building');
    makeDirs(staging, { proc: 0o755, dev: 0o755, sys: 0o755 });
    chmodSync(staging, 0o755);
    try {
      putInPlace(staging, folder, false);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // made meanwhile by another pull
    }
  }
}

/**
 * Steps 4–5 run an image from its layers merged into one folder (they have
 * no overlay yet): made the first time it is needed, then reused.
 */
export async function ensureFlatImage(ref: string, store = IMAGES_DIR): Promise<void> {
  const image = findImage(ref, store); // not pulled: says how to pull it
  if (statSync(image.flat, { throwIfNoEntry: false })?.isDirectory()) return;
  const record = readRecord(parseReference(ref), store)!;
  writeSync(2, chalk.dim(`merging the ${record.layers.length} layers of ${ref} into one folder for steps 4-5 (once): ${image.flat}\n`));
  await new ImageStore(store).flatten(record);
}

/**
 * The store's folder: created private (0700), so that the setuid programs of
 * its layers are out of other users' reach; refused when someone else could
 * change what it holds.
 */
function makeStoreFolder(root: string): void {
  mkdirSync(dirname(root), { recursive: true });
  try {
    mkdirSync(root, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const stat = lstatSync(root);
  const uid = process.getuid?.() ?? 0;
  const problem = !stat.isDirectory()
    ? 'is not a folder'
    : stat.uid !== uid
      ? `belongs to uid ${stat.uid}, not to you (uid ${uid})`
      : (stat.mode & 0o022) !== 0
        ? `can be written by other users (mode ${(stat.mode & 0o777).toString(8)})`
        : undefined;
  if (problem) {
    throw new WorkshopError(`refusing to use the image store ${root}: it ${problem}`, 'Someone else could change the images it holds. Remove it (or point CFS_IMAGES to a folder of your own), then pull again.');
  }
  if ((stat.mode & 0o077) !== 0) chmodSync(root, 0o700);
}

/** Node 22.15+ has zstd in zlib. */
export function canReadZstd(): boolean {
  return typeof (zlib as unknown as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';
}

/** A layer blob as tar bytes: gzip and zstd are recognised by their first bytes, whatever the media type says. */
function decompressed(file: string, source: string): { tar: Readable; explain: (error: Error) => WorkshopError } {
  const start = Buffer.alloc(4);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, start, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  const input = createReadStream(file, { highWaterMark: 256 * 1024 });
  const corrupt = (error: Error): WorkshopError =>
    error instanceof WorkshopError ? error : new WorkshopError(`${source} cannot be unpacked: ${error.message}`, 'The image is broken. Pull (or save) it again.');
  let decompress: zlib.Gunzip | undefined;
  if (start[0] === 0x1f && start[1] === 0x8b) decompress = zlib.createGunzip({ chunkSize: 128 * 1024 });
  else if (start.readUInt32LE(0) === 0xfd2fb528) {
    const zstd = (zlib as unknown as { createZstdDecompress?: () => zlib.Gunzip }).createZstdDecompress;
    if (!zstd) throw new WorkshopError(`${source} is compressed with zstd, which this Node (${process.version}) cannot read`, 'Node 22.15 or later reads zstd; or pull a tag of the image whose layers are gzip-compressed (most are).');
    decompress = zstd();
  }
  if (!decompress) return { tar: input, explain: corrupt };
  input.on('error', (error) => decompress.destroy(error));
  input.pipe(decompress);
  return { tar: decompress, explain: corrupt };
}

/** Bytes free for this user on the disk of `folder`: what an unpacked layer may take at most (a bomb stops there). */
export function freeSpace(folder: string): number {
  const stat = statfsSync(folder);
  return stat.bavail * stat.bsize;
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
