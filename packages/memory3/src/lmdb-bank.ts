/**
 * The on-disk MemoryBank (docs/design.md §4.4–4.5): records in an lmdb environment, an HNSW index
 * (usearch) over their embeddings, an LRU cache of decoded memories.
 *
 *   dir/data.mdb, lock.mdb   lmdb: db 'records' (uint32 id → record bytes, store-record.ts),
 *                            db 'meta' (format: shape, embedDim, codec; quantiser; nextId; index crc)
 *   dir/index.usearch        the index; derived data, rebuilt from the records when in doubt
 *
 * Durability: every add/delete is one lmdb write transaction, committed with a synchronous flush
 * (overlappingSync off, no noSync/mapAsync/writemap), so a resolved promise means the write is on
 * disk. lmdb's copy-on-write B-tree never exposes a torn transaction, so a crash at any point
 * reopens to the last committed one. Ids come from a counter written in the same transaction as
 * the records: monotonically increasing, never reused.
 *
 * Reads are synchronous (lmdb reads are memory-mapped): `get` and `search` run inside generation.
 * One process at a time opens a bank for writing.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { DisposedError, ValueError, parseConfig } from '@mnemo/core';
import { type Database, type RootDatabase, open } from 'lmdb';
import { z } from 'zod';
import { type AnnOptions, AnnIndex } from './ann-index';
import type { CodecSpec, KvCodec } from './codec';
import { checkEntry } from './in-memory-bank';
import { LruCache } from './store-cache';
import { type IndexMeta, resolveCodec } from './store-meta';
import { type RecordContext, decodeRecord, encodeRecord, recordEmbedding, recordInfo, stampRecordId } from './store-record';
import type { MemoryBank, MemoryEntry, MemoryHit, MemoryInfo, MemoryShape, StoredMemory } from './types';

export interface MemoryBankOptions {
  shape: MemoryShape;
  embedDim: number;
  /** a new bank's codec (default 'bf16'); an existing bank keeps its own, and a different one is refused */
  codec?: CodecSpec;
  /** decoded memories kept in RAM (default 256) */
  cacheSize?: number;
  /** save the index after this many writes since the last save (default 1000); always on close */
  indexSaveEvery?: number;
  index?: AnnOptions;
  /** index recovery, corrupt records met while rebuilding, index saves */
  onEvent?: (e: BankEvent) => void;
}

export type BankEvent =
  | {
      kind: 'index-rebuilt';
      /** missing: no index file; corrupt: crc or usearch load failed; stale: the file lacks writes or holds deleted ids */
      reason: 'missing' | 'corrupt' | 'stale';
      /** 'full': built from every record; 'caught-up': the saved index plus the records added after it */
      mode: 'full' | 'caught-up';
      /** vectors added to the index */
      added: number;
      ms: number;
    }
  | { kind: 'record-skipped'; id: number; error: Error }
  | { kind: 'index-saved'; vectors: number; bytes: number }
  | { kind: 'index-save-failed'; error: Error };

/** what `openMemoryBank` found about the index (null: loaded as saved) */
export type IndexRecovery = Extract<BankEvent, { kind: 'index-rebuilt' }> | null;

const shapeSchema = z.object({
  layers: z.number().int().positive(),
  kvHeads: z.number().int().positive(),
  tokens: z.number().int().positive(),
  headDim: z.number().int().positive(),
});
const optionsSchema = z.object({
  shape: shapeSchema,
  embedDim: z.number().int().positive(),
  cacheSize: z.number().int().nonnegative().default(256),
  indexSaveEvery: z.number().int().positive().default(1000),
});

const INDEX_FILE = 'index.usearch';

/**
 * Open (or create) the on-disk bank in `dir`. A new bank records shape, embedDim and codec (with
 * its quantiser); reopening with a different shape or embedDim refuses with a ConfigError naming
 * the field. The index is loaded, or rebuilt from the records when missing, corrupt or stale
 * (`bank.indexRecovery`, `onEvent`).
 */
