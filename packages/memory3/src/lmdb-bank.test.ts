import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CheckpointError, ConfigError, DisposedError, ValueError, mulberry32 } from '@mnemo/core';
import { afterAll, describe, expect, it } from 'vitest';
import { trainKvQuantizer } from './codec';
import { type BankEvent, type LmdbMemoryBank, openMemoryBank } from './lmdb-bank';
import { CorruptMemoryError } from './store-record';
import { fixtureEntry } from './store-fixtures';
import type { MemoryShape } from './types';

const root = mkdtempSync(path.join(tmpdir(), 'memory3-bank-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => path.join(root, `b${n++}`);

const shape: MemoryShape = { layers: 2, kvHeads: 2, tokens: 8, headDim: 16 };
const embedDim = 16;
const entry = (seed: number) => fixtureEntry(seed, shape, embedDim);

/** simulate a crash: close lmdb without the bank saving its index */
async function crash(bank: LmdbMemoryBank): Promise<void> {
  await (bank as unknown as { env: { close(): Promise<void> } }).env.close();
}

describe('openMemoryBank', () => {
  it('stores, lists, gets, searches and deletes; survives reopening; never reuses ids', async () => {
    const dir = freshDir();
    const bank = await openMemoryBank(dir, { shape, embedDim, codec: 'f32' });
    const ids = await bank.add([entry(1), entry(2), entry(3)]);
    expect(ids).toEqual([1, 2, 3]);
    expect(bank.size).toBe(3);
    const got = bank.get(2);
    expect(got.text).toBe(entry(2).text);
    expect(got.tokens).toBe(entry(2).tokens);
    expect(got.memory.kv).toEqual(entry(2).memory.kv);
    expect(got.memory.positions).toEqual(entry(2).memory.positions);
    expect(got.embedding).toEqual(entry(2).embedding);
    expect(bank.search(entry(3).embedding, 1)[0]).toMatchObject({ id: 3 });
    expect(bank.search(entry(3).embedding, 1)[0]!.score).toBeCloseTo(1, 5);
    expect(bank.list().map((i) => i.id)).toEqual([1, 2, 3]);
    expect(bank.list({ offset: 1, limit: 1 })).toMatchObject([{ id: 2, text: entry(2).text, bytes: 2 * 2 * 2 * 8 * 16 * 4 }]);
    expect(await bank.delete(3)).toBe(true);
    expect(await bank.delete(3)).toBe(false);
    expect(() => bank.get(3)).toThrow(ValueError);
    expect(bank.search(entry(3).embedding, 3).map((h) => h.id)).not.toContain(3);
    await bank.close();
    expect(() => bank.get(1)).toThrow(DisposedError);

    const again = await openMemoryBank(dir, { shape, embedDim });
    expect(again.indexRecovery).toBeNull();
    expect(again.codec.kind).toBe('f32');
    expect(again.size).toBe(2);
    expect(again.get(1).memory.kv).toEqual(entry(1).memory.kv);
    expect(await again.add([entry(4)])).toEqual([4]); // 3 was deleted, never reused
    expect(
      again
        .search(entry(2).embedding, 5)
        .map((h) => h.id)
        .sort(),
    ).toEqual([1, 2, 4]);
    await again.close();
  });

  it('bf16 by default: half the bytes, values within bf16 rounding', async () => {
    const bank = await openMemoryBank(freshDir(), { shape, embedDim });
    const [id] = await bank.add([entry(5)]);
    expect(bank.codec.kind).toBe('bf16');
    expect(bank.list()[0]!.bytes).toBe(2 * 2 * 2 * 8 * 16 * 2);
    const kv = bank.get(id!).memory.kv;
    const want = entry(5).memory.kv;
    for (let i = 0; i < kv.length; i++) expect(Math.abs(kv[i]! - want[i]!)).toBeLessThanOrEqual(Math.abs(want[i]!) * 2 ** -8);
    await bank.close();
  });

  it('refuses a different shape, embedDim or codec, naming the field', async () => {
    const dir = freshDir();
    await (await openMemoryBank(dir, { shape, embedDim, codec: 'f16' })).close();
    const refuse = async (opts: Parameters<typeof openMemoryBank>[1], field: string) => {
      const e = await openMemoryBank(dir, opts).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).field).toBe(field);
    };
    await refuse({ shape: { ...shape, headDim: 32 }, embedDim }, 'shape.headDim');
    await refuse({ shape: { ...shape, layers: 3 }, embedDim }, 'shape.layers');
    await refuse({ shape, embedDim: 8 }, 'embedDim');
    await refuse({ shape, embedDim, codec: 'bf16' }, 'codec');
    await refuse({ shape: { ...shape, tokens: 0 }, embedDim }, 'shape.tokens');
    await refuse({ shape, embedDim, codec: 'pq' }, 'codec'); // f16 bank
    expect((await openMemoryBank(freshDir(), { shape, embedDim, codec: 'pq' }).catch((x: unknown) => x)) as ConfigError).toMatchObject({
      field: 'codec.quantizer',
    });
    const ok = await openMemoryBank(dir, { shape, embedDim }); // the refusals left it intact
    expect(ok.codec.kind).toBe('f16');
    await ok.close();
  });

  it('a pq bank keeps its quantiser in meta and decodes the same after reopening', async () => {
    const dir = freshDir();
    const train = Array.from({ length: 40 }, (_, i) => entry(100 + i).memory);
    const quantizer = trainKvQuantizer(train, { subspaces: 4, bits: 8, iters: 4, seed: 1 });
    const bank = await openMemoryBank(dir, { shape, embedDim, codec: { kind: 'pq', quantizer } });
    const [id] = await bank.add([entry(7)]);
    const first = bank.get(id!).memory.kv;
    expect(bank.list()[0]!.bytes).toBe(2 * 2 * 8 * (4 + 4));
    await bank.close();
    const again = await openMemoryBank(dir, { shape, embedDim, codec: 'pq' });
    expect(again.get(id!).memory.kv).toEqual(first);
    await again.close();
    const other = trainKvQuantizer(train, { subspaces: 4, bits: 8, iters: 4, seed: 2 });
    const e = await openMemoryBank(dir, { shape, embedDim, codec: { kind: 'pq', quantizer: other } }).catch((x: unknown) => x);
    expect(e).toMatchObject({ field: 'codec.quantizer' });
  });

  it('serves repeated gets from the LRU cache, bounded by cacheSize', async () => {
    const bank = await openMemoryBank(freshDir(), { shape, embedDim, cacheSize: 2 });
    const ids = await bank.add([entry(1), entry(2), entry(3)]);
    const a = bank.get(ids[0]!);
    expect(bank.get(ids[0]!)).toBe(a); // the same decoded object
    bank.get(ids[1]!);
    bank.get(ids[2]!); // evicts ids[0]
    expect(bank.cache.size).toBe(2);
    expect(bank.get(ids[0]!)).not.toBe(a);
    expect([bank.cache.hits, bank.cache.misses]).toEqual([1, 4]);
    await bank.delete(ids[2]!);
    expect(bank.cache.has(ids[2]!)).toBe(false);
    await bank.close();
  });
});

