import { ConfigError, ShapeError, ValueError } from '@mnemo/core';
import { type KernelImpl, initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { bruteForceTopK, bruteForceTopKTf, explicitKeyChunks } from './brute-force';
import { productKeySearch } from './search';
import { explicitKeys } from './subkeys';

interface Case {
  batch: number;
  heads: number;
  n: number;
  dk: number;
  k: number;
  queries: Float32Array;
  subkeys: Float32Array;
}

/** Every kernel this machine has: the TS kernel always, native when the addon loaded. */
function kernels(): KernelImpl[] {
  const impls: KernelImpl[] = ['ts'];
  const q = tf.zeros([1, 1, 2]) as tf.Tensor3D;
  const k = tf.zeros([1, 2, 1, 1]) as tf.Tensor4D;
  try {
    productKeySearch(q, k, 1, { impl: 'native' });
    impls.push('native');
  } catch (e) {
    console.log(`native product-key kernel not tested: ${(e as Error).message}`);
  }
  tf.dispose([q, k]);
  return impls;
}

function run(c: Case, impl: KernelImpl) {
  return tf.tidy(() => {
    const q = tf.tensor3d(c.queries, [c.batch, c.heads, c.dk]);
    const s = tf.tensor4d(c.subkeys, [c.heads, 2, c.n, c.dk / 2]);
    const r = productKeySearch(q, s, c.k, { impl });
    return { scores: r.scores.dataSync() as Float32Array, ids: r.ids.dataSync() as Int32Array };
  });
}

/**
 * Compare a product-key result with the float64 brute force over all n² explicit keys.
 * `tol` is absolute on scores. Where the brute force's scores around a position are separated by
 * more than 2·tol, the ids must be identical; inside near-ties any slot of that score is accepted,
 * but each returned id must truly have the returned score, ids must be distinct, and equal scores
 * in the output must come in ascending id order (the tie rule). tol = 0 demands exact equality.
 */
function expectMatchesBruteForce(c: Case, got: { scores: Float32Array; ids: Int32Array }, tol: number) {
  const N = c.n * c.n;
  const kk = Math.min(c.k + 1, N);
  const want = bruteForceTopK(c.queries, c.subkeys, { ...c, k: kk });
  const keys = explicitKeys(c.subkeys, c.heads, c.n, c.dk);
  for (let b = 0; b < c.batch; b++) {
    for (let h = 0; h < c.heads; h++) {
      const go = (b * c.heads + h) * c.k;
      const wo = (b * c.heads + h) * kk;
      const seen = new Set<number>();
      for (let t = 0; t < c.k; t++) {
        const id = got.ids[go + t]!;
        const ws = want.scores[wo + t]!;
        expect(id).toBeGreaterThanOrEqual(0);
        expect(id).toBeLessThan(N);
        expect(seen.has(id)).toBe(false);
        seen.add(id);
        expect(Math.abs(got.scores[go + t]! - ws)).toBeLessThanOrEqual(tol + 1e-7 * Math.abs(ws));
        // the slot truly has that score
        let s = 0;
        for (let d = 0; d < c.dk; d++) s += c.queries[(b * c.heads + h) * c.dk + d]! * keys[(h * N + id) * c.dk + d]!;
        expect(Math.abs(s - ws)).toBeLessThanOrEqual(2 * tol + 1e-7 * Math.abs(ws));
        const prev = t > 0 ? want.scores[wo + t - 1]! : Number.POSITIVE_INFINITY;
        const next = t + 1 < kk ? want.scores[wo + t + 1]! : Number.NEGATIVE_INFINITY;
        const isolated = prev - ws > 2 * tol && ws - next > 2 * tol;
        if (tol === 0 || isolated) expect(id).toBe(want.ids[wo + t]);
        if (t > 0 && got.scores[go + t] === got.scores[go + t - 1]) {
          expect(id).toBeGreaterThan(got.ids[go + t - 1]!); // tie rule: lower slot id first
        }
      }
    }
  }
}

const f32 = (len: number, f: () => number) => Float32Array.from({ length: len }, f);

/** Arbitrary sizes within the ranges (dk kept small so the float64 brute force stays fast). */
const sizes = fc
  .record({
    n: fc.integer({ min: 2, max: 256 }),
    kFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    heads: fc.integer({ min: 1, max: 8 }),
    halfDk: fc.integer({ min: 1, max: 16 }),
    batch: fc.integer({ min: 1, max: 2 }),
    seed: fc.integer(),
  })
  .map(({ n, kFrac, heads, halfDk, batch, seed }) => {
    const k = 1 + Math.min(n - 1, Math.floor(kFrac * n));
    // keep the brute force ≤ ~20M multiply-adds per case
    const h = n * n * 2 * halfDk * batch * heads > 2e7 ? 1 : heads;
    return { n, k, heads: h, dk: 2 * halfDk, batch, seed };
  });

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/**
 * Between property runs: let the test worker's event loop answer vitest's RPC (a synchronous test
 * of a minute or more on a loaded machine makes it time out).
 */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('productKeySearch equals the brute-force top-k', () => {
  let impls: KernelImpl[] = [];
  beforeAll(async () => {
    await initBackend({ log: false });
    impls = kernels();
  });

  it('random gaussian-ish queries and keys, sizes n 2–256, k 1–n, H 1–8', async () => {
    await fc.assert(
      fc.asyncProperty(sizes, async ({ seed, ...d }) => {
        await yieldToEventLoop();
        const r = rng(seed);
        const g = () => (r() + r() + r() - 1.5) * 2;
        const c: Case = { ...d, queries: f32(d.batch * d.heads * d.dk, g), subkeys: f32(d.heads * d.n * d.dk, g) };
        for (const impl of impls) expectMatchesBruteForce(c, run(c, impl), 1e-5);
      }),
      { numRuns: 40, seed: 20261125 },
    );
  });

  it('exact ties: small integer values, so every sum is exact; ids follow the tie rule exactly', async () => {
    await fc.assert(
      fc.asyncProperty(sizes, async ({ seed, ...d }) => {
        await yieldToEventLoop();
        const r = rng(seed);
        const g = () => Math.floor(r() * 5) - 2; // {-2..2}: masses of equal scores
        const c: Case = { ...d, queries: f32(d.batch * d.heads * d.dk, g), subkeys: f32(d.heads * d.n * d.dk, g) };
        for (const impl of impls) expectMatchesBruteForce(c, run(c, impl), 0);
      }),
      { numRuns: 40, seed: 7 },
    );
  });

  it('equal keys: duplicated and all-identical sub-key rows', async () => {
    await fc.assert(
      fc.asyncProperty(sizes, fc.boolean(), async ({ seed, ...d }, allSame) => {
        await yieldToEventLoop();
        const r = rng(seed);
        const half = d.dk / 2;
        const subkeys = f32(d.heads * d.n * d.dk, () => r() - 0.5);
        for (let t = 0; t < d.heads * 2; t++) {
          const base = t * d.n * half;
          for (let i = 1; i < d.n; i++) {
            const src = allSame ? 0 : Math.floor(r() * i); // copy an earlier row
            if (allSame || r() < 0.5) subkeys.copyWithin(base + i * half, base + src * half, base + (src + 1) * half);
          }
        }
        const c: Case = { ...d, queries: f32(d.batch * d.heads * d.dk, () => r() - 0.5), subkeys };
        for (const impl of impls) expectMatchesBruteForce(c, run(c, impl), 1e-6);
      }),
      { numRuns: 30, seed: 11 },
    );
  });

  it('huge and tiny magnitudes', async () => {
    for (const scale of [1e15, 1e-15]) {
      await fc.assert(
        fc.asyncProperty(sizes, async ({ seed, ...d }) => {
          await yieldToEventLoop();
          const r = rng(seed);
          const g = () => (r() - 0.5) * scale;
          const c: Case = { ...d, queries: f32(d.batch * d.heads * d.dk, g), subkeys: f32(d.heads * d.n * d.dk, g) };
          for (const impl of impls) expectMatchesBruteForce(c, run(c, impl), 1e-5 * scale * scale * d.dk);
        }),
        { numRuns: 15, seed: scale > 1 ? 3 : 5 },
      );
    }
  });

  it('k = n at the largest size (n = 256, every half row selected)', () => {
    const r = rng(42);
    const c: Case = { batch: 1, heads: 1, n: 256, dk: 8, k: 256, queries: f32(8, () => r() - 0.5), subkeys: f32(256 * 8, () => r() - 0.5) };
    for (const impl of impls) expectMatchesBruteForce(c, run(c, impl), 1e-5);
  });

  it('the tfjs brute force (used by the benchmark) agrees with the float64 one', () => {
    const r = rng(9);
    const n = 40;
    const dk = 16;
    const k = 8;
    const queries = f32(3 * dk, () => r() - 0.5);
    const subkeys = f32(n * dk, () => r() - 0.5);
    const want = bruteForceTopK(queries, subkeys, { batch: 3, heads: 1, n, dk, k });
    const chunks = explicitKeyChunks(subkeys, 0, n, dk, 300); // 1600 slots in 6 chunks
    const got = bruteForceTopKTf(tf.tensor2d(queries, [3, dk]), chunks, k);
    expect(Array.from(got.ids.dataSync())).toEqual(Array.from(want.ids));
    const gs = got.scores.dataSync();
    want.scores.forEach((s, i) => expect(gs[i]).toBeCloseTo(s, 5));
    tf.dispose([...chunks, got.ids, got.scores]);
  });
});

describe('gradients', () => {
  beforeAll(async () => {
    await initBackend({ log: false });
  });

  for (const backend of ['wasm', 'cpu'] as const) {
    it(`match central finite differences and touch only selected sub-key rows (${backend})`, async () => {
      await initBackend({ backend, log: false });
      const [B, H, n, dk, k] = [2, 2, 6, 8, 3];
      const r = rng(123);
      const qv = f32(B * H * dk, () => r() * 2 - 1);
      const kv = f32(H * 2 * n * (dk / 2), () => r() * 2 - 1);
      const wv = f32(B * H * k, () => r() * 2 - 1); // loss = Σ w · scores
      const loss = (q: tf.Tensor, s: tf.Tensor) =>
        tf.sum(tf.mul(productKeySearch(q as tf.Tensor3D, s as tf.Tensor4D, k).scores, tf.tensor3d(wv, [B, H, k])));
      const [gq, gk] = tf.grads(loss)([tf.tensor3d(qv, [B, H, dk]), tf.tensor4d(kv, [H, 2, n, dk / 2])]);
      const gqv = gq!.dataSync();
      const gkv = gk!.dataSync();
      const lossAt = (q: Float32Array, s: Float32Array) =>
        tf.tidy(() => loss(tf.tensor3d(q, [B, H, dk]), tf.tensor4d(s, [H, 2, n, dk / 2])).dataSync()[0]!);
      const idsAt = (q: Float32Array, sk: Float32Array) =>
        tf.tidy(() =>
          Array.from(productKeySearch(tf.tensor3d(q, [B, H, dk]), tf.tensor4d(sk, [H, 2, n, dk / 2]), k).ids.dataSync()).join(),
        );
      const base = idsAt(qv, kv);
      // Central differences; the loss is linear in each input while the selection stays put, so a
      // coordinate whose ±eps step changes the selected slots (a kink) is not comparable: skip it.
      const eps = 1e-2;
      let compared = 0;
      let total = 0;
      for (const [arr, grad, isQ] of [
        [qv, gqv, true],
        [kv, gkv, false],
      ] as const) {
        for (let i = 0; i < arr.length; i++) {
          const p = arr.slice();
          const m = arr.slice();
          p[i]! += eps;
          m[i]! -= eps;
          const [qp, kp, qm, km] = isQ ? [p, kv, m, kv] : [qv, p, qv, m];
          total++;
          if (idsAt(qp, kp) !== base || idsAt(qm, km) !== base) continue;
          compared++;
          expect(grad[i]).toBeCloseTo((lossAt(qp, kp) - lossAt(qm, km)) / (2 * eps), 3);
        }
      }
      expect(compared).toBeGreaterThan(0.8 * total);
      // rows never selected get exactly zero gradient
      const { ids } = productKeySearch(tf.tensor3d(qv, [B, H, dk]), tf.tensor4d(kv, [H, 2, n, dk / 2]), k);
      const used = new Set<number>();
      const idv = ids.dataSync();
      for (let t = 0; t < idv.length; t++) {
        const h = Math.floor(t / k) % H;
        used.add((h * 2 + 0) * n + Math.floor(idv[t]! / n));
        used.add((h * 2 + 1) * n + (idv[t]! % n));
      }
      let zeroRows = 0;
      for (let row = 0; row < H * 2 * n; row++) {
        const g = gkv.slice(row * (dk / 2), (row + 1) * (dk / 2));
        if (!used.has(row)) {
          expect(Array.from(g).every((x) => x === 0)).toBe(true);
          zeroRows++;
        }
      }
      expect(zeroRows).toBeGreaterThan(0);
      await initBackend({ log: false });
    });
  }
});

describe('input validation', () => {
  beforeAll(async () => {
    await initBackend({ log: false });
  });
  const q = () => tf.zeros([2, 2, 8]) as tf.Tensor3D;
  const s = () => tf.zeros([2, 2, 5, 4]) as tf.Tensor4D;

  it.each([
    [
      'queries of rank 2',
      () => productKeySearch(tf.zeros([2, 8]) as unknown as tf.Tensor3D, s(), 2),
      ShapeError,
      /^queries: must be \[B, H, dk\]/,
    ],
    ['sub-keys without 2 halves', () => productKeySearch(q(), tf.zeros([2, 3, 5, 4]) as tf.Tensor4D, 2), ShapeError, /^subkeys: must be/],
    [
      'head mismatch',
      () => productKeySearch(q(), tf.zeros([3, 2, 5, 4]) as tf.Tensor4D, 2),
      ShapeError,
      /^subkeys: has 3 heads but queries have 2/,
    ],
    ['odd dk', () => productKeySearch(tf.zeros([1, 2, 7]) as tf.Tensor3D, s(), 2), ShapeError, /^queries: .*even/],
    ['sub-key width ≠ dk/2', () => productKeySearch(tf.zeros([1, 2, 6]) as tf.Tensor3D, s(), 2), ShapeError, /^subkeys: sub-key width 4/],
    ['k > n', () => productKeySearch(q(), s(), 6), ConfigError, /^k: must be in \[1, 5\], got 6/],
    ['k = 0', () => productKeySearch(q(), s(), 0), ConfigError, /^k:/],
    ['non-integer k', () => productKeySearch(q(), s(), 2.5), ConfigError, /^k: must be an integer/],
    ['int32 queries', () => productKeySearch(tf.zeros([2, 2, 8], 'int32') as tf.Tensor3D, s(), 2), ShapeError, /^queries: must be float32/],
    [
      'NaN queries',
      () => productKeySearch(tf.fill([2, 2, 8], Number.NaN) as tf.Tensor3D, s(), 2),
      ValueError,
      /^queries: element 0 is NaN/,
    ],
    [
      'Infinite sub-keys',
      () => productKeySearch(q(), tf.fill([2, 2, 5, 4], Number.POSITIVE_INFINITY) as tf.Tensor4D, 2),
      ValueError,
      /^subkeys:/,
    ],
  ])('%s', (_name, f, cls, re) => {
    expect(f).toThrow(cls as unknown as ErrorConstructor);
    expect(f).toThrow(re as RegExp);
  });
});
