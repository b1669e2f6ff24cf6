// Unpacking a tar stream into a folder, safely and faithfully.
//
// A tar archive is a list of entries, each a 512-byte header (name, mode,
// owner, size, type, link target…) followed by its data. tar-stream (npm)
// parses them as the bytes stream in; this file decides what each entry may
// do to the disk. An archive is untrusted input:
//   - its paths may climb out of the folder ("../../etc/cron.d/x"), or go
//     through one of its own symlinks ("lib -> /usr/lib", then "lib/x" lands in
//     the host's /usr/lib): every path is checked, and no write ever goes
//     through a symlink (safe-fs.ts);
//   - it may be a bomb (2 MB of gzip unpacking to terabytes): a cap on the
//     bytes written stops it;
//   - its setuid programs and file capabilities give root to whoever runs them:
//     they are kept only when the caller says it is safe (see import.ts).
// Memory stays bounded whatever the archive: data flows through in small
// chunks, and runs of zeros become holes (a sparse 2 GiB file costs no disk).
//
// unpackTar() takes any readable stream of tar bytes, so that an image's layers
// (pulled or from `docker save`) are unpacked with the same protections. A
// layer says which files of the layers below it are deleted with "whiteouts":
// an empty entry `.wh.NAME` (NAME is gone), or `.wh..wh..opq` in a folder (the
// folder hides everything the lower layers have in it). They are either
// written the way overlayfs reads them, in a layer's own folder (a character
// device 0/0 for NAME; the xattr trusted.overlay.opaque=y on the folder), or
// applied to the lower layers unpacked before into the same folder (flattening).
import { closeSync, fchmodSync, fchownSync, ftruncateSync, futimesSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, chmodSync, chownSync, constants, readdirSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { extract as tarExtract, type ExtractEvents, type Header } from 'tar-stream';

/** One entry's data, as tar-stream hands it over. */
type EntryStream = ExtractEvents['entry'][1];
import { WorkshopError } from '../lib/kernel/errors.js';
import { lsetxattr, mknod } from '../lib/kernel/libc.js';
import { lstatIfExists, makeParents } from './safe-fs.js';

export interface UnpackOptions {
  /** The most bytes of file data the archive may unpack to: a bomb stops there. */
  maxBytes: number;
  /** Keep the archive's numeric owners and groups (root only); otherwise every file is the caller's. */
  keepOwners: boolean;
  /** Keep setuid/setgid bits and file capabilities; otherwise they are dropped (and listed). */
  keepPrivileges: boolean;
  /** The archive, for messages. */
  source: string;
  /** Explains an error of `input` itself (a corrupt gzip stream, an unreadable file). */
  inputError?: (error: Error) => WorkshopError;
  /**
   * The archive is an image layer: its whiteouts are written for overlayfs
   * ('overlay': `into` is the layer's own, empty folder) or applied to the
   * lower layers already in `into` ('apply': flattening an image, layer by layer).
   * Unset: an ordinary archive, whose ".wh." files are files.
   */
  whiteouts?: 'overlay' | 'apply';
  /** With 'overlay': the xattrs that mark an opaque folder (trusted.overlay.opaque needs root; user.overlay.opaque goes with the `userxattr` mount option). */
  opaqueXattrs?: string[];
}

export interface UnpackReport {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  /** Bytes of file data, holes included. */
  bytes: number;
  /** Entries not unpacked, e.g. "dev/null (character-device)". */
  skipped: string[];
  /** Files whose setuid/setgid bits or capabilities were dropped. */
  privilegesDropped: string[];
  /** Whiteouts: files deleted, and folders made opaque, by an image layer. */
  whiteouts: number;
  opaqueDirs: number;
}

/** The folders a real root filesystem has are a few thousand; their metadata waits in memory until the end. */
const MAX_DIRS = 500_000;
/** The file capability attribute (what `setcap` writes): privileges, like a setuid bit. */
const CAPABILITY = 'security.capability';
const BLOCK = 512;
const ZEROS = Buffer.alloc(64 * 1024);
/** An image layer's whiteouts (the OCI image spec, from aufs): `.wh.NAME`, and `.wh..wh..opq` for an opaque folder. */
const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Unpack the tar stream `input` into `into`, an empty folder only this process uses (its own staging folder). */
export function unpackTar(input: Readable, into: string, options: UnpackOptions): Promise<UnpackReport> {
  return new Unpacker(input, into, options).run();
}

/** An entry's paths, checked and made relative to the folder. */
interface Entry {
  header: Header;
  /** As written in the archive, for messages. */
  name: string;
  relative: string;
  uid: number;
  gid: number;
  mtime: number;
}

class Unpacker {
  private readonly report: UnpackReport = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0, skipped: [], privilegesDropped: [], whiteouts: 0, opaqueDirs: 0 };
  /** Flattening ('apply'): the paths this layer wrote, and their folders. Whiteouts only hide what lower layers have. */
  private readonly thisLayer = new Set<string>(['']);
  /** Folders known to be real folders (created or checked here): never checked again. */
  private readonly knownDirs = new Set<string>(['']);
  /** Folder metadata applied at the end: adding files changes a folder's mtime, and a read-only mode would block them. */
  private readonly dirs = new Map<string, { mode: number; mtime: number }>();
  private readonly raw = new RawPaxRecords();
  // Archives without the ustar/GNU magic (old v7 tar) are read too: each header still has its checksum.
  private readonly extract = tarExtract({ allowUnknownFormat: true } as Parameters<typeof tarExtract>[0]);
  /** Where the header after the current entry starts, in the tar stream: for messages. */
  private nextHeader = 0;
  private lastName = '';
  private openFd: number | undefined;
  private failed = false;

  constructor(
    private readonly input: Readable,
    private readonly into: string,
    private readonly options: UnpackOptions,
  ) {}

  run(): Promise<UnpackReport> {
    return new Promise((resolve, reject) => {
      const fail = (error: unknown): void => {
        if (this.failed) return;
        this.failed = true;
        if (this.openFd !== undefined) closeSync(this.openFd);
        this.input.destroy();
        this.extract.destroy(null);
        reject(this.diskError(error));
      };
      this.input.on('data', (chunk: Buffer) => {
        this.raw.add(chunk);
        if (!this.extract.write(chunk)) this.input.pause();
      });
      this.extract.on('drain', () => this.input.resume());
      this.input.on('end', () => this.extract.end(undefined));
      this.input.on('error', (error: Error) => fail(error instanceof WorkshopError ? error : (this.options.inputError?.(error) ?? error)));
      this.extract.on('error', (error: Error) => fail(this.parseError(error)));
      this.extract.on('entry', (header: Header, stream: EntryStream, next: () => void) => {
        try {
          this.entry(header, stream, next, fail);
        } catch (error) {
          fail(error);
        }
      });
      this.extract.on('finish', () => {
        try {
          this.finishDirs();
          resolve(this.report);
        } catch (error) {
          fail(error);
        }
      });
    });
  }

  private entry(header: Header, stream: EntryStream, next: () => void, fail: (error: unknown) => void): void {
    const dataStart = (header as Header & { byteOffset: number }).byteOffset;
    const size = header.size ?? 0;
    const pax = (header as Header & { pax?: Record<string, string> | null }).pax ?? {};
    const xattrs = Object.keys(pax).some((key) => /^(SCHILY|LIBARCHIVE)\.xattr\./.test(key)) ? this.raw.xattrs(this.nextHeader, dataStart - BLOCK) : undefined;
    this.nextHeader = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    this.raw.forgetBefore(this.nextHeader);
    this.lastName = header.name;

    const entry = this.checked(header, pax);
    if (this.knownDirs.size > MAX_DIRS) this.knownDirs.clear(); // only a cache: memory stays bounded
    const done = (): void => {
      if (!this.failed) next();
    };
    if (this.options.whiteouts && this.whiteout(entry)) {
      stream.on('end', done);
      stream.resume();
      return;
    }
    switch (header.type) {
      case 'file':
      case 'contiguous-file':
        this.file(entry, stream, xattrs, done, fail);
        this.wrote(entry.relative);
        return;
      case 'directory':
        this.directory(entry);
        break;
      case 'symlink':
        this.symlink(entry);
        break;
      case 'link':
        this.hardlink(entry);
        break;
      default:
        // Device nodes and FIFOs: the runtime mounts its own /dev (and devices from an archive are a risk).
        this.report.skipped.push(`${entry.name} (${header.type ?? 'unknown type'})`);
    }
    this.wrote(entry.relative);
    stream.on('end', done);
    stream.resume();
  }

  /** The entry's paths checked, its owner and time read (pax records override the header's, e.g. for big uids). */
  private checked(header: Header, pax: Record<string, string>): Entry {
    const relative = insideFolder(header.name, header.name);
    if (relative === '' && header.type !== 'directory') {
      throw new WorkshopError(`refusing the archive: entry "${header.name}" has no name`, 'The archive is broken.');
    }
    const number = (text: string | undefined, fallback: number): number => (text !== undefined && /^\d+(\.\d+)?$/.test(text) ? Number(text) : fallback);
    return {
      header,
      name: header.name,
      relative,
      uid: number(pax.uid, header.uid ?? 0),
      gid: number(pax.gid, header.gid ?? 0),
      mtime: number(pax.mtime, (header.mtime?.getTime() ?? 0) / 1000),
    };
  }

  /**
   * Create the entry with `make(path)` (which fails with EEXIST rather than
   * follow or overwrite anything), its folders created first. An earlier
   * non-folder entry of the same name is removed (a symlink too, never
   * followed), and `make` tried again; a folder is never replaced, but when
   * flattening, where a file over a lower layer's folder hides it, as in overlayfs.
   */
  private create<T>(entry: Entry, make: (path: string) => T): { path: string; made: T } {
    const path = this.parents(entry.relative, entry.name);
    try {
      return { path, made: make(path) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    this.clear(entry, path);
    return { path, made: make(path) };
  }

  /** The entry's full path, its folders created, any earlier non-folder entry of the same name removed. */
  private freshPath(entry: Entry): string {
    const path = this.parents(entry.relative, entry.name);
    if (lstatIfExists(path)) this.clear(entry, path);
    return path;
  }

  /** Remove what is at `path` for `entry`: a file or symlink (never followed); a folder only when a lower layer made it. */
  private clear(entry: Entry, path: string): void {
    if (lstatIfExists(path)?.isDirectory()) {
      if (this.fromLowerLayer(entry.relative)) rmSync(path, { recursive: true, force: true });
      else throw new WorkshopError(`entry "${entry.name}" would replace a folder`, 'The archive is broken.');
    } else unlinkSync(path);
  }

  /** makeParents, where a flattened layer may replace a lower layer's symlink or file by a folder. */
  private parents(relative: string, name: string): string {
    return makeParents(this.into, relative, name, this.knownDirs, this.options.whiteouts === 'apply' ? (folder) => this.fromLowerLayer(folder) : undefined);
  }

  /** Flattening: is this path something a lower layer put there (not this layer)? */
  private fromLowerLayer(relative: string): boolean {
    return this.options.whiteouts === 'apply' && !this.thisLayer.has(relative);
  }

  /** Flattening: remember a path this layer wrote, and its folders. */
  private wrote(relative: string): void {
    if (this.options.whiteouts !== 'apply') return;
    for (let end = relative.indexOf('/'); end !== -1; end = relative.indexOf('/', end + 1)) this.thisLayer.add(relative.slice(0, end));
    this.thisLayer.add(relative);
  }

  /** A whiteout entry, written or applied (see the top of this file); false when `entry` is not one. */
  private whiteout(entry: Entry): boolean {
    const slash = entry.relative.lastIndexOf('/');
    const folder = slash === -1 ? '' : entry.relative.slice(0, slash);
    const base = entry.relative.slice(slash + 1);
    if (!base.startsWith(WHITEOUT)) return false;
    if (base === OPAQUE) {
      this.opaque(folder, entry);
      return true;
    }
    if (base.startsWith(`${WHITEOUT}${WHITEOUT}`)) return true; // aufs's own bookkeeping (.wh..wh.plnk…): nothing to unpack
    const name = base.slice(WHITEOUT.length);
    if (name === '.' || name === '..') throw new WorkshopError(`refusing the layer: the whiteout "${entry.name}" names no file`, 'Nothing was kept. The image is broken.');
    const hidden = folder ? `${folder}/${name}` : name;
    this.report.whiteouts++;
    if (this.options.whiteouts === 'overlay') {
      mknod(this.freshPath({ ...entry, relative: hidden }), constants.S_IFCHR, 0); // overlayfs: "deleted here"
      return true;
    }
    if (this.fromLowerLayer(hidden)) {
      const path = this.lowerPath(hidden);
      if (path) rmSync(path, { recursive: true, force: true });
    }
    return true;
  }

  /** `.wh..wh..opq`: what lower layers have in `folder` is hidden. */
  private opaque(folder: string, entry: Entry): void {
    this.report.opaqueDirs++;
    const path = folder === '' ? this.into : this.parents(`${folder}/${OPAQUE}`, entry.name).slice(0, -OPAQUE.length - 1);
    if (this.options.whiteouts === 'overlay') {
      for (const name of this.options.opaqueXattrs ?? []) lsetxattr(path, name, Buffer.from('y'));
      return;
    }
    this.wrote(folder);
    for (const child of readdirSync(path)) {
      const relative = folder ? `${folder}/${child}` : child;
      if (this.fromLowerLayer(relative)) rmSync(join(path, child), { recursive: true, force: true });
    }
  }

  /** Flattening: the path of `relative` if every folder on its way is a real folder (never through a symlink), else undefined. */
  private lowerPath(relative: string): string | undefined {
    const names = relative.split('/');
    for (let index = 1; index < names.length; index++) {
      if (!lstatIfExists(join(this.into, ...names.slice(0, index)))?.isDirectory()) return undefined;
    }
    return join(this.into, relative);
  }

  private file(entry: Entry, stream: EntryStream, xattrs: Map<string, Buffer> | undefined, done: () => void, fail: (error: unknown) => void): void {
    const size = entry.header.size ?? 0;
    if (this.report.bytes + size > this.options.maxBytes) throw this.tooBig(entry, size);
    // O_EXCL: created here, never an existing file nor through a symlink; 0600 until complete.
    const { path, made: fd } = this.create(entry, (path) => openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
    this.openFd = fd;
    let position = 0;
    let holeAtEnd = false;
    stream.on('data', (data: unknown) => {
      const chunk = data as Buffer;
      try {
        // Runs of zeros are skipped, leaving a hole: the file reads the same and takes no disk there.
        if (isZeros(chunk)) holeAtEnd = true;
        else {
          for (let written = 0; written < chunk.length; ) written += writeSync(fd, chunk, written, chunk.length - written, position + written);
          holeAtEnd = false;
        }
        position += chunk.length;
      } catch (error) {
        fail(error);
      }
    });
    stream.on('end', () => {
      try {
        if (holeAtEnd) ftruncateSync(fd, position); // the file's full length, ending in a hole
        this.report.bytes += position;
        this.setOwner(() => fchownSync(fd, entry.uid, entry.gid));
        fchmodSync(fd, this.fileMode(entry)); // after chown, which clears setuid bits
        this.setCapability(path, entry, xattrs);
        futimesSync(fd, entry.mtime, entry.mtime);
        closeSync(fd);
        this.openFd = undefined;
        this.report.files++;
        done();
      } catch (error) {
        fail(error);
      }
    });
    stream.on('error', fail);
  }

  private directory(entry: Entry): void {
    const mode = (entry.header.mode ?? 0o755) & 0o7777;
    if (entry.relative === '') {
      this.dirs.set('', { mode, mtime: entry.mtime }); // the folder itself: "./"
      this.setOwner(() => chownSync(this.into, entry.uid, entry.gid));
      return;
    }
    const path = this.parents(entry.relative, entry.name);
    const existing = lstatIfExists(path);
    if (existing && !existing.isDirectory()) unlinkSync(path); // an earlier entry of the same name
    if (!existing?.isDirectory()) mkdirSync(path, 0o700);
    this.knownDirs.add(entry.relative);
    this.setOwner(() => chownSync(path, entry.uid, entry.gid));
    if (!this.dirs.has(entry.relative) && this.dirs.size >= MAX_DIRS) {
      throw new WorkshopError(`refusing the archive: more than ${MAX_DIRS} folders`, 'A root filesystem has a few thousand: this archive is broken or malicious.');
    }
    this.dirs.set(entry.relative, { mode, mtime: entry.mtime });
    this.report.dirs++;
  }

  private symlink(entry: Entry): void {
    const { path } = this.create(entry, (path) => symlinkSync(entry.header.linkname ?? '', path)); // its target only means something inside the container
    this.setOwner(() => lchownSync(path, entry.uid, entry.gid));
    lutimesSync(path, entry.mtime, entry.mtime);
    this.report.symlinks++;
  }

  private hardlink(entry: Entry): void {
    const linkname = entry.header.linkname ?? '';
    const relative = insideFolder(linkname, entry.name);
    // link() follows symlinks in the linked file's folders too, so they get the same check.
    const existing = makeParents(this.into, relative, entry.name, this.knownDirs);
    const stat = lstatIfExists(existing);
    if (!stat || stat.isDirectory() || relative === entry.relative) {
      throw new WorkshopError(`hard link "${entry.name}" points to "${linkname}", which is not a file earlier in the archive`, 'The archive is broken.');
    }
    this.create(entry, (path) => linkSync(existing, path));
    this.report.hardlinks++;
  }

  /** The mode a file gets: the archive's, without setuid/setgid unless they may be kept. */
  private fileMode(entry: Entry): number {
    const mode = (entry.header.mode ?? 0o644) & 0o7777;
    if (this.options.keepPrivileges || (mode & 0o6000) === 0) return mode;
    this.report.privilegesDropped.push(`${entry.relative} (${mode & 0o4000 ? 'setuid' : 'setgid'})`);
    return mode & ~0o6000;
  }

  /** The file's capabilities (`getcap`), when the archive has them and they may be kept. */
  private setCapability(path: string, entry: Entry, xattrs: Map<string, Buffer> | undefined): void {
    const value = xattrs?.get(CAPABILITY);
    if (!value) return;
    if (!this.options.keepOwners) {
      this.report.skipped.push(`${entry.relative} (its file capabilities: only root can set them)`);
      return;
    }
    if (!this.options.keepPrivileges) {
      this.report.privilegesDropped.push(`${entry.relative} (capabilities)`);
      return;
    }
    lsetxattr(path, CAPABILITY, value);
  }

  private setOwner(chown: () => void): void {
    if (this.options.keepOwners) chown();
  }

  /** Folder modes and times last, deepest first (a time set on a folder is not changed by its children's). */
  private finishDirs(): void {
    if (!this.dirs.has('')) this.dirs.set('', { mode: 0o755, mtime: Date.now() / 1000 }); // no "./" entry: an ordinary folder
    for (const [relative, { mode, mtime }] of [...this.dirs].reverse()) {
      const path = join(this.into, relative);
      chmodSync(path, mode);
      utimesSync(path, mtime, mtime);
    }
  }

  private tooBig(entry: Entry, size: number): WorkshopError {
    const cap = formatBytes(this.options.maxBytes);
    return new WorkshopError(
      `stopped: ${this.options.source} unpacks to more than ${cap} (at "${entry.name}", ${formatBytes(size)}, after ${formatBytes(this.report.bytes)})`,
      'Nothing was kept. A real root filesystem is a few hundred MB; an archive that unpacks to much more is broken or a "bomb". ' +
        'If it is right, allow more with --max-size (e.g. --max-size 20G); by default the cap is the free space of the target\'s disk.',
    );
  }

  /** A file system error while writing (a full disk, a name too long…), said plainly; other errors as they are. */
  private diskError(error: unknown): unknown {
    const code = (error as NodeJS.ErrnoException).code;
    if (error instanceof WorkshopError || !code?.startsWith('E')) return error;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return new WorkshopError(
        `the disk is full: unpacking ${this.options.source} failed at "${this.lastName}" (${code})`,
        `Nothing was kept. Free some space (df -h ${this.into}; df -i for inodes), or import elsewhere with --target.`,
      );
    }
    return new WorkshopError(
      `unpacking ${this.options.source} failed at "${this.lastName}": ${(error as Error).message}`,
      'Nothing was kept. Check the target folder (permissions, file system); a name the file system refuses means the archive does not fit it.',
    );
  }

  /** tar-stream's complaint, with where in the tar data it happened. */
  private parseError(error: Error): WorkshopError {
    const after = this.lastName ? `, after "${this.lastName}"` : '';
    const problems: Record<string, string> = {
      'Unexpected end of data': `it ends at byte ${this.raw.received}, in the middle of "${this.lastName}" (a truncated download?)`,
      'Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?': `a header is broken (bad checksum) (at byte ${this.nextHeader} of the tar data${after})`,
      'Invalid tar header: unknown format.': `a header is in no tar format we know (at byte ${this.nextHeader} of the tar data${after})`,
      'Header exceeds max size': `an extended header is too large (at byte ${this.nextHeader} of the tar data${after})`,
    };
    return new WorkshopError(
      `${this.options.source} is not a tar archive we can read: ${problems[error.message] ?? `${error.message} (at byte ${this.nextHeader} of the tar data${after})`}`,
      'Nothing was kept. Pass a complete .tar or .tar.gz file, e.g. from `docker export CONTAINER > rootfs.tar` or an Alpine "minirootfs" download.',
    );
  }
}

function isZeros(chunk: Buffer): boolean {
  for (let start = 0; start < chunk.length; start += ZEROS.length) {
    const part = chunk.subarray(start, start + ZEROS.length);
    if (!part.equals(ZEROS.subarray(0, part.length))) return false;
  }
  return true;
}

/**
 * "./usr/../bin/sh" → "bin/sh". A leading "/" is dropped: archive paths are
 * relative to the folder. A ".." that would climb above it is refused.
 * (Symlink targets never come here: they are written as they are, and only
 * mean something inside the container.)
 */
export function insideFolder(path: string, entry: string): string {
  const names: string[] = [];
  for (const name of path.split('/')) {
    if (name === '' || name === '.') continue;
    if (name !== '..') names.push(name);
    else if (names.pop() === undefined) {
      throw new WorkshopError(
        `refusing the archive: entry "${entry}" points outside the target folder ("${path}")`,
        'Nothing was kept. Archives whose paths climb out with ".." are broken or malicious ("path traversal"): do not use this one.',
      );
    }
  }
  return names.join('/');
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} bytes` : `${Number(value.toFixed(1))} ${units[unit]}`;
}

/**
 * pax records byte for byte. tar-stream (like node-tar) decodes pax values as
 * UTF-8 text, which mangles binary ones: a capability set including bit 7
 * (CAP_SETUID) is a 0x80 byte. So the raw bytes between the end of one entry
 * and the header of the next (where its pax header sits) are kept, and read
 * again when an entry has extended attributes.
 */
class RawPaxRecords {
  private chunks: { start: number; bytes: Buffer }[] = [];
  /** Offset of the next byte add() receives. */
  private end = 0;

  /** How many bytes of tar data came in so far. */
  get received(): number {
    return this.end;
  }
  /** Bytes before this offset are not needed again. */
  private keepFrom = 0;

  add(chunk: Buffer): void {
    const start = this.end;
    this.end += chunk.length;
    if (this.end <= this.keepFrom) return; // inside an entry's data: never needed
    const from = Math.max(0, this.keepFrom - start);
    this.chunks.push({ start: start + from, bytes: chunk.subarray(from) });
  }

  forgetBefore(offset: number): void {
    this.keepFrom = offset;
    this.chunks = this.chunks.filter(({ start, bytes }) => start + bytes.length > offset);
  }

  /** The extended attributes in the pax ('x') headers between `from` and `to`, values as bytes. */
  xattrs(from: number, to: number): Map<string, Buffer> {
    const records = new Map<string, Buffer>();
    const bytes = this.slice(from, to);
    for (let offset = 0; offset + BLOCK <= bytes.length; ) {
      const header = bytes.subarray(offset, offset + BLOCK);
      const size = parseInt(header.toString('latin1', 124, 136).replace(/\0.*$/, '').trim() || '0', 8);
      const data = bytes.subarray(offset + BLOCK, offset + BLOCK + size);
      if (header[156] === 0x78 /* 'x' */) parsePax(data, records);
      offset += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    }
    const xattrs = new Map<string, Buffer>();
    for (const [key, value] of records) {
      // GNU tar and Go: SCHILY.xattr.<name>=<bytes>; libarchive: LIBARCHIVE.xattr.<url-encoded name>=<base64>.
      const schily = /^SCHILY\.xattr\.(.+)$/.exec(key);
      const libarchive = /^LIBARCHIVE\.xattr\.(.+)$/.exec(key);
      if (schily) xattrs.set(schily[1]!, value);
      else if (libarchive) xattrs.set(decodeURIComponent(libarchive[1]!), Buffer.from(value.toString('latin1'), 'base64'));
    }
    return xattrs;
  }

  private slice(from: number, to: number): Buffer {
    const parts = this.chunks.filter(({ start, bytes }) => start < to && start + bytes.length > from).map(({ start, bytes }) => bytes.subarray(Math.max(0, from - start), to - start));
    return Buffer.concat(parts);
  }
}

/** "30 path=some/long/name\n": the number counts the whole record, in bytes. */
function parsePax(data: Buffer, records: Map<string, Buffer>): void {
  for (let start = 0; start < data.length; ) {
    const space = data.indexOf(0x20, start);
    const length = Number(data.toString('latin1', start, space));
    if (space < 0 || !(length > 0)) return;
    const record = data.subarray(space + 1, start + length - 1); // without the final "\n"
    const equals = record.indexOf(0x3d);
    if (equals > 0) records.set(record.toString('utf8', 0, equals), Buffer.from(record.subarray(equals + 1)));
    start += length;
  }
}
