// Opening an archive as a stream of tar bytes: gzip is undone on the way
// (Node's zlib, on a worker thread, while the main thread writes files),
// whatever the file is called. Nothing is read into memory whole.
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip, type ZlibOptions } from 'node:zlib';
import { EXIT, WorkshopError } from '../lib/kernel/errors.js';

export interface Archive {
  /** The tar bytes. */
  tar: Readable;
  /** What a read or gunzip error of `tar` means, as one paragraph. */
  explain(error: Error): WorkshopError;
}

/** Other compressions, recognised by their first bytes, and how to convert them. */
const UNSUPPORTED: { name: string; magic: number[]; convert: string }[] = [
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], convert: 'xz -dc FILE | gzip > FILE.tar.gz' },
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], convert: 'zstd -dc FILE | gzip > FILE.tar.gz' },
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68], convert: 'bzip2 -dc FILE | gzip > FILE.tar.gz' },
];

/** Open `file` (a .tar, or a gzip-compressed one) for reading. Usage errors (exit 2) for a path that cannot be one. */
export function openArchive(file: string): Archive {
  const stat = statSync(file, { throwIfNoEntry: false });
  if (!stat) throw new WorkshopError(`--from ${file}: there is no such file`, 'Check the path of the archive (e.g. --from alpine-minirootfs.tar.gz).', EXIT.usage);
  if (stat.isDirectory()) {
    throw new WorkshopError(`--from ${file} is a folder, not an archive`, 'To use a folder as it is, pass it to the runtime instead: npm run step N -- --rootfs DIR.', EXIT.usage);
  }
  if (!stat.isFile()) throw new WorkshopError(`--from ${file} is not a regular file`, 'Save the archive to a file first (e.g. docker export CONTAINER > rootfs.tar).', EXIT.usage);
  const start = firstBytes(file);
  if (start.length === 0) throw new WorkshopError(`--from ${file} is empty`, 'Download it again: a complete archive is several MB.', EXIT.usage);
  const other = UNSUPPORTED.find(({ magic }) => magic.every((byte, index) => start[index] === byte));
  if (other) {
    throw new WorkshopError(`--from ${file} is compressed with ${other.name}, which this importer does not read`, `Convert it to gzip first: ${other.convert.replaceAll('FILE', file)}`, EXIT.usage);
  }

  const input = createReadStream(file, { highWaterMark: 256 * 1024 });
  const cannotRead = (error: Error): WorkshopError => new WorkshopError(`cannot read ${file}: ${error.message}`, 'Check the file (permissions, a disk error?).');
  if (!(start[0] === 0x1f && start[1] === 0x8b)) {
    return { tar: input, explain: cannotRead };
  }
  // Up to 4 MiB decompressed ahead: zlib works on a thread of its own while this one writes files.
  const gunzip = createGunzip({ chunkSize: 128 * 1024, readableHighWaterMark: 4 * 1024 * 1024 } as ZlibOptions);
  input.on('error', (error) => gunzip.destroy(cannotRead(error)));
  input.pipe(gunzip);
  return {
    tar: gunzip,
    explain(error) {
      if (error instanceof WorkshopError) return error;
      const where = `at byte ${gunzip.bytesWritten} of ${stat.size}`;
      const problem = error.message === 'unexpected end of file' ? `it ends before the compressed data does (${where}): a truncated download?` : `the gzip data is corrupt ${where} (${error.message})`;
      return new WorkshopError(`${file} cannot be unpacked: ${problem}`, 'Nothing was kept. Download the archive again, or check it with `gzip -t`.');
    },
  };
}

function firstBytes(file: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    throw new WorkshopError(`--from ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 'Check its permissions (ls -l).', EXIT.usage);
  }
  try {
    const buffer = Buffer.alloc(8);
    return buffer.subarray(0, readSync(fd, buffer, 0, 8, 0));
  } finally {
    closeSync(fd);
  }
}
