/**
 * The bank's meta record (docs/design.md §4.4): what a bank was created with (format version,
 * shape, embedDim, codec and its quantiser) and the checks on reopening. Another shape or
 * embedDim is refused with a ConfigError naming the field; a new bank writes its meta in one
 * transaction before any record.
 */
import path from 'node:path';
import { ConfigError } from '@mnemo/core';
import type { Database, RootDatabase } from 'lmdb';
import { type CodecKind, type CodecSpec, type KvCodec, type KvQuantizer, makeCodec } from './codec';
import { deserializeQuantizer, serializeQuantizer } from './pq';
import { RECORD_VERSION } from './store-record';
import type { MemoryShape } from './types';

/** the bank's on-disk layout version (meta 'format') */
export const BANK_FORMAT = 1;

export interface FormatRecord {
  version: number;
  recordVersion: number;
  shape: MemoryShape;
  embedDim: number;
  codec: CodecKind;
}
export interface IndexMeta {
  crc: number;
  bytes: number;
  vectors: number;
}

/** The codec of the bank in `dir`: created from `spec` for a new bank, checked against `spec` for an existing one. */
export async function resolveCodec(
  dir: string,
  env: RootDatabase,
  meta: Database<unknown, string>,
  shape: MemoryShape,
  embedDim: number,
  spec: CodecSpec | undefined,
): Promise<KvCodec> {
  const file = path.join(dir, 'data.mdb');
  const stored = meta.get('format') as FormatRecord | undefined;
  const askedKind: CodecKind | undefined = spec === undefined ? undefined : typeof spec === 'string' ? spec : spec.kind;
  const askedQuantizer = typeof spec === 'object' ? spec.quantizer : null;
  if (askedKind !== undefined && !['f32', 'f16', 'bf16', 'pq'].includes(askedKind))
    throw new ConfigError('codec', `unknown codec '${askedKind}'; choose f32, f16, bf16 or pq`);
  if (!stored) {
    const kind = askedKind ?? 'bf16';
    const codec = makeCodec(kind, askedQuantizer); // refuses pq without a quantiser
    const format: FormatRecord = { version: BANK_FORMAT, recordVersion: RECORD_VERSION, shape: { ...shape }, embedDim, codec: kind };
    await env.transaction(() => {
      meta.put('format', format);
      meta.put('nextId', 1);
      if (askedQuantizer) {
        meta.put('quantizer.keys', Buffer.from(serializeQuantizer(askedQuantizer.keys)));
        meta.put('quantizer.values', Buffer.from(serializeQuantizer(askedQuantizer.values)));
      }
    });
    return codec;
  }
  if (stored.version !== BANK_FORMAT)
    throw new ConfigError('format', `${file}: bank format ${stored.version}; this build reads ${BANK_FORMAT}`);
  for (const k of ['layers', 'kvHeads', 'tokens', 'headDim'] as const)
    if (stored.shape[k] !== shape[k])
      throw new ConfigError(
        `shape.${k}`,
        `the bank in ${path.dirname(file)} holds memories with ${k} ${stored.shape[k]}, not ${shape[k]}; open it with its shape or use another dir`,
      );
  if (stored.embedDim !== embedDim)
    throw new ConfigError('embedDim', `the bank in ${path.dirname(file)} indexes ${stored.embedDim}-dim embeddings, not ${embedDim}`);
  if (askedKind !== undefined && askedKind !== stored.codec)
    throw new ConfigError(
      'codec',
      `the bank in ${path.dirname(file)} was written with codec '${stored.codec}', not '${askedKind}'; omit codec to use it`,
    );
  let quantizer: KvQuantizer | null = null;
  if (stored.codec === 'pq') {
    const kb = meta.get('quantizer.keys') as Uint8Array | undefined;
    const vb = meta.get('quantizer.values') as Uint8Array | undefined;
    if (!kb || !vb) throw new ConfigError('codec', `${file}: a pq bank without its quantiser in meta; the file is damaged`);
    quantizer = {
      keys: deserializeQuantizer(kb, `${file}:meta.quantizer.keys`),
      values: deserializeQuantizer(vb, `${file}:meta.quantizer.values`),
    };
    if (
      askedQuantizer &&
      (!Buffer.from(serializeQuantizer(askedQuantizer.keys)).equals(Buffer.from(kb)) ||
        !Buffer.from(serializeQuantizer(askedQuantizer.values)).equals(Buffer.from(vb)))
    )
      throw new ConfigError(
        'codec.quantizer',
        "differs from the quantiser this bank was written with; open with codec 'pq' to use the stored one",
      );
  }
  return makeCodec(stored.codec, quantizer);
}
