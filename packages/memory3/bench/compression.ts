/**
 * Memory³ storage: bytes per reference and reconstruction error of each representation, at the
 * paper's shape and at the dense preset's, plus the on-disk bank's add / get / search throughput.
 *
 *   npm run bench -w @mnemo/memory3 [-- --quick]   →   docs/benchmarks/memory3-compression.{json,md}
 *
 * Bytes are functions of the shape (codec-size.ts); errors are measured with the real codecs on
 * SYNTHETIC vectors (anisotropic Gaussians, pq-synthetic.ts) until the writer feeds real K/V: PQ
 * numbers on real keys and values will differ.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BenchReport, markdownTable, type Row } from '@mnemo/bench';
import { parseArgvOrExit, writeFileAtomic } from '@mnemo/core';
import { readFileSync } from 'node:fs';
import {
  type CodecKind,
  type ExplicitMemory,
  type KvCodec,
  type MemoryShape,
  anisotropicGaussian,
  codecError,
  fullKvBytes,
  makeCodec,
  memoryLength,
  openMemoryBank,
  sparseKvBytes,
  trainKvQuantizer,
} from '../src/index';
import { fixtureEntry } from '../src/store-fixtures';

const quick = parseArgvOrExit(
  { quick: { type: 'boolean', description: 'CI smoke: fewer training vectors and memories' } },
  { name: 'memory3 compression bench', synopsis: 'usage: npm run bench -w @mnemo/memory3 [-- --quick]' },
).values.quick;

interface ModelSpec {
  name: string;
  blocks: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** PQ bytes per d_h vector */
  subspaces: number;
  embedDim: number;
}
// paper: 44 blocks, 40 query / 8 KV heads, d_h 80 (algorithms.md §4); PQ 14 bytes per vector
// dense preset (apps/trainer/src/presets.ts): D 128, 4 blocks, 4 heads, 2 KV heads → d_h 32; m = 6 keeps ≈ 11× under bf16
const MODELS: ModelSpec[] = [
  { name: 'paper (2.4B)', blocks: 44, heads: 40, kvHeads: 8, headDim: 80, subspaces: 14, embedDim: 1024 },
  { name: 'dense preset', blocks: 4, heads: 4, kvHeads: 2, headDim: 32, subspaces: 6, embedDim: 128 },
];

/** reference / bytes, or '—' where the representation is the larger one */
const ratio = (reference: number, bytes: number, digits: number): number | string =>
  bytes > reference ? '—' : +(reference / bytes).toFixed(digits);

const memShape = (m: ModelSpec): MemoryShape => ({ layers: Math.floor(m.blocks / 2), kvHeads: m.kvHeads, tokens: 8, headDim: m.headDim });

/** synthetic memories: keys and values from different anisotropic Gaussians (seeded) */
function syntheticMemories(s: MemoryShape, count: number, seed: number): ExplicitMemory[] {
  const half = s.kvHeads * s.tokens * s.headDim;
  const rows = s.layers * s.kvHeads * s.tokens * count;
  const keys = anisotropicGaussian(rows, s.headDim, seed, { decay: 0.93, mean: 0.5 });
  const values = anisotropicGaussian(rows, s.headDim, seed + 1, { decay: 0.96, mean: 0.1 });
  return Array.from({ length: count }, (_, i) => {
    const kv = new Float32Array(memoryLength(s));
    for (let l = 0; l < s.layers; l++) {
      const o = (i * s.layers + l) * half;
      kv.set(keys.subarray(o, o + half), 2 * l * half);
      kv.set(values.subarray(o, o + half), (2 * l + 1) * half);
    }
    return { shape: s, kv, positions: new Int32Array(s.layers * s.kvHeads * s.tokens) };
  });
}

