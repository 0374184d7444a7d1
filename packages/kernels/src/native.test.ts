/**
 * The C++ kernels against the TypeScript kernels on identical inputs: forward, gw, and the table
 * and optimizer state after several fused steps (every optimizer, clipping, weight decay,
 * 16-bit storage, odd widths that exercise SIMD tails, hot rows shared by many bags).
 */
import { describe, expect, it } from 'vitest';
import { type OptimizerConfig, type StorageDtype, ValueStore, nativeAvailable, productKeyTopK, productKeyTopKBackward } from './index';
import { nativeAddon } from './native';
import { bagBatch, relErr, rng } from './testing';

const native = nativeAvailable();

describe('native addon', () => {
  it('loads unless disabled (MNEMO_NATIVE=0) and reports why', () => {
    if (process.env.MNEMO_NATIVE === '0') {
      expect(native.available).toBe(false);
      expect(native.reason).toMatch(/MNEMO_NATIVE=0/);
    } else {
      // the install script builds it wherever a C++ toolchain exists (this repo's CI has one)
      expect(native, native.reason).toMatchObject({ available: true });
      expect(nativeAddon()!.simd).toMatch(/avx2|generic/);
    }
  });
});

describe.each(native.available ? ['native'] : [])('%s kernels vs TypeScript kernels', () => {
  const cases: [OptimizerConfig, StorageDtype, number][] = [
    [{ kind: 'sgd', lr: 0.1, weightDecay: 0.01 }, 'float32', 67],
    [{ kind: 'adagrad', lr: 0.05, clip: { mode: 'row', maxNorm: 0.3 } }, 'float32', 33],
    [{ kind: 'adam', lr: 0.01, betas: [0.8, 0.95], clip: { mode: 'global', maxNorm: 1 } }, 'float32', 64],
    [{ kind: 'adam', lr: 0.01, weightDecay: 0.1 }, 'bfloat16', 24],
    [{ kind: 'adagrad', lr: 0.05 }, 'float16', 17],
    [{ kind: 'adam', lr: 0.01, secondMoment: 'row', clip: { mode: 'row', maxNorm: 0.5 } }, 'float32', 67],
    [{ kind: 'adam', lr: 0.01, secondMoment: 'row', momentDtype: 'bfloat16', weightDecay: 0.1 }, 'float32', 40],
    [{ kind: 'adam', lr: 0.01, secondMoment: 'row', momentDtype: 'bfloat16' }, 'bfloat16', 24],
  ];
  for (const [opt, dtype, dv] of cases) {
    const variant = opt.secondMoment === 'row' ? ` row-wise m=${opt.momentDtype ?? 'float32'}` : '';
    it(`${opt.kind}${variant}${opt.clip ? ` clip=${opt.clip.mode}` : ''} ${dtype} dv=${dv}: 3 steps agree`, () => {
      const N = 3000;
      const init = { kind: 'normal' as const, std: 0.3, seed: 9 };
      const a = ValueStore.create({ rows: N, dim: dv, dtype, optimizer: opt, init, impl: 'native' });
      const b = ValueStore.create({ rows: N, dim: dv, dtype, optimizer: opt, init, impl: 'ts' });
      // float32 vs float64 arithmetic; 16-bit: an update may round to a neighbouring value
      // bf16 m: float32 vs float64 m may round to neighbouring bf16 values
      const tol = dtype === 'float32' ? (opt.momentDtype === 'bfloat16' ? 1e-4 : 1e-5) : dtype === 'bfloat16' ? 1e-2 : 2e-3;
      for (let step = 0; step < 3; step++) {
        const { ids, w, gOut } = bagBatch(100 + step, N, 96, 24, dv);
        expect(relErr(a.forward(ids, w, 24), b.forward(ids, w, 24))).toBeLessThan(tol);
        const gwA = a.backward(ids, w, gOut, 24);
        const gwB = b.backward(ids, w, gOut, 24);
        expect(relErr(gwA, gwB)).toBeLessThan(tol);
        expect(a.stats().touchedRows).toBe(b.stats().touchedRows);
      }
      const all = Int32Array.from({ length: N }, (_, i) => i);
      expect(relErr(a.readRows(all), b.readRows(all))).toBeLessThan(tol);
      a.dispose();
      b.dispose();
    });
  }

  it('the multi-threaded sort by row: one radix pass, three passes (rows > 2^22), all padding, one row everywhere', () => {
    const big = (1 << 23) + 3; // 24 row bits: three 11-bit passes
    const cases: [string, number, (r: () => number) => number][] = [
      ['one pass', 1500, (r) => Math.floor(r() * 1500)],
      ['three passes', big, (r) => (r() < 0.5 ? big - 1 - Math.floor(r() * 64) : Math.floor(r() * big))],
      ['all padding', 50, () => -1],
      ['one row', 50, () => 7],
    ];
    const dim = 2;
    const B = 1024;
    const K = 32; // B·K·dim·4 = 256 KiB: the threaded path
    for (const [name, rows, id] of cases) {
      const opt: OptimizerConfig = { kind: 'sgd', lr: 0.5 };
      const a = ValueStore.create({ rows, dim, optimizer: opt, init: 'zeros', impl: 'native' });
      const b = ValueStore.create({ rows, dim, optimizer: opt, init: 'zeros', impl: 'ts' });
      const r = rng(rows);
      const ids = Int32Array.from({ length: B * K }, () => id(r));
      const w = Float32Array.from({ length: B * K }, () => r() * 2 - 1);
      const gOut = Float32Array.from({ length: B * dim }, () => r() * 2 - 1);
      for (let step = 0; step < 2; step++) {
        // step 2 reads the rows step 1 wrote: gw ≠ 0
        const gwA = a.backward(ids, w, gOut, K);
        const gwB = b.backward(ids, w, gOut, K);
        expect(relErr(gwA, gwB), name).toBeLessThan(1e-5);
        expect(a.stats().touchedRows, name).toBe(b.stats().touchedRows);
      }
      const touched = Int32Array.from(new Set(Array.from(ids).filter((i) => i >= 0)));
      expect(touched.length > 0, name).toBe(name !== 'all padding');
      if (touched.length) {
        const rowsA = a.readRows(touched);
        expect(relErr(rowsA, b.readRows(touched)), name).toBeLessThan(1e-5);
        expect(
          rowsA.some((v) => v !== 0),
          name,
        ).toBe(true);
      }
      a.dispose();
      b.dispose();
    }
  });

  it('state-traffic roofline: rewrites exactly the listed rows of every array; refuses bad shapes', () => {
    const addon = nativeAddon()!;
    const N = 3000;
    const r = rng(12);
    const V = Float32Array.from({ length: N * 40 }, () => r() - 0.5);
    const m16 = Uint16Array.from({ length: N * 40 }, () => Math.floor(r() * 65536));
    const steps = Int32Array.from({ length: N }, (_, i) => i);
    const rows = Int32Array.from(new Set(Array.from({ length: 2000 }, () => Math.floor(r() * N)))).sort();
    const [v0, m0, s0] = [V.slice(), m16.slice(), steps.slice()];
    /** indices where a differs from b */
    const diff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).flatMap((x, i) => (x === b[i] ? [] : [i]));
    addon.rooflineRowRmw([V, m16, steps], N, rows, 0); // mask 0: traffic only, values kept
    expect([diff(V, v0), diff(m16, m0), diff(steps, s0)]).toEqual([[], [], []]);
    addon.rooflineRowRmw([V, m16, steps], N, rows, 0x80000000); // flips the sign bit of listed rows' words
    const listed = new Set(rows);
    const row = (i: number) => Math.floor(i / 40);
    expect(
      diff(
        V,
        v0.map((x, i) => (listed.has(row(i)) ? -x : x)),
      ),
    ).toEqual([]);
    // bf16 pairs are 32-bit words: the mask lands on the odd element of each pair
    expect(
      diff(
        m16,
        m0.map((x, i) => (listed.has(row(i)) && i % 2 === 1 ? x ^ 0x8000 : x)),
      ),
    ).toEqual([]);
    expect(
      diff(
        steps,
        s0.map((x, i) => (listed.has(i) ? (x ^ 0x80000000) | 0 : x)),
      ),
    ).toEqual([]);
    expect(diff(V, v0).length).toBe(rows.length * 40); // and the listed rows did change
    expect(() => addon.rooflineRowRmw([new Uint16Array(N * 3)], N, rows, 0)).toThrow(/whole 32-bit words/);
    expect(() => addon.rooflineRowRmw([V], N, Int32Array.of(N), 0)).toThrow(/outside/);
  });

  it('gw only (no update) and one large bag leave the table alone', () => {
    const a = ValueStore.create({ rows: 100, dim: 40, optimizer: { kind: 'sgd', lr: 1 }, impl: 'native', deferred: true });
    const { ids, w, gOut } = bagBatch(5, 100, 1, 5000, 40);
    const before = a.readRows(Int32Array.of(0, 1, 2, 3));
    const gw = a.backward(ids, w, gOut, 5000);
    for (let p = 0; p < ids.length; p++) if (ids[p] === -1) expect(gw[p]).toBe(0);
    expect(a.readRows(Int32Array.of(0, 1, 2, 3))).toEqual(before);
    a.dispose();
  });

  it('product-key top-k: native equals TypeScript exactly (random and exact ties)', () => {
    const r = rng(77);
    const dims = { batch: 5, heads: 3, n: 40, dk: 16, k: 8 };
    const q = Float32Array.from({ length: 5 * 3 * 16 }, () => r() * 2 - 1);
    const keys = Float32Array.from({ length: 3 * 2 * 40 * 8 }, () => r() * 2 - 1);
    const x = productKeyTopK(q, keys, dims, { impl: 'native' });
    const y = productKeyTopK(q, keys, dims, { impl: 'ts' });
    expect(x.ids).toEqual(y.ids);
    expect(x.scores).toEqual(y.scores);
    // ties: integer-valued keys and queries give many equal scores
    const qt = Float32Array.from(q, (v) => Math.round(v * 2));
    const kt = Float32Array.from(keys, (v) => Math.round(v));
    const xt = productKeyTopK(qt, kt, dims, { impl: 'native' });
    const yt = productKeyTopK(qt, kt, dims, { impl: 'ts' });
    expect(xt.ids).toEqual(yt.ids);
    expect(xt.scores).toEqual(yt.scores);
    let ties = 0;
    for (let i = 1; i < xt.scores.length; i++) if (i % 8 && xt.scores[i] === xt.scores[i - 1]) ties++;
    expect(ties).toBeGreaterThan(10);
  });

  it('product-key backward: native and TypeScript equal a dense float64 reference; unselected rows stay 0', () => {
    const r = rng(91);
    const dims = { batch: 7, heads: 3, n: 24, dk: 18, k: 6 };
    const { batch: B, heads: H, n, dk, k } = dims;
    const half = dk / 2;
    const q = Float32Array.from({ length: B * H * dk }, () => r() * 2 - 1);
    const keys = Float32Array.from({ length: H * n * dk }, () => r() * 2 - 1);
    const { ids } = productKeyTopK(q, keys, dims, { impl: 'ts' });
    const g = Float32Array.from({ length: B * H * k }, (_, i) => (i % 5 === 0 ? 0 : r() * 2 - 1));
    // dense reference: G_s[b,h,row] = Σ_t g · [digit_s(id_t) = row]; dq_s = G_s K_s; dK_s = G_sᵀ q_s
    const dqRef = new Float64Array(B * H * dk);
    const dkRef = new Float64Array(H * n * dk);
    for (let h = 0; h < H; h++) {
      for (let s = 0; s < 2; s++) {
        for (let b = 0; b < B; b++) {
          const G = new Float64Array(n);
          for (let t = 0; t < k; t++) {
            const id = ids[(b * H + h) * k + t]!;
            const row = s === 0 ? Math.floor(id / n) : id % n;
            G[row] = G[row]! + g[(b * H + h) * k + t]!;
          }
          for (let row = 0; row < n; row++) {
            for (let c = 0; c < half; c++) {
              dqRef[(b * H + h) * dk + s * half + c]! += G[row]! * keys[((h * 2 + s) * n + row) * half + c]!;
              dkRef[((h * 2 + s) * n + row) * half + c]! += G[row]! * q[(b * H + h) * dk + s * half + c]!;
            }
          }
        }
      }
    }
    const nat = productKeyTopKBackward(g, ids, q, keys, dims, { impl: 'native' });
    const ts = productKeyTopKBackward(g, ids, q, keys, dims, { impl: 'ts' });
    for (const out of [nat, ts]) {
      expect(relErr(out.dq, Float32Array.from(dqRef))).toBeLessThan(1e-5);
      expect(relErr(out.dkeys, Float32Array.from(dkRef))).toBeLessThan(1e-5);
    }
    // rows no query selected get exactly 0
    let zeroRows = 0;
    for (let row = 0; row < H * 2 * n; row++) {
      const ref = dkRef.subarray(row * half, (row + 1) * half);
      if (ref.every((v) => v === 0)) {
        zeroRows++;
        expect(nat.dkeys.subarray(row * half, (row + 1) * half).every((v) => v === 0)).toBe(true);
      }
    }
    expect(zeroRows).toBeGreaterThan(0);
    expect(() =>
      productKeyTopKBackward(
        g,
        Int32Array.from(ids, () => n * n),
        q,
        keys,
        dims,
      ),
    ).toThrow(/ids\[0\] = 576 is outside/);
  });

  it('native memory: release detaches the buffer; checksums match the TypeScript hash', async () => {
    const addon = nativeAddon()!;
    const buf = addon.allocBuffer(1 << 20);
    const u8 = new Uint8Array(buf);
    expect(u8[12345]).toBe(0);
    for (let i = 0; i < 1001; i++) u8[i] = (i * 37) & 255;
    const { hashBytes } = await import('./store-file');
    expect(addon.checksum(u8.subarray(0, 1001), 0x811c9dc5)).toBe(hashBytes(u8.subarray(0, 1001)));
    addon.release(buf);
    expect(buf.byteLength).toBe(0);
    addon.release(new ArrayBuffer(8)); // not ours: no-op
  });
});