describe('index recovery', () => {
  async function bankWith(count: number): Promise<string> {
    const dir = freshDir();
    const bank = await openMemoryBank(dir, { shape, embedDim });
    await bank.add(Array.from({ length: count }, (_, i) => entry(i + 1)));
    await bank.close();
    return dir;
  }
  async function reopenExpect(dir: string, reason: string | null, mode?: string) {
    const events: BankEvent[] = [];
    const bank = await openMemoryBank(dir, { shape, embedDim, onEvent: (e) => events.push(e) });
    expect(bank.indexRecovery?.reason ?? null).toBe(reason);
    if (mode) expect(bank.indexRecovery?.mode).toBe(mode);
    if (reason) expect(events[0]).toMatchObject({ kind: 'index-rebuilt', reason });
    for (const id of [1, 10, 20]) if (id <= bank.size) expect(bank.search(entry(id).embedding, 1)[0]!.id).toBe(id);
    await crash(bank);
    const clean = await openMemoryBank(dir, { shape, embedDim }); // the rebuilt index was saved at once
    expect(clean.indexRecovery).toBeNull();
    await clean.close();
  }

  it('rebuilds a deleted index file', async () => {
    const dir = await bankWith(20);
    rmSync(path.join(dir, 'index.usearch'));
    await reopenExpect(dir, 'missing', 'full');
  });
  it('rebuilds a truncated index file', async () => {
    const dir = await bankWith(20);
    const f = path.join(dir, 'index.usearch');
    truncateSync(f, Math.floor(statSync(f).size / 2));
    await reopenExpect(dir, 'corrupt', 'full');
  });
  it('rebuilds an index file with one flipped byte (crc) and one of garbage', async () => {
    const dir = await bankWith(20);
    const f = path.join(dir, 'index.usearch');
    const b = readFileSync(f);
    b[Math.floor(b.length / 2)] = b[Math.floor(b.length / 2)]! ^ 0x40;
    writeFileSync(f, b);
    await reopenExpect(dir, 'corrupt', 'full');
    writeFileSync(f, 'not an index');
    await reopenExpect(dir, 'corrupt', 'full');
  });
  it('catches up an index that lacks the writes after its last save, rebuilds one that holds deleted ids', async () => {
    const dir = await bankWith(10);
    let bank = await openMemoryBank(dir, { shape, embedDim });
    await bank.add(Array.from({ length: 12 }, (_, i) => entry(11 + i)));
    await crash(bank); // index on disk covers 10 of 22
    await reopenExpect(dir, 'stale', 'caught-up');
    bank = await openMemoryBank(dir, { shape, embedDim });
    await bank.delete(5);
    await crash(bank); // index on disk still holds 5
    const events: BankEvent[] = [];
    bank = await openMemoryBank(dir, { shape, embedDim, onEvent: (e) => events.push(e) });
    expect(bank.indexRecovery).toMatchObject({ reason: 'stale', mode: 'full', added: 21 });
    expect(bank.search(entry(5).embedding, 21).map((h) => h.id)).not.toContain(5);
    await bank.close();
  });
});

