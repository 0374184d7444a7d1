/**
 * The value-store file: a safetensors file (8-byte little-endian header length, a JSON header,
 * then the tensor bytes back to back), so any safetensors reader can open the table.
 *
 *   __metadata__: { format: "mnemo-value-store", version: "1", rows, dim, dtype,
 *                   optimizer: JSON of the optimizer config, checksums: JSON {tensor: hex},
 *                   steps, rowUpdates }                          (safetensors metadata are strings)
 *   tensors (in file order; state-layout.ts is the one table of them, per optimizer):
 *                   optimizer state first — adagrad_accum F32 [N, dv] |
 *                   adam_moments F32 [N, 2, dv] (m, v per row), adam_step I32 [N] |
 *                   row-wise Adam: adam_m F32|BF16 [N, dv], adam_row_v F32 [N], adam_step I32 [N], then
 *                   _skew U8 [2112] (zeros: keeps memory-mapped state rows off the table rows'
 *                   4 KiB alignment) — then values F32 | BF16 | F16 [N, dv] last, so every
 *                   tensor starts 4-byte aligned.
 * The header is padded with spaces so the data starts at a multiple of 64 bytes. Checksum: a
 * 32-bit multiplicative word hash per tensor (fnv1a over 32-bit little-endian words; see
 * `hashBytes`). Writes are atomic: a temp file in the same folder, fsync, rename. Reading checks the
 * layout with the package's generic `SafetensorsReader`, then the store's own metadata.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CheckpointError, DTYPE_BYTES, type SafeDtype, SafetensorsReader, ValueError, atomicWrite, writeAll } from '@mnemo/core';

export const STORE_FORMAT = 'mnemo-value-store';
export const STORE_VERSION = '1';

export type StDtype = Extract<SafeDtype, 'F32' | 'BF16' | 'F16' | 'I32' | 'U8'>;
export const ST_BYTES: Record<StDtype, number> = {
  F32: DTYPE_BYTES.F32,
  BF16: DTYPE_BYTES.BF16,
  F16: DTYPE_BYTES.F16,
  I32: DTYPE_BYTES.I32,
  U8: DTYPE_BYTES.U8,
};

export interface TensorEntry {
  name: string;
  dtype: StDtype;
  shape: number[];
  bytes: Uint8Array;
}

export interface TensorInfo {
  dtype: StDtype;
  shape: number[];
  /** absolute file offset of the first byte */
  offset: number;
  length: number;
}

export interface ParsedStoreFile {
  /** bytes before the tensor data (8 + JSON) */
  headerLength: number;
  metadata: Record<string, string>;
  tensors: Record<string, TensorInfo>;
  fileSize: number;
}

/** fnv1a over 32-bit little-endian words (a trailing partial word is zero-padded). */
export function hashBytes(bytes: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  const nWords = bytes.length >>> 2;
  if (bytes.byteOffset % 4 === 0) {
    const w = new Uint32Array(bytes.buffer, bytes.byteOffset, nWords);
    for (let i = 0; i < nWords; i++) h = Math.imul(h ^ w[i]!, 0x01000193);
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    for (let i = 0; i < nWords; i++) h = Math.imul(h ^ dv.getUint32(4 * i, true), 0x01000193);
  }
  const tail = bytes.length & 3;
  if (tail) {
    let t = 0;
    for (let i = 0; i < tail; i++) t |= bytes[4 * nWords + i]! << (8 * i);
    h = Math.imul(h ^ t, 0x01000193);
  }
  return h >>> 0;
}

const hex = (h: number): string => h.toString(16).padStart(8, '0');

/** What the header records of a tensor (its bytes may live elsewhere). */
export interface TensorSpec {
  name: string;
  dtype: StDtype;
  shape: number[];
  length: number; // bytes
}

/**
 * The 8-byte length + JSON header, padded with spaces so the data starts 64-byte aligned and the
 * header is at least `minLength` bytes (room to rewrite it in place later).
 */
export function headerBytes(
  metadata: Record<string, string>,
  specs: TensorSpec[],
  checksums: Record<string, string>,
  minLength = 0,
): Buffer {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const t of specs) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.length] };
    off += t.length;
  }
  header.__metadata__ = { ...metadata, format: STORE_FORMAT, version: STORE_VERSION, checksums: JSON.stringify(checksums) };
  let json = JSON.stringify(header);
  let total = 8 + Buffer.byteLength(json);
  total = Math.max(total + ((64 - (total % 64)) % 64), minLength);
  json += ' '.repeat(total - 8 - Buffer.byteLength(json));
  const head = Buffer.alloc(total);
  head.writeBigUInt64LE(BigInt(total - 8), 0);
  head.write(json, 8, 'utf8');
  return head;
}