async function main() {
  const report = new BenchReport('memory3-compression', {
    title: 'Memory³ storage: bytes per reference, reconstruction error, bank throughput',
    command: 'npm run bench -w @mnemo/memory3',
    description:
      'Bytes per reference (one ≤128-token chunk) as functions of the shape: full KV = blocks × heads × 128 tokens × 2 (K, V) × d_h × 2 bytes ' +
      '(bf16), counted over the KV heads (a GQA cache) and over all attention heads (how the paper counts its ≈160×); sparse = ' +
      'L_mem (= blocks/2) × H_kv × 8 tokens × 2 × d_h × bytes; pq = L_mem × H_kv × 8 × (m_K + m_V) bytes (keys and values have their ' +
      'own 256-centroid codebooks). Reconstruction error = Σ‖kv − decode(encode(kv))‖² / Σ‖kv‖² on held-out SYNTHETIC memories ' +
      '(anisotropic Gaussians in a random basis, keys σ_i = 0.93^i, values 0.96^i; pq-synthetic.ts), not on real K/V: no model writes ' +
      'memories yet. Memory³ adds 8 positions (uint8) per head and layer to each record; see the store section below.',
  });
  const trainCount = quick ? 2 : 12;
  for (const m of MODELS) {
    const s = memShape(m);
    const rowsPerMem = s.layers * s.kvHeads * s.tokens;
    // one distribution (same basis and mean), split into training and held-out memories
    const nTrain = Math.max(trainCount, Math.ceil((quick ? 600 : 12_000) / rowsPerMem));
    const all = syntheticMemories(s, nTrain + (quick ? 1 : 4), 11);
    const train = all.slice(0, nTrain);
    const test = all.slice(nTrain);
    const fullGqa = fullKvBytes({ blocks: m.blocks, heads: m.kvHeads, headDim: m.headDim });
    const fullAll = fullKvBytes({ blocks: m.blocks, heads: m.heads, headDim: m.headDim });
    const sparse16 = sparseKvBytes(s, 2);
    const row = (representation: string, bytes: number, error: number | null, extra: Partial<Row> = {}): void => {
      report.addRow({
        model: m.name,
        shape: `blocks ${m.blocks}, H ${m.heads}, Hkv ${m.kvHeads}, dh ${m.headDim}, L_mem ${s.layers}`,
        representation,
        'bytes/ref': bytes,
        '× vs full (all heads)': ratio(fullAll, bytes, 1),
        '× vs full (GQA)': ratio(fullGqa, bytes, 1),
        '× vs sparse bf16': ratio(sparse16, bytes, 2),
        'rel. error': error === null ? '—' : +error.toExponential(2),
        ...extra,
      });
    };
    row('full KV, all H heads, bf16', fullAll, null);
    row('full KV, H_kv heads (GQA), bf16', fullGqa, null);
    for (const kind of ['f32', 'f16', 'bf16'] as CodecKind[]) {
      const c = makeCodec(kind);
      row(`sparse, ${kind}`, c.bytes(s), codecError(c, test));
    }
    for (const rotation of [false, true]) {
      const t0 = performance.now();
      const q = trainKvQuantizer(train, {
        subspaces: m.subspaces,
        bits: 8,
        iters: quick ? 4 : 15,
        seed: 1,
        rotation,
        rotationIters: quick ? 1 : 4,
        sample: quick ? 600 : 12_000,
      });
      const trainS = (performance.now() - t0) / 1000;
      const c: KvCodec = makeCodec('pq', q);
      const trainErr = codecError(c, train.slice(0, 4));
      row(`sparse, ${rotation ? 'OPQ' : 'PQ'} m=${m.subspaces}×8 bit`, c.bytes(s), codecError(c, test), {});
      report.note(
        `${m.name}, ${rotation ? 'OPQ' : 'PQ'}: trained on ${Math.min(quick ? 600 : 12_000, train.length * rowsPerMem)} vectors per half in ${trainS.toFixed(1)} s; ` +
          `error on training memories ${trainErr.toExponential(2)} vs held-out above.`,
      );
    }
  }
  report.note(
    'The paper reports ≈160× from sparsity (2 × 5 × 16: half the blocks, H/H_kv = 5, 8 of 128 tokens) and ≈11.4× more from its OPQ + residual coarse quantiser + PQ (14 bytes per 80-dim vector); with GQA the sparsity factor is 32×.',
  );

  // --- store throughput ------------------------------------------------------------------------
  const throughput: Row[] = [];
  const configs: Array<{ model: ModelSpec; codec: CodecKind; count: number }> = [
    { model: MODELS[1]!, codec: 'bf16', count: quick ? 200 : 2000 },
    { model: MODELS[0]!, codec: 'bf16', count: quick ? 20 : 200 },
    { model: MODELS[0]!, codec: 'pq', count: quick ? 50 : 150 },
  ];
  for (const cfg of configs) {
    const s = memShape(cfg.model);
    const dir = mkdtempSync(path.join(tmpdir(), 'memory3-bench-'));
    try {
      const quantizer =
        cfg.codec === 'pq'
          ? trainKvQuantizer(syntheticMemories(s, 4, 11), {
              subspaces: cfg.model.subspaces,
              bits: 8,
              iters: quick ? 2 : 6,
              seed: 1,
              sample: 4096,
            })
          : null;
      const codec = quantizer ? { kind: 'pq' as const, quantizer } : cfg.codec;
      let bank = await openMemoryBank(dir, { shape: s, embedDim: cfg.model.embedDim, codec, cacheSize: 64 });
      const entries = Array.from({ length: cfg.count }, (_, i) => fixtureEntry(i + 1, s, cfg.model.embedDim));
      // one by one, awaiting each: every add is its own flushed transaction
      const single = Math.min(Math.floor(cfg.count / 2), quick ? 20 : 100);
      let t0 = performance.now();
      for (const e of entries.slice(0, single)) await bank.add([e]);
      const addOne = single / ((performance.now() - t0) / 1000);
      // batches of 50 in one call
      t0 = performance.now();
      for (let i = single; i < cfg.count; i += 50) await bank.add(entries.slice(i, i + 50));
      const addBatch = (cfg.count - single) / ((performance.now() - t0) / 1000);
      const ids = bank.list().map((x) => x.id);
      // cold gets: every id once, cache 64 ≪ count (mostly misses), then hot gets of 32 ids
      t0 = performance.now();
      for (const id of ids) bank.get(id);
      const getCold = ids.length / ((performance.now() - t0) / 1000);
      const hot = ids.slice(0, 32);
      for (const id of hot) bank.get(id);
      t0 = performance.now();
      for (let r = 0; r < 100; r++) for (const id of hot) bank.get(id);
      const getHot = (100 * hot.length) / ((performance.now() - t0) / 1000);
      const queries = entries.slice(0, 200).map((e) => e.embedding);
      t0 = performance.now();
      let top1 = 0;
      for (let r = 0; r < 5; r++) for (const [i, q] of queries.entries()) if (bank.search(q, 5)[0]?.id === ids[i]) top1++;
      const search = (5 * queries.length) / ((performance.now() - t0) / 1000);
      await bank.close();
      const dbBytes = statSync(path.join(dir, 'data.mdb')).size;
      t0 = performance.now();
      bank = await openMemoryBank(dir, { shape: s, embedDim: cfg.model.embedDim });
      const openMs = performance.now() - t0;
      await bank.close();
      rmSync(path.join(dir, 'index.usearch'));
      t0 = performance.now();
      bank = await openMemoryBank(dir, { shape: s, embedDim: cfg.model.embedDim });
      const rebuildMs = performance.now() - t0;
      await bank.close();
      throughput.push({
        model: cfg.model.name,
        codec: cfg.codec,
        memories: cfg.count,
        embedDim: cfg.model.embedDim,
        'kv bytes': makeCodec(cfg.codec, quantizer).bytes(s),
        'data.mdb MB': +(dbBytes / 2 ** 20).toFixed(1),
        'add 1/txn /s': Math.round(addOne),
        'add 50/txn /s': Math.round(addBatch),
        'get cold /s': Math.round(getCold),
        'get cached /s': Math.round(getHot),
        'search k=5 /s': Math.round(search),
        'self top-1': +(top1 / (5 * queries.length)).toFixed(3),
        'open ms': Math.round(openMs),
        'rebuild ms': Math.round(rebuildMs),
      });
      process.stderr.write(`[memory3-compression] store ${JSON.stringify(throughput.at(-1))}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  report.set('store', throughput);
  const { md } = report.write();
  const storeMd =
    '\n## Store throughput (`openMemoryBank`, lmdb + usearch)\n\n' +
    'One process, this machine\'s disk (os.tmpdir()). "add 1/txn": awaiting each add (one flushed lmdb transaction each); ' +
    '"add 50/txn": 50 memories per add call. "get cold": every id once with a 64-entry cache (lmdb read + crc + decode); ' +
    '"get cached": 32 hot ids. "search": usearch HNSW (connectivity 16, expansion 64), k = 5, with the stored embeddings as ' +
    'queries ("self top-1": the fraction that finds itself first). "open": reopen with a saved index; "rebuild": reopen ' +
    'after deleting the index file (every embedding re-added).\n\n' +
    markdownTable(throughput);
  writeFileAtomic(md, readFileSync(md, 'utf8') + storeMd);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