describe('corrupt records', () => {
  it('refuses a record whose bytes changed on disk, naming its id and the file; others still read', async () => {
    const dir = freshDir();
    const bank = await openMemoryBank(dir, { shape, embedDim, codec: 'f32' });
    const marked = { ...entry(2), text: 'CORRUPT-ME-7f3a9c unique marker' };
    const ids = await bank.add([entry(1), marked, entry(3)]);
    await bank.close();
    const file = path.join(dir, 'data.mdb');
    const bytes = readFileSync(file);
    const needle = Buffer.from('CORRUPT-ME-7f3a9c');
    let at = bytes.indexOf(needle);
    expect(at).toBeGreaterThan(0);
    while (at >= 0) {
      bytes[at] = 'X'.charCodeAt(0); // every copy lmdb keeps (copy-on-write pages)
      at = bytes.indexOf(needle, at + 1);
    }
    writeFileSync(file, bytes);
    const again = await openMemoryBank(dir, { shape, embedDim });
    const e = (() => {
      try {
        again.get(ids[1]!);
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(CorruptMemoryError);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e).toMatchObject({ id: ids[1], file });
    expect((e as Error).message).toMatch(new RegExp(`data\\.mdb: memory ${ids[1]}: checksum mismatch`));
    expect(() => again.list()).toThrow(CorruptMemoryError);
    expect(again.get(ids[0]!).memory.kv).toEqual(entry(1).memory.kv);
    expect(again.get(ids[2]!).text).toBe(entry(3).text);
    await again.close();
    // a rebuild meets the record: reported and left out of the index, never dropped from the store
    rmSync(path.join(dir, 'index.usearch'));
    const events: BankEvent[] = [];
    const rebuilt = await openMemoryBank(dir, { shape, embedDim, onEvent: (ev) => events.push(ev) });
    expect(events.filter((ev) => ev.kind === 'record-skipped')).toMatchObject([{ id: ids[1] }]);
    expect(rebuilt.indexRecovery).toMatchObject({ reason: 'missing', added: 2 });
    expect(rebuilt.size).toBe(3);
    expect(() => rebuilt.get(ids[1]!)).toThrow(CorruptMemoryError);
    await rebuilt.close();
  });
});

describe('concurrency', () => {
  it('interleaved async adds/deletes with sync search/get: 0 errors, deleted ids never returned', async () => {
    const bank = await openMemoryBank(freshDir(), { shape, embedDim, cacheSize: 16, indexSaveEvery: 50 });
    const rng = mulberry32(9);
    const live = new Set<number>(await bank.add(Array.from({ length: 40 }, (_, i) => entry(i + 1))));
    const deleted = new Set<number>();
    const pending: Promise<unknown>[] = [];
    const errors: unknown[] = [];
    let seed = 1000;
    let reads = 0;
    for (let round = 0; round < 300; round++) {
      if (rng() < 0.55 || live.size < 5) {
        const s = seed++;
        pending.push(
          bank.add([entry(s)]).then(
            ([id]) => live.add(id!),
            (e) => errors.push(e),
          ),
        );
      } else {
        const id = [...live][Math.floor(rng() * live.size)]!;
        live.delete(id);
        deleted.add(id);
        pending.push(
          bank.delete(id).then(
            (ok) => ok || errors.push(new Error(`delete ${id} found nothing`)),
            (e) => errors.push(e),
          ),
        );
      }
      for (let r = 0; r < 4; r++) {
        try {
          for (const h of bank.search(entry(1000 + Math.floor(rng() * seed)).embedding, 8)) {
            if (deleted.has(h.id)) errors.push(new Error(`search returned deleted id ${h.id}`));
            bank.get(h.id);
          }
          const ids = [...live];
          bank.get(ids[Math.floor(rng() * ids.length)]!);
          reads++;
        } catch (e) {
          errors.push(e);
        }
      }
      if (round % 7 === 0) await new Promise((r) => setImmediate(r)); // let commits land between bursts
    }
    await Promise.all(pending);
    expect(errors).toEqual([]);
    expect(reads).toBe(1200);
    expect(bank.size).toBe(live.size);
    expect(bank.list().map((i) => i.id)).toEqual([...live].sort((a, b) => a - b));
    for (const id of deleted) expect(() => bank.get(id)).toThrow(ValueError);
    await bank.close();
  });
});
