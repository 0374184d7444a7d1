/**
 * The MemoryBank contract, run against every implementation: the RAM bank and the on-disk bank
 * (a networked store would join this list).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MnemoError, ShapeError } from '@mnemo/core';
import { afterAll, describe, expect, it } from 'vitest';
import { InMemoryBank } from './in-memory-bank';
import { openMemoryBank } from './lmdb-bank';
import { fixtureEntry } from './store-fixtures';
import type { MemoryBank, MemoryShape } from './types';

const shape: MemoryShape = { layers: 1, kvHeads: 2, tokens: 8, headDim: 8 };
const embedDim = 12;
const entry = (seed: number) => fixtureEntry(seed, shape, embedDim);
const root = mkdtempSync(path.join(tmpdir(), 'memory3-contract-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const banks: Array<[string, () => Promise<MemoryBank>]> = [
  ['InMemoryBank', async () => new InMemoryBank(shape, embedDim)],
  ['LmdbMemoryBank (f32)', () => openMemoryBank(path.join(root, 'f32'), { shape, embedDim, codec: 'f32' })],
];

describe.each(banks)('%s honours MemoryBank', (_name, make) => {
  it('add / search / get / list / delete', async () => {
    const bank = await make();
    expect([bank.shape, bank.embedDim, bank.size]).toEqual([shape, embedDim, 0]);
    expect(bank.search(entry(1).embedding, 3)).toEqual([]);
    const ids = await bank.add([entry(1), entry(2), entry(3), entry(4)]);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(4);
    expect(bank.size).toBe(4);
    const hits = bank.search(entry(3).embedding, 10);
    expect(hits).toHaveLength(4); // fewer than k when the bank holds fewer
    expect(hits[0]).toMatchObject({ id: ids[2] });
    expect(hits[0]!.score).toBeCloseTo(1, 5);
    for (let i = 1; i < hits.length; i++) expect(hits[i]!.score).toBeLessThanOrEqual(hits[i - 1]!.score + 1e-6);
    const got = bank.get(ids[1]!);
    expect({ id: got.id, text: got.text, tokens: got.tokens }).toEqual({ id: ids[1], text: entry(2).text, tokens: entry(2).tokens });
    expect(got.memory.kv).toEqual(entry(2).memory.kv);
    expect(got.memory.positions).toEqual(entry(2).memory.positions);
    expect(got.createdAt).toBeGreaterThan(0);
    expect(bank.list({ offset: 1, limit: 2 }).map((i) => i.id)).toEqual(ids.slice(1, 3));
    expect(bank.list()[0]!.bytes).toBe(shape.layers * 2 * shape.kvHeads * shape.tokens * shape.headDim * 4);
    expect(await bank.delete(ids[2]!)).toBe(true);
    expect(await bank.delete(ids[2]!)).toBe(false);
    expect(bank.size).toBe(3);
    expect(bank.search(entry(3).embedding, 10).map((h) => h.id)).not.toContain(ids[2]);
    expect(() => bank.get(ids[2]!)).toThrow(MnemoError);
    expect(() => bank.get(9999)).toThrow(MnemoError);
    await expect(bank.add([{ ...entry(5), embedding: new Float32Array(3) }])).rejects.toThrow(ShapeError);
    expect(() => bank.search(new Float32Array(3), 1)).toThrow(ShapeError);
    const [next] = await bank.add([entry(6)]);
    expect(next).toBeGreaterThan(Math.max(...ids)); // never reused
    await bank.close();
  });
});