export async function openMemoryBank(dir: string, options: MemoryBankOptions): Promise<LmdbMemoryBank> {
  const o = parseConfig(optionsSchema, { ...options, codec: undefined, index: undefined, onEvent: undefined }, '');
  const env = open({ path: dir, maxDbs: 4, overlappingSync: false, noSync: false, compression: false });
  try {
    const meta = env.openDB<unknown, string>({ name: 'meta', encoding: 'msgpack' });
    const records = env.openDB<Buffer, number>({ name: 'records', keyEncoding: 'uint32', encoding: 'binary' });
    const codec = await resolveCodec(dir, env, meta, o.shape, o.embedDim, options.codec);
    const bank = new LmdbMemoryBank(dir, env, meta, records, codec, o.shape, o.embedDim, o.cacheSize, o.indexSaveEvery, options);
    if (bank.recoverIndex()) await bank.saveIndex(); // a crash right after must not redo the rebuild
    return bank;
  } catch (e) {
    await env.close();
    throw e;
  }
}

export class LmdbMemoryBank implements MemoryBank {
  /** what opening found about the index: null when it loaded as saved */
  indexRecovery: IndexRecovery = null;
  readonly cache: LruCache<number, StoredMemory>;
  private readonly index: AnnIndex;
  private readonly ctx: RecordContext;
  private readonly indexFile: string;
  private count: number;
  private closed = false;
  private closing = false;
  private writesSinceSave = 0;
  /** ids whose delete is in flight: search hides them at once */
  private readonly deleting = new Set<number>();
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    readonly dir: string,
    private readonly env: RootDatabase,
    private readonly meta: Database<unknown, string>,
    private readonly records: Database<Buffer, number>,
    readonly codec: KvCodec,
    readonly shape: MemoryShape,
    readonly embedDim: number,
    cacheSize: number,
    private readonly indexSaveEvery: number,
    private readonly options: MemoryBankOptions,
  ) {
    this.cache = new LruCache(cacheSize);
    this.index = new AnnIndex(embedDim, options.index);
    this.ctx = { file: path.join(dir, 'data.mdb'), shape, embedDim, codec };
    this.indexFile = path.join(dir, INDEX_FILE);
    this.count = records.getCount();
  }

  get size(): number {
    return this.count;
  }

  /** Store entries in one transaction; resolves with their ids once it is flushed to disk. */
  async add(entries: MemoryEntry[]): Promise<number[]> {
    // async: a bad entry rejects; the checks and encoding still run synchronously, at the call
    this.checkWritable();
    for (const e of entries) checkEntry(e, this.shape, this.embedDim);
    const now = Date.now();
    const bufs = entries.map((e) => encodeRecord(0, e, now, this.ctx));
    return this.track(async () => {
      const ids = await this.env.transaction(() => {
        const next = this.meta.get('nextId') as number;
        bufs.forEach((b, i) => {
          stampRecordId(b, next + i);
          this.records.put(next + i, Buffer.from(b.buffer, b.byteOffset, b.byteLength));
        });
        this.meta.put('nextId', next + bufs.length);
        return bufs.map((_, i) => next + i);
      });
      ids.forEach((id, i) => this.index.add(id, entries[i]!.embedding));
      this.count += ids.length;
      this.afterWrite(ids.length);
      return ids;
    });
  }

  /** k nearest memories by cosine, best first; never an id whose delete has begun */
  search(embedding: Float32Array, k: number): MemoryHit[] {
    this.checkOpen();
    const hits = this.index.search(embedding, k + this.deleting.size);
    return (this.deleting.size ? hits.filter((h) => !this.deleting.has(h.id)) : hits).slice(0, k);
  }

  /** One memory, decoded (through the cache; treat it as read-only). */
  get(id: number): StoredMemory {
    this.checkOpen();
    const hit = this.cache.get(id);
    if (hit) return hit;
    const buf = Number.isInteger(id) && id > 0 && id < 2 ** 32 ? this.records.getBinary(id) : undefined;
    if (!buf) throw new ValueError('id', `memory ${id} is not in the bank at ${this.dir}`);
    const m = decodeRecord(buf, id, this.ctx);
    this.cache.set(id, m);
    return m;
  }

  /** One memory's listing entry, read without decoding its K/V; undefined when missing. */
  info(id: number): MemoryInfo | undefined {
    this.checkOpen();
    const buf = Number.isInteger(id) && id > 0 && id < 2 ** 32 ? this.records.getBinary(id) : undefined;
    return buf ? recordInfo(buf, id, this.ctx) : undefined;
  }

  async delete(id: number): Promise<boolean> {
    this.checkWritable();
    if (!Number.isInteger(id) || id <= 0 || id >= 2 ** 32) return false;
    this.deleting.add(id);
    return this.track(async () => {
      let existed = false;
      try {
        existed = await this.env.transaction(() => {
          if (this.records.getBinary(id) === undefined) return false;
          this.records.remove(id);
          return true;
        });
        if (existed) {
          this.index.remove(id);
          this.count--;
          this.afterWrite(1);
        }
      } finally {
        this.cache.delete(id);
        this.deleting.delete(id);
      }
      return existed;
    });
  }

  list(opts: { offset?: number; limit?: number } = {}): MemoryInfo[] {
    this.checkOpen();
    const out: MemoryInfo[] = [];
    for (const { key, value } of this.records.getRange({ offset: opts.offset ?? 0, limit: opts.limit ?? this.count }))
      out.push(recordInfo(value, key, this.ctx));
    return out;
  }

  /** Write the index file now (atomic) and record its crc; returns once the meta write is durable. */
  async saveIndex(): Promise<void> {
    this.checkOpen();
    await this.writeIndex();
  }

  /** Wait for writes in flight, save the index, close lmdb. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    await Promise.allSettled([...this.inflight]);
    try {
      await this.writeIndex();
    } finally {
      this.closed = true;
      this.cache.clear();
      await this.env.close();
    }
  }

  /** Load the index, or rebuild it from the records (called once by openMemoryBank); true when it rebuilt. */
  recoverIndex(): boolean {
    const t0 = performance.now();
    const saved = (this.meta.get('index') as IndexMeta | undefined) ?? null;
    const failure = this.index.load(this.indexFile, saved);
    let reason: 'missing' | 'corrupt' | 'stale' | null = failure;
    let mode: 'full' | 'caught-up' = 'full';
    let added = 0;
    if (!failure) {
      // stale? the index must hold exactly the stored ids: missing ones are added, extras force a rebuild
      const missing: number[] = [];
      for (const id of this.records.getKeys()) if (!this.index.contains(id)) missing.push(id);
      const extras = this.index.size - (this.count - missing.length);
      if (extras > 0) reason = 'stale';
      else if (missing.length) {
        reason = 'stale';
        mode = 'caught-up';
        for (const id of missing) added += this.indexRecord(id) ? 1 : 0;
      }
    }
    if (reason && mode === 'full') {
      this.index.clear();
      for (const { key, value } of this.records.getRange()) added += this.indexRecord(key, value) ? 1 : 0;
    }
    if (!reason) return false;
    this.indexRecovery = { kind: 'index-rebuilt', reason, mode, added, ms: performance.now() - t0 };
    this.options.onEvent?.(this.indexRecovery);
    return true;
  }

  /** add one record's embedding to the index; a corrupt record is reported and left out (get still refuses it by name) */
  private indexRecord(id: number, buf = this.records.getBinary(id)): boolean {
    if (!buf) return false;
    try {
      this.index.add(id, recordEmbedding(buf, id, this.ctx));
      return true;
    } catch (e) {
      this.options.onEvent?.({ kind: 'record-skipped', id, error: e as Error });
      return false;
    }
  }

  private afterWrite(n: number): void {
    this.writesSinceSave += n;
    if (this.writesSinceSave < this.indexSaveEvery || this.closed) return;
    this.writesSinceSave = 0;
    this.writeIndex().catch((e) => this.options.onEvent?.({ kind: 'index-save-failed', error: e as Error }));
  }

  private async writeIndex(): Promise<void> {
    let saved: { crc: number; bytes: number };
    try {
      saved = this.index.save(this.indexFile);
    } catch (e) {
      rmSync(this.indexFile, { force: true }); // a missing index is rebuilt on open; a wrong one must not stay
      throw e;
    }
    const vectors = this.index.size;
    this.writesSinceSave = 0;
    await this.meta.put('index', { ...saved, vectors } satisfies IndexMeta);
    this.options.onEvent?.({ kind: 'index-saved', vectors, bytes: saved.bytes });
  }

  private track<T>(fn: () => Promise<T>): Promise<T> {
    const p = fn();
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.closing) throw new DisposedError(`the memory bank at ${this.dir} is closing; writes are refused`);
  }

  private checkOpen(): void {
    if (this.closed) throw new DisposedError(`the memory bank at ${this.dir} is closed; open it again with openMemoryBank`);
  }
}
