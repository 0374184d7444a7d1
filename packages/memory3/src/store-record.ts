/**
 * One stored memory as bytes (docs/design.md §4.4): a checksummed header, then the payload.
 *
 *   offset  field
 *        0  u32 magic 'M3R1'
 *        4  u32 crc32 of bytes [8, end)
 *        8  u16 format version · u8 codec id · u8 positions dtype (1 uint8, 2 int16)
 *       12  u16 ×4 shape: L_mem, H_kv, T, d_h
 *       20  u32 embedDim · u32 tokens · u32 text bytes
 *       32  f64 createdAt (ms)
 *       40  u32 kv bytes · u32 id (a record under the wrong key is refused)
 *       48  text utf-8, zero-padded to 4 · embedding f32 [embedDim] · kv (codec) · positions
 *
 * Every read checks the magic, the crc, the shape and the lengths; a bad record throws
 * CorruptMemoryError naming the id and the file, never returns garbage.
 */
import { crc32 } from 'node:zlib';
import { CheckpointError, ValueError } from '@mnemo/core';
import { CODEC_IDS, type KvCodec } from './codec';
import type { MemoryEntry, MemoryInfo, MemoryShape, StoredMemory } from './types';

export const RECORD_VERSION = 1;
const MAGIC = 0x3152334d; // 'M3R1'
const HEADER = 48;

/** A stored memory failed its checks: the file holding it, and its id. */
export class CorruptMemoryError extends CheckpointError {
  constructor(
    file: string,
    readonly id: number,
    message: string,
  ) {
    super(file, `memory ${id}: ${message}; delete it (bank.delete(${id})) and add its reference again`);
  }
}

export interface RecordContext {
  /** the file the record lives in, for error messages */
  file: string;
  shape: MemoryShape;
  embedDim: number;
  codec: KvCodec;
}

const pad4 = (n: number) => (n + 3) & ~3;

export function encodeRecord(id: number, entry: MemoryEntry, createdAt: number, ctx: RecordContext): Uint8Array {
  const text = Buffer.from(entry.text, 'utf8');
  const kv = ctx.codec.encode(entry.memory.kv, ctx.shape);
  const pos = entry.memory.positions;
  let wide = false;
  for (let i = 0; i < pos.length; i++) {
    const p = pos[i]!;
    if (!Number.isInteger(p) || p < 0 || p > 32767) throw new ValueError('memory.positions', `element ${i} is ${p}; expected 0..32767`);
    if (p > 255) wide = true;
  }
  const textEnd = HEADER + pad4(text.length);
  const embEnd = textEnd + 4 * ctx.embedDim;
  const kvEnd = embEnd + kv.length;
  const out = new Uint8Array(kvEnd + pos.length * (wide ? 2 : 1));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint16(8, RECORD_VERSION, true);
  dv.setUint8(10, CODEC_IDS[ctx.codec.kind]);
  dv.setUint8(11, wide ? 2 : 1);
  const s = ctx.shape;
  [s.layers, s.kvHeads, s.tokens, s.headDim].forEach((v, i) => dv.setUint16(12 + 2 * i, v, true));
  dv.setUint32(20, ctx.embedDim, true);
  dv.setUint32(24, entry.tokens, true);
  dv.setUint32(28, text.length, true);
  dv.setFloat64(32, createdAt, true);
  dv.setUint32(40, kv.length, true);
  dv.setUint32(44, id, true);
  out.set(text, HEADER);
  out.set(new Uint8Array(entry.embedding.buffer, entry.embedding.byteOffset, entry.embedding.byteLength), textEnd);
  out.set(kv, embEnd);
  for (let i = 0; i < pos.length; i++) {
    if (wide) dv.setInt16(kvEnd + 2 * i, pos[i]!, true);
    else out[kvEnd + i] = pos[i]!;
  }
  dv.setUint32(4, crc32(out.subarray(8)), true);
  return out;
}

interface Layout {
  dv: DataView;
  textEnd: number;
  embEnd: number;
  kvEnd: number;
  wide: boolean;
}

