import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** A failed read: why, in words, and the errno code when the system gave one (`ENOENT`, `EACCES`, ...). */
export interface BoundedReadFailure {
  ok: false;
  reason: string;
  code?: string;
}

export type BoundedRead = { ok: true; text: string } | BoundedReadFailure;
export type BoundedBytes = { ok: true; bytes: Buffer } | BoundedReadFailure;

function describeKind(stats: ReturnType<typeof fstatSync>): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

/**
 * Reads a UTF-8 text file of at most `maxBytes`, refusing anything that is
 * not a regular file (see `readBoundedBytes`).
 */
export function readBoundedFile(file: string, maxBytes: number): BoundedRead {
  const read = readBoundedBytes(file, maxBytes);
  return read.ok ? { ok: true, text: read.bytes.toString('utf8') } : read;
}

/**
 * Reads a file of at most `maxBytes`, refusing anything that is not a regular
 * file. The file is opened non-blocking (a FIFO with no writer would otherwise
 * block the open) and checked with fstat on the open descriptor, so what is
 * read is what was checked; at most `maxBytes + 1` bytes are read, so a file
 * that grows after the check is still refused.
 */
export function readBoundedBytes(file: string, maxBytes: number): BoundedBytes {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, reason: code === 'ENOENT' ? 'no such file' : code, code };
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) return { ok: false, reason: `${describeKind(stats)}, expected a regular file` };
    const limit = `the limit is ${formatBytes(maxBytes)}`;
    if (stats.size > maxBytes) return { ok: false, reason: `${formatBytes(stats.size)} is too large (${limit})` };
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
    }
    if (length > maxBytes) return { ok: false, reason: `the file grew past the limit while read (${limit})` };
    return { ok: true, bytes: buffer.subarray(0, length) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, reason: code, code };
  } finally {
    closeSync(fd);
  }
}
