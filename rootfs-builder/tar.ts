// Reading tar archives, the format `docker export` and Alpine's minirootfs use.
//
// A tar file is a list of entries. Each entry is a 512-byte header (name, mode,
// size, type, link target, all as fixed-width text fields) followed by the
// file's bytes, padded to a multiple of 512. Two zero blocks end the archive.
// Names longer than the 100-byte field are carried by an extra entry placed
// just before the real one: a GNU 'L' entry, or a POSIX pax 'x' entry.
import { gunzipSync } from 'node:zlib';
import { WorkshopError } from '../lib/kernel/errors.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char-device' | 'block-device' | 'fifo' | 'unsupported';

export interface TarEntry {
  /** The path as written in the archive, e.g. "./bin/sh" or "bin/sh". */
  path: string;
  type: EntryType;
  /** Permission bits, including setuid/setgid/sticky. */
  mode: number;
  /** For symlinks and hard links: what they point to. */
  linkTarget: string;
  /** The file's content (empty for everything but files). */
  data: Buffer;
}

const BLOCK = 512;

const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file', // very old archives
  '7': 'file', // "contiguous file": a plain file for us
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char-device',
  '4': 'block-device',
  '5': 'dir',
  '6': 'fifo',
};

/** Decompress if needed (gzip files start with the bytes 1f 8b), whatever the file is called. */
export function decompress(archive: Buffer): Buffer {
  return archive[0] === 0x1f && archive[1] === 0x8b ? gunzipSync(archive) : archive;
}

/** All entries of an uncompressed tar archive, in order. */
export function readTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  // Long names and pax records apply to the next real entry only.
  let longPath: string | undefined;
  let longLinkTarget: string | undefined;
  let pax: Map<string, string> = new Map();

  for (let offset = 0; offset + BLOCK <= archive.length; ) {
    const header = archive.subarray(offset, offset + BLOCK);
    if (header.every((byte) => byte === 0)) break; // end of archive
    checkChecksum(header, offset);

    const size = octal(header, 124, 12);
    const dataStart = offset + BLOCK;
    if (dataStart + size > archive.length) throw notTar(`the archive is truncated (entry at byte ${offset})`);
    const data = archive.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;

    const typeFlag = String.fromCharCode(header[156]!);
    if (typeFlag === 'L') longPath = text(data, 0, data.length);
    else if (typeFlag === 'K') longLinkTarget = text(data, 0, data.length);
    else if (typeFlag === 'x') pax = parsePax(data);
    else if (typeFlag === 'g') continue; // global pax records: nothing we use
    else {
      entries.push({
        path: pax.get('path') ?? longPath ?? ustarName(header),
        type: TYPES[typeFlag] ?? 'unsupported',
        mode: octal(header, 100, 8) & 0o7777,
        linkTarget: pax.get('linkpath') ?? longLinkTarget ?? text(header, 157, 100),
        data,
      });
      longPath = longLinkTarget = undefined;
      pax = new Map();
    }
  }
  return entries;
}

/** The name field, prefixed by the POSIX "prefix" field when the archive has one. */
function ustarName(header: Buffer): string {
  const name = text(header, 0, 100);
  // Only POSIX ustar ("ustar\0") has a prefix field; GNU tar ("ustar  ") stores other things there.
  const isPosix = header.toString('latin1', 257, 263) === 'ustar\0';
  const prefix = isPosix ? text(header, 345, 155) : '';
  return prefix ? `${prefix}/${name}` : name;
}

/** pax records look like "30 path=some/very/long/name\n" (the number counts the whole record in bytes). */
function parsePax(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  for (let start = 0; start < data.length; ) {
    const space = data.indexOf(0x20, start);
    const length = Number(data.toString('latin1', start, space));
    if (space < 0 || !(length > 0)) throw notTar('a pax header is malformed');
    const record = data.toString('utf8', space + 1, start + length - 1); // drop the final "\n"
    const equals = record.indexOf('=');
    records.set(record.slice(0, equals), record.slice(equals + 1));
    start += length;
  }
  return records;
}

/** The header checksum is the sum of its bytes, counting the checksum field itself as spaces. */
function checkChecksum(header: Buffer, offset: number): void {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  if (sum !== octal(header, 148, 8)) throw notTar(`bad header checksum at byte ${offset}`);
}

/** A NUL-terminated text field. */
function text(buffer: Buffer, start: number, length: number): string {
  const field = buffer.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.toString('utf8', 0, end < 0 ? field.length : end);
}

/** Numbers are written as octal text, e.g. "0000755\0". */
function octal(buffer: Buffer, start: number, length: number): number {
  const digits = text(buffer, start, length).trim();
  const value = parseInt(digits || '0', 8);
  if (!/^[0-7]*$/.test(digits) || Number.isNaN(value)) throw notTar(`unreadable number "${digits}" in a header`);
  return value;
}

function notTar(problem: string): WorkshopError {
  return new WorkshopError(
    `this is not a tar archive we can read: ${problem}`,
    'Pass a .tar or .tar.gz file, e.g. from `docker export CONTAINER > rootfs.tar` or an Alpine "minirootfs" download.',
  );
}
