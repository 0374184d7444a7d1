import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { mulberry32 } from '@mnemo/core';
import { afterAll, describe, expect, it } from 'vitest';
import { AnnIndex } from './ann-index';
import { cosine } from './in-memory-bank';
import { gaussian } from './pq-synthetic';

const dir = mkdtempSync(path.join(tmpdir(), 'memory3-ann-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function vectors(n: number, d: number, seed: number): Float32Array[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: d }, () => gaussian(rng)));
}

describe('AnnIndex', () => {
  const d = 24;
  const vs = vectors(500, d, 1);

  it('finds the exact top hits by cosine on 500 vectors (recall@10 ≥ 0.95), scores = cosine', () => {
    const idx = new AnnIndex(d);
    vs.forEach((v, i) => idx.add(i + 1, v));
    expect(idx.size).toBe(500);
    let found = 0;
    const queries = vectors(20, d, 2);
    for (const q of queries) {
      const exact = vs.map((v, i) => ({ id: i + 1, s: cosine(q, v) })).sort((a, b) => b.s - a.s);
      const hits = idx.search(q, 10);
      expect(hits.length).toBe(10);
      for (let i = 1; i < hits.length; i++) expect(hits[i]!.score).toBeLessThanOrEqual(hits[i - 1]!.score + 1e-6);
      for (const h of hits) expect(h.score).toBeCloseTo(cosine(q, vs[h.id - 1]!), 4);
      const top = new Set(exact.slice(0, 10).map((e) => e.id));
      found += hits.filter((h) => top.has(h.id)).length;
    }
    expect(found / 200).toBeGreaterThanOrEqual(0.95);
  });

  it('never returns a removed id', () => {
    const idx = new AnnIndex(d);
    vs.slice(0, 100).forEach((v, i) => idx.add(i + 1, v));
    for (let id = 1; id <= 100; id += 2) idx.remove(id);
    expect(idx.size).toBe(50);
    for (const q of vs.slice(0, 100)) for (const h of idx.search(q, 20)) expect(h.id % 2).toBe(0);
  });

  it('saves atomically and loads back only with the right crc', () => {
    const idx = new AnnIndex(d);
    vs.slice(0, 50).forEach((v, i) => idx.add(i + 1, v));
    const file = path.join(dir, 'a.usearch');
    const saved = idx.save(file);
    const back = new AnnIndex(d);
    expect(back.load(file, saved)).toBeNull();
    expect(back.size).toBe(50);
    expect(back.search(vs[7]!, 1)[0]!.id).toBe(8);
    expect(new AnnIndex(d).load(file, { ...saved, crc: saved.crc ^ 1 })).toBe('corrupt');
    expect(new AnnIndex(d).load(file, null)).toBe('corrupt');
    expect(new AnnIndex(d).load(path.join(dir, 'none.usearch'), saved)).toBe('missing');
    writeFileSync(file, 'garbage'); // the right crc, so usearch itself must refuse it
    const g = new AnnIndex(d);
    expect(g.load(file, { crc: crc32(Buffer.from('garbage')), bytes: 7 })).toBe('corrupt');
    expect(g.size).toBe(0);
  });
});