/** Check magic, crc, version, shape, codec and lengths; the layout of a sound record. */
function check(buf: Uint8Array, id: number, ctx: RecordContext): Layout {
  const bad = (msg: string) => new CorruptMemoryError(ctx.file, id, msg);
  if (buf.length < HEADER) throw bad(`record is ${buf.length} bytes, shorter than its ${HEADER}-byte header`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) throw bad('bad magic (not a memory record)');
  const crc = crc32(buf.subarray(8));
  if (dv.getUint32(4, true) !== crc) throw bad(`checksum mismatch (stored ${dv.getUint32(4, true)}, computed ${crc})`);
  const version = dv.getUint16(8, true);
  if (version !== RECORD_VERSION) throw bad(`record format version ${version}; this build reads ${RECORD_VERSION}`);
  if (dv.getUint8(10) !== CODEC_IDS[ctx.codec.kind]) throw bad(`codec id ${dv.getUint8(10)}, the bank's is ${CODEC_IDS[ctx.codec.kind]}`);
  const s = ctx.shape;
  const shape = [0, 1, 2, 3].map((i) => dv.getUint16(12 + 2 * i, true));
  if (shape.join() !== [s.layers, s.kvHeads, s.tokens, s.headDim].join()) throw bad(`shape [${shape}] differs from the bank's`);
  if (dv.getUint32(20, true) !== ctx.embedDim) throw bad(`embedDim ${dv.getUint32(20, true)} differs from the bank's ${ctx.embedDim}`);
  if (dv.getUint32(44, true) !== id) throw bad(`record says it is memory ${dv.getUint32(44, true)}`);
  const posType = dv.getUint8(11);
  if (posType !== 1 && posType !== 2) throw bad(`positions dtype ${posType}`);
  const kvBytes = dv.getUint32(40, true);
  if (kvBytes !== ctx.codec.bytes(s)) throw bad(`kv is ${kvBytes} bytes, the codec writes ${ctx.codec.bytes(s)}`);
  const textEnd = HEADER + pad4(dv.getUint32(28, true));
  const embEnd = textEnd + 4 * ctx.embedDim;
  const kvEnd = embEnd + kvBytes;
  const wide = posType === 2;
  const total = kvEnd + s.layers * s.kvHeads * s.tokens * (wide ? 2 : 1);
  if (buf.length !== total) throw bad(`record is ${buf.length} bytes, its header says ${total}`);
  return { dv, textEnd, embEnd, kvEnd, wide };
}

export function decodeRecord(buf: Uint8Array, id: number, ctx: RecordContext): StoredMemory {
  const { dv, textEnd, embEnd, kvEnd, wide } = check(buf, id, ctx);
  const s = ctx.shape;
  const kv = ctx.codec.decode(buf.subarray(embEnd, kvEnd), s);
  const positions = new Int32Array(s.layers * s.kvHeads * s.tokens);
  for (let i = 0; i < positions.length; i++) positions[i] = wide ? dv.getInt16(kvEnd + 2 * i, true) : buf[kvEnd + i]!;
  return {
    id,
    text: textOf(buf, dv),
    tokens: dv.getUint32(24, true),
    createdAt: dv.getFloat64(32, true),
    embedding: new Float32Array(new Uint8Array(buf.subarray(textEnd, embEnd)).buffer),
    memory: { shape: { ...s }, kv, positions },
  };
}

/** the listing view: no tensors decoded (the crc is still checked) */
export function recordInfo(buf: Uint8Array, id: number, ctx: RecordContext): MemoryInfo {
  const { dv } = check(buf, id, ctx);
  return { id, text: textOf(buf, dv), tokens: dv.getUint32(24, true), createdAt: dv.getFloat64(32, true), bytes: dv.getUint32(40, true) };
}

/** the embedding alone (index rebuild) */
export function recordEmbedding(buf: Uint8Array, id: number, ctx: RecordContext): Float32Array {
  const { textEnd, embEnd } = check(buf, id, ctx);
  return new Float32Array(new Uint8Array(buf.subarray(textEnd, embEnd)).buffer);
}

function textOf(buf: Uint8Array, dv: DataView): string {
  return Buffer.from(buf.buffer, buf.byteOffset + HEADER, dv.getUint32(28, true)).toString('utf8');
}

/** Set the id of a record encoded earlier (with any id) and refresh its crc: ids are assigned inside the write transaction. */
export function stampRecordId(buf: Uint8Array, id: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  dv.setUint32(44, id, true);
  dv.setUint32(4, crc32(buf.subarray(8)), true);
}
