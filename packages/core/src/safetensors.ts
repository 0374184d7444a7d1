/**
 * safetensors files, streamed: an 8-byte little-endian header length, a JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {…} }`, then the bytes.
 *
 * Writing never builds one giant buffer: each tensor hands over its bytes in chunks, written to
 * `<file>.tmp-<pid>` which is fsynced and renamed over the target (atomic). Reading validates the
 * whole layout first (header length, JSON, dtypes, shapes × dtype size = byte ranges, ranges
 * contiguous, file length exact) and refuses corrupt or truncated files with a CheckpointError;
 * tensors are then read one at a time, or in chunks for tables larger than memory.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { atomicWrite, writeAll } from './atomic';
import { CheckpointError } from './errors';

export type SafeDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U8' | 'F64';
export const DTYPE_BYTES: Record<SafeDtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, U8: 1, F64: 8 };

export interface TensorEntry {
  name: string;
  dtype: SafeDtype;
  shape: number[];
  /** the bytes, whole or as chunks (in order); total length must be prod(shape)·dtype size */
  data: Uint8Array | ArrayBufferView | (() => Iterable<Uint8Array>);
}

export interface TensorInfo {
  dtype: SafeDtype;
  shape: number[];
  /** absolute byte offset of the tensor's data in the file */
  offset: number;
  byteLength: number;
}

const MAX_HEADER = 100 * 2 ** 20; // 100 MiB, as the format's reference readers allow

function byteLength(dtype: SafeDtype, shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
}

function asBytes(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Write tensors to `file` atomically; returns the file's size in bytes. */
export function writeSafetensors(file: string, tensors: TensorEntry[], metadata: Record<string, string> = {}): number {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name) || t.name === '__metadata__') throw new CheckpointError(file, `duplicate or reserved tensor name '${t.name}'`);
    seen.add(t.name);
    const n = byteLength(t.dtype, t.shape);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // align the data to 8 bytes
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));

  atomicWrite(file, (fd) => {
    writeAll(fd, prefix);
    writeAll(fd, headerBytes);
    for (const t of tensors) {
      const want = byteLength(t.dtype, t.shape);
      let got = 0;
      const chunks = typeof t.data === 'function' ? t.data() : [asBytes(t.data)];
      for (const c of chunks) {
        writeAll(fd, c);
        got += c.byteLength;
      }
      if (got !== want) {
        throw new CheckpointError(file, `tensor '${t.name}' [${t.shape}] ${t.dtype} needs ${want} bytes, got ${got}`);
      }
    }
  });
  return 8 + headerBytes.length + off;
}

/** An open, validated safetensors file. Close it when done. */
export class SafetensorsReader {
  readonly tensors: Map<string, TensorInfo>;
  readonly metadata: Record<string, string>;
  /** bytes before the tensor data (8 + JSON header) */
  readonly headerLength: number;
  readonly fileSize: number;
  private fd: number | undefined;

  constructor(readonly file: string) {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (e) {
      throw new CheckpointError(file, `cannot open: ${(e as Error).message}`);
    }
    this.fd = fd;
    try {
      const size = fstatSync(fd).size;
      this.fileSize = size;
      if (size < 8) throw new CheckpointError(file, `truncated: ${size} bytes, not even a header length`);
      const pre = Buffer.alloc(8);
      readSync(fd, pre, 0, 8, 0);
      const hlen = Number(pre.readBigUInt64LE());
      if (hlen > MAX_HEADER || 8 + hlen > size) {
        throw new CheckpointError(file, `corrupt or truncated: header length ${hlen} with file size ${size}`);
      }
      const hbuf = Buffer.alloc(hlen);
      readSync(fd, hbuf, 0, hlen, 8);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(hbuf.toString('utf8'));
      } catch (e) {
        throw new CheckpointError(file, `corrupt header (not JSON): ${(e as Error).message}`);
      }
      if (!header || typeof header !== 'object' || Array.isArray(header)) {
        throw new CheckpointError(file, 'corrupt header: not a JSON object');
      }
      this.metadata = (header.__metadata__ as Record<string, string>) ?? {};
      const base = 8 + hlen;
      this.headerLength = base;
      const list: Array<[string, TensorInfo, number, number]> = [];
      for (const [name, v] of Object.entries(header)) {
        if (name === '__metadata__') continue;
        const e = v as { dtype?: string; shape?: unknown; data_offsets?: unknown };
        if (!e || !(e.dtype! in DTYPE_BYTES)) throw new CheckpointError(file, `tensor '${name}': unknown dtype ${e?.dtype}`);
        const shape = e.shape;
        const offs = e.data_offsets;
        if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
          throw new CheckpointError(file, `tensor '${name}': bad shape ${JSON.stringify(shape)}`);
        }
        if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isInteger(d) && d >= 0) || offs[1] < offs[0]) {
          throw new CheckpointError(file, `tensor '${name}': bad data_offsets ${JSON.stringify(offs)}`);
        }
        const dtype = e.dtype as SafeDtype;
        const n = byteLength(dtype, shape);
        if (offs[1] - offs[0] !== n) {
          throw new CheckpointError(file, `tensor '${name}': [${shape}] ${dtype} needs ${n} bytes, offsets span ${offs[1] - offs[0]}`);
        }
        list.push([name, { dtype, shape, offset: base + offs[0], byteLength: n }, offs[0], offs[1]]);
      }
      list.sort((a, b) => a[2] - b[2]);
      let expect = 0;
      for (const [name, , begin, end] of list) {
        if (begin !== expect)
          throw new CheckpointError(file, `tensor '${name}': data starts at ${begin}, expected ${expect} (gap or overlap)`);
        expect = end;
      }
      if (base + expect !== size) {
        throw new CheckpointError(
          file,
          base + expect > size
            ? `truncated: data needs ${base + expect} bytes, file has ${size}`
            : `corrupt: ${size - base - expect} trailing bytes after the last tensor`,
        );
      }
      this.tensors = new Map(list.map(([name, info]) => [name, info]));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new CheckpointError(this.file, `no tensor '${name}' (has: ${[...this.tensors.keys()].join(', ')})`);
    return t;
  }

  /** The tensor's bytes, copied into a fresh buffer (fine for anything that fits in memory). */
  readBytes(name: string): Uint8Array {
    const t = this.info(name);
    const out = new Uint8Array(t.byteLength);
    this.readInto(name, out, 0);
    return out;
  }

  /** Read `dst.byteLength` bytes of tensor `name` starting at `byteOffset` within the tensor. */
  readInto(name: string, dst: Uint8Array, byteOffset: number): void {
    const t = this.info(name);
    if (this.fd === undefined) throw new CheckpointError(this.file, 'reader is closed');
    if (byteOffset < 0 || byteOffset + dst.byteLength > t.byteLength) {
      throw new CheckpointError(this.file, `read of ${dst.byteLength} bytes at ${byteOffset} is outside tensor '${name}'`);
    }
    let done = 0;
    while (done < dst.byteLength) {
      const r = readSync(this.fd, dst, done, dst.byteLength - done, t.offset + byteOffset + done);
      if (r === 0) throw new CheckpointError(this.file, `truncated while reading '${name}'`);
      done += r;
    }
  }

  readF32(name: string): Float32Array {
    const t = this.info(name);
    if (t.dtype !== 'F32') throw new CheckpointError(this.file, `tensor '${name}' is ${t.dtype}, expected F32`);
    const b = this.readBytes(name);
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