/** Write the tensors atomically; `hash` computes each tensor's checksum. */
export function writeStoreFile(
  file: string,
  metadata: Record<string, string>,
  tensors: TensorEntry[],
  hash: (b: Uint8Array) => number = hashBytes,
): void {
  const checksums: Record<string, string> = {};
  for (const t of tensors) checksums[t.name] = hex(hash(t.bytes));
  const specs = tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, length: t.bytes.length }));
  const head = headerBytes(metadata, specs, checksums);
  atomicWrite(file, (fd) => {
    writeAll(fd, head);
    const CHUNK = 64 << 20;
    for (const t of tensors) {
      for (let o = 0; o < t.bytes.length; o += CHUNK) writeAll(fd, t.bytes.subarray(o, Math.min(o + CHUNK, t.bytes.length)));
    }
  });
}

/**
 * A new store file whose tensors are zero (a sparse file: no disk or memory is used until written),
 * with a header padded to `reserve` bytes so `rewriteHeader` can later record checksums in place.
 * Returns the header length.
 */
export function createStoreFile(file: string, metadata: Record<string, string>, specs: TensorSpec[], reserve = 4096): number {
  const zeros: Record<string, string> = {};
  for (const t of specs) zeros[t.name] = '00000000';
  const head = headerBytes(metadata, specs, zeros, reserve);
  atomicWrite(
    file,
    (fd) => {
      writeAll(fd, head);
      fs.ftruncateSync(fd, head.length + specs.reduce((a, t) => a + t.length, 0));
    },
    { fsync: false }, // a sparse file of zeros: nothing worth syncing yet
  );
  return head.length;
}

/** Rewrite a store file's header in place (same length): new metadata and checksums. */
export function rewriteHeader(
  file: string,
  headerLength: number,
  metadata: Record<string, string>,
  specs: TensorSpec[],
  tensorBytes: Uint8Array[],
  hash: (b: Uint8Array) => number,
): void {
  const checksums: Record<string, string> = {};
  specs.forEach((t, i) => {
    checksums[t.name] = hex(hash(tensorBytes[i]!));
  });
  const head = headerBytes(metadata, specs, checksums, headerLength);
  if (head.length !== headerLength) {
    throw new ValueError(
      'file',
      `${file}: the new header needs ${head.length} bytes, the file reserved ${headerLength}; save() to a new file instead`,
    );
  }
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, head, 0, head.length, 0);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function corrupt(file: string, why: string): ValueError {
  return new ValueError('file', `${file} is not a valid Mnemo value-store file: ${why}; re-save it with store.save()`);
}

/** Read and check the header; refuses truncated files and foreign formats. */
export function parseStoreFile(file: string): ParsedStoreFile {
  let reader: SafetensorsReader;
  try {
    reader = new SafetensorsReader(file); // the safetensors layout: header, dtypes, shapes, offsets, size
  } catch (e) {
    if (e instanceof CheckpointError) throw corrupt(file, e.message.slice(file.length + 2));
    throw e;
  }
  try {
    const metadata = reader.metadata;
    if (!metadata || metadata.format !== STORE_FORMAT) throw corrupt(file, `metadata.format is not '${STORE_FORMAT}'`);
    if (metadata.version !== STORE_VERSION) {
      throw corrupt(file, `version ${metadata.version} is not supported (this build reads version ${STORE_VERSION})`);
    }
    const tensors: Record<string, TensorInfo> = {};
    for (const [name, t] of reader.tensors) {
      if (!(t.dtype in ST_BYTES)) throw corrupt(file, `tensor '${name}' has dtype ${t.dtype}, not one a value store uses`);
      tensors[name] = { dtype: t.dtype as StDtype, shape: t.shape, offset: t.offset, length: t.byteLength };
    }
    return { headerLength: reader.headerLength, metadata, tensors, fileSize: reader.fileSize };
  } finally {
    reader.close();
  }
}

/** Read `length` bytes at `offset` into `dst`. */
export function readInto(file: string, offset: number, dst: Uint8Array): void {
  const fd = fs.openSync(file, 'r');
  try {
    const CHUNK = 64 << 20;
    for (let o = 0; o < dst.length; ) {
      const n = fs.readSync(fd, dst, o, Math.min(CHUNK, dst.length - o), offset + o);
      if (n <= 0) throw new ValueError('file', `${file}: unexpected end of file (truncated)`);
      o += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function checkTensorHash(
  file: string,
  name: string,
  bytes: Uint8Array,
  want: string | undefined,
  hash: (b: Uint8Array) => number,
): void {
  if (want === undefined) throw corrupt(file, `no checksum for tensor '${name}'`);
  const got = hex(hash(bytes));
  if (got !== want) throw corrupt(file, `checksum of '${name}' is ${got}, the header says ${want} (the file is corrupt)`);
}
