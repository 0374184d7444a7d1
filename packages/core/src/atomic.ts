/**
 * Atomic file writes: every file a Mnemo package writes goes through `<file>.tmp-<pid>`, which is
 * filled, fsynced and renamed over `file`. A reader (or a crash) sees the old file or the new
 * one, never half of one; on any error the temp file is removed and the old file stays.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

/** The temp path a write to `file` goes through. */
export function tempPath(file: string): string {
  return `${file}.tmp-${process.pid}`;
}

/**
 * Write `file` atomically: `fill(fd)` writes the content to the temp file, which is then fsynced
 * (unless `fsync: false`, e.g. for a sparse file of zeros) and renamed over `file`.
 */
export function atomicWrite(file: string, fill: (fd: number) => void, opts: { fsync?: boolean } = {}): void {
  const tmp = tempPath(file);
  const fd = openSync(tmp, 'w');
  try {
    fill(fd);
    if (opts.fsync ?? true) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Write all of `bytes` at the file position (writeSync may write less than asked). */
export function writeAll(fd: number, bytes: ArrayBufferView): void {
  const u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let w = 0;
  while (w < u8.length) w += writeSync(fd, u8, w, u8.length - w);
}

/** Write a text or byte file atomically (fsynced). */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  atomicWrite(file, (fd) => writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data));
}
