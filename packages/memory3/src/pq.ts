/**
 * Product quantiser of d-dim vectors (Jégou et al. 2011), optionally with a learned rotation
 * (OPQ, Ge et al. 2013): the optional vector-quantisation step of Memory³'s codec (§4.3).
 *
 *   x [d] → x R [d] → m subspaces of width ≈ d/m → code_j = nearest of 2^bits centroids   [m] bytes
 *   decode: ĉ = concat_j centroid_j[code_j] [d] → x̂ = ĉ Rᵀ
 *
 * Training: seeded k-means++ then Lloyd iterations, per subspace. With `rotation`, alternate a PQ
 * fit on X R and an orthogonal Procrustes step R = argmin ‖X R − Ŷ‖ (pq-svd.ts), then refit.
 */
import { CheckpointError, ConfigError, ShapeError, ValueError, checkInt, mulberry32, subSeed } from '@mnemo/core';
import { procrustes } from './pq-svd';

export interface PqTrainOptions {
  /** m: subspaces (bytes per vector at 8 bits); widths differ by at most 1 when m ∤ d */
  subspaces: number;
  /** bits per code, ≤ 8 (one byte per subspace); default 8 → 256 centroids */
  bits?: number;
  /** Lloyd iterations per k-means (default 20) */
  iters?: number;
  seed?: number;
  /** learn an orthogonal rotation first (OPQ); default false */
  rotation?: boolean;
  /** OPQ alternations of (PQ fit, Procrustes) (default 6) */
  rotationIters?: number;
}

export class ProductQuantizer {
  /** subspace j spans dims [bounds[j], bounds[j+1]) */
  readonly bounds: Int32Array;
  readonly centroids: number;

  constructor(
    readonly dim: number,
    readonly subspaces: number,
    readonly bits: number,
    /** per subspace j: [2^bits, width_j] row-major, concatenated: offset 2^bits · bounds[j] */
    readonly codebooks: Float32Array,
    /** R [dim, dim] row-major (x → x R), or null */
    readonly rotation: Float32Array | null,
  ) {
    checkInt('dim', dim);
    checkInt('subspaces', subspaces, 1, dim);
    checkInt('bits', bits, 1, 8);
    this.centroids = 2 ** bits;
    this.bounds = subspaceBounds(dim, subspaces);
    if (codebooks.length !== this.centroids * dim)
      throw new ShapeError('codebooks', `has ${codebooks.length} values, expected 2^${bits} × ${dim}`);
    if (rotation && rotation.length !== dim * dim) throw new ShapeError('rotation', `has ${rotation.length} values, expected ${dim}²`);
  }

  /** bytes one encoded vector takes */
  get bytesPerVector(): number {
    return this.subspaces;
  }

  /** x [n, dim] → codes [n, m] */
  encode(x: Float32Array): Uint8Array {
    const n = this.rows(x);
    const y = this.rotation ? rotate(x, n, this.dim, this.rotation, false) : x;
    const codes = new Uint8Array(n * this.subspaces);
    for (let j = 0; j < this.subspaces; j++) {
      const lo = this.bounds[j]!;
      const w = this.bounds[j + 1]! - lo;
      const cb = this.codebooks.subarray(this.centroids * lo, this.centroids * (lo + w));
      const norms = centroidNorms(cb, this.centroids, w);
      for (let r = 0; r < n; r++) codes[r * this.subspaces + j] = nearest(y, r * this.dim + lo, cb, norms, this.centroids, w);
    }
    return codes;
  }

  /** codes [n, m] → x̂ [n, dim] */
  decode(codes: Uint8Array): Float32Array {
    if (codes.length % this.subspaces !== 0)
      throw new ShapeError('codes', `length ${codes.length} is not a multiple of m = ${this.subspaces}`);
    const n = codes.length / this.subspaces;
    const y = new Float32Array(n * this.dim);
    for (let r = 0; r < n; r++)
      for (let j = 0; j < this.subspaces; j++) {
        const lo = this.bounds[j]!;
        const w = this.bounds[j + 1]! - lo;
        const c = this.centroids * lo + codes[r * this.subspaces + j]! * w;
        for (let t = 0; t < w; t++) y[r * this.dim + lo + t] = this.codebooks[c + t]!;
      }
    return this.rotation ? rotate(y, n, this.dim, this.rotation, true) : y;
  }

  /** Σ‖x − x̂‖² / Σ‖x‖² over the rows of x [n, dim] */
  relativeError(x: Float32Array): number {
    return relativeError(x, this.decode(this.encode(x)));
  }

  private rows(x: Float32Array): number {
    if (x.length % this.dim !== 0) throw new ShapeError('vectors', `length ${x.length} is not a multiple of dim = ${this.dim}`);
    return x.length / this.dim;
  }
}

/** Σ‖x − y‖² / Σ‖x‖² */
export function relativeError(x: Float32Array, y: Float32Array): number {
  let err = 0;
  let norm = 0;
  for (let i = 0; i < x.length; i++) {
    err += (x[i]! - y[i]!) ** 2;
    norm += x[i]! ** 2;
  }
  return norm === 0 ? 0 : err / norm;
}

export function subspaceBounds(dim: number, m: number): Int32Array {
  return Int32Array.from({ length: m + 1 }, (_, j) => Math.round((j * dim) / m));
}

/** Train a product quantiser on `vectors` [n, dim]; needs n ≥ 2^bits. */
export function trainProductQuantizer(vectors: Float32Array, dim: number, opts: PqTrainOptions): ProductQuantizer {
  checkInt('dim', dim);
  const m = checkInt('subspaces', opts.subspaces, 1, dim);
  const bits = checkInt('bits', opts.bits ?? 8, 1, 8);
  const iters = checkInt('iters', opts.iters ?? 20, 1, 1000);
  const seed = opts.seed ?? 0;
  if (vectors.length % dim !== 0) throw new ShapeError('vectors', `length ${vectors.length} is not a multiple of dim = ${dim}`);
  const n = vectors.length / dim;
  const k = 2 ** bits;
  if (n < k) throw new ValueError('vectors', `${n} training vectors for 2^${bits} = ${k} centroids; sample at least ${k} (10× is better)`);
  if (!opts.rotation) return new ProductQuantizer(dim, m, bits, fitCodebooks(vectors, n, dim, m, k, iters, seed, null), null);

  const rounds = checkInt('rotationIters', opts.rotationIters ?? 6, 1, 100);
  let r = identity(dim);
  let books: Float32Array | null = null;
  for (let t = 0; t < rounds; t++) {
    const xr = rotate(vectors, n, dim, r, false);
    books = fitCodebooks(xr, n, dim, m, k, Math.max(2, Math.ceil(iters / 4)), subSeed(seed, `opq${t}`), books);
    const yhat = new ProductQuantizer(dim, m, bits, books, null).decode(new ProductQuantizer(dim, m, bits, books, null).encode(xr));
    const mt = new Float64Array(dim * dim); // Xᵀ Ŷ [dim, dim]
    for (let row = 0; row < n; row++) {
      const o = row * dim;
      for (let i = 0; i < dim; i++) {
        const xi = vectors[o + i]!;
        if (xi === 0) continue;
        const mo = i * dim;
        for (let j = 0; j < dim; j++) mt[mo + j] = mt[mo + j]! + xi * yhat[o + j]!;
      }
    }
    r = Float32Array.from(procrustes(mt, dim));
  }
  const xr = rotate(vectors, n, dim, r, false);
  return new ProductQuantizer(dim, m, bits, fitCodebooks(xr, n, dim, m, k, iters, subSeed(seed, 'final'), books), r);
}

function identity(d: number): Float32Array {
  const r = new Float32Array(d * d);
  for (let i = 0; i < d; i++) r[i * d + i] = 1;
  return r;
}

/** x [n, d] → x R (or x Rᵀ) */
function rotate(x: Float32Array, n: number, d: number, r: Float32Array, transpose: boolean): Float32Array {
  const y = new Float32Array(n * d);
  const row = new Float64Array(d);
  for (let a = 0; a < n; a++) {
    row.fill(0);
    for (let i = 0; i < d; i++) {
      const xi = x[a * d + i]!;
      if (xi === 0) continue;
      if (transpose) for (let j = 0; j < d; j++) row[j] = row[j]! + xi * r[j * d + i]!;
      else for (let j = 0; j < d; j++) row[j] = row[j]! + xi * r[i * d + j]!;
    }
    for (let j = 0; j < d; j++) y[a * d + j] = row[j]!;
  }
  return y;
}

/** k-means per subspace; `init` warm-starts from earlier codebooks (OPQ rounds). */
function fitCodebooks(
  x: Float32Array,
  n: number,
  dim: number,
  m: number,
  k: number,
  iters: number,
  seed: number,
  init: Float32Array | null,
): Float32Array {
  const bounds = subspaceBounds(dim, m);
  const books = new Float32Array(k * dim);
  for (let j = 0; j < m; j++) {
    const lo = bounds[j]!;
    const w = bounds[j + 1]! - lo;
    const sub = new Float32Array(n * w); // [n, w]
    for (let r = 0; r < n; r++) for (let t = 0; t < w; t++) sub[r * w + t] = x[r * dim + lo + t]!;
    const start = init ? init.slice(k * lo, k * (lo + w)) : kmeansPlusPlus(sub, n, w, k, mulberry32(subSeed(seed, `sub${j}`)));
    books.set(lloyd(sub, n, w, start, k, iters, mulberry32(subSeed(seed, `lloyd${j}`))), k * lo);
  }
  return books;
}

/** k-means++ seeding: [k, w] */
function kmeansPlusPlus(x: Float32Array, n: number, w: number, k: number, rng: () => number): Float32Array {
  const c = new Float32Array(k * w);
  const d2 = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
  let pick = Math.floor(rng() * n);
  for (let ci = 0; ci < k; ci++) {
    c.set(x.subarray(pick * w, pick * w + w), ci * w);
    let total = 0;
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let t = 0; t < w; t++) s += (x[r * w + t]! - c[ci * w + t]!) ** 2;
      if (s < d2[r]!) d2[r] = s;
      total += d2[r]!;
    }
    if (total === 0) {
      pick = Math.floor(rng() * n); // all points covered: duplicates are harmless
      continue;
    }
    let u = rng() * total;
    pick = n - 1;
    for (let r = 0; r < n; r++) {
      u -= d2[r]!;
      if (u <= 0) {
        pick = r;
        break;
      }
    }
  }
  return c;
}

/** Lloyd iterations from `c` [k, w]; an empty cluster takes the point farthest from its centroid. */
function lloyd(x: Float32Array, n: number, w: number, c: Float32Array, k: number, iters: number, rng: () => number): Float32Array {
  const assign = new Int32Array(n);
  const dist = new Float64Array(n);
  for (let it = 0; it < iters; it++) {
    const norms = centroidNorms(c, k, w);
    let changed = 0;
    for (let r = 0; r < n; r++) {
      const a = nearest(x, r * w, c, norms, k, w);
      if (a !== assign[r] || it === 0) changed++;
      assign[r] = a;
      let s = 0;
      for (let t = 0; t < w; t++) s += (x[r * w + t]! - c[a * w + t]!) ** 2;
      dist[r] = s;
    }
    if (changed === 0) break;
    const sum = new Float64Array(k * w);
    const count = new Int32Array(k);
    for (let r = 0; r < n; r++) {
      const a = assign[r]!;
      count[a] = count[a]! + 1;
      for (let t = 0; t < w; t++) sum[a * w + t] = sum[a * w + t]! + x[r * w + t]!;
    }
    for (let a = 0; a < k; a++) {
      if (count[a]! > 0) {
        for (let t = 0; t < w; t++) c[a * w + t] = sum[a * w + t]! / count[a]!;
        continue;
      }
      let far = Math.floor(rng() * n);
      for (let r = 0; r < n; r++) if (dist[r]! > dist[far]!) far = r;
      dist[far] = 0;
      c.set(x.subarray(far * w, far * w + w), a * w);
    }
  }
  return c;
}

function centroidNorms(c: Float32Array, k: number, w: number): Float64Array {
  const out = new Float64Array(k);
  for (let a = 0; a < k; a++) {
    let s = 0;
    for (let t = 0; t < w; t++) s += c[a * w + t]! ** 2;
    out[a] = s;
  }
  return out;
}

/** argmin_a ‖x[o : o+w] − c_a‖² = argmin_a ‖c_a‖² − 2 x·c_a */
function nearest(x: Float32Array, o: number, c: Float32Array, norms: Float64Array, k: number, w: number): number {
  let best = 0;
  let bestD = Number.POSITIVE_INFINITY;
  for (let a = 0; a < k; a++) {
    let dot = 0;
    const co = a * w;
    for (let t = 0; t < w; t++) dot += x[o + t]! * c[co + t]!;
    const dd = norms[a]! - 2 * dot;
    if (dd < bestD) {
      bestD = dd;
      best = a;
    }
  }
  return best;
}

const PQ_MAGIC = 0x3151504d; // 'MPQ1'

/** [magic, dim, m, bits, hasRotation] u32 + codebooks f32 + rotation f32 */
export function serializeQuantizer(q: ProductQuantizer): Uint8Array {
  const rot = q.rotation?.length ?? 0;
  const out = new Uint8Array(20 + 4 * (q.codebooks.length + rot));
  const dv = new DataView(out.buffer);
  [PQ_MAGIC, q.dim, q.subspaces, q.bits, q.rotation ? 1 : 0].forEach((v, i) => dv.setUint32(4 * i, v, true));
  out.set(new Uint8Array(q.codebooks.buffer, q.codebooks.byteOffset, q.codebooks.byteLength), 20);
  if (q.rotation) out.set(new Uint8Array(q.rotation.buffer, q.rotation.byteOffset, q.rotation.byteLength), 20 + 4 * q.codebooks.length);
  return out;
}

export function deserializeQuantizer(bytes: Uint8Array, file = 'quantizer'): ProductQuantizer {
  if (bytes.length < 20) throw new CheckpointError(file, `product quantiser is ${bytes.length} bytes, too short`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [magic, dim, m, bits, hasRot] = [0, 1, 2, 3, 4].map((i) => dv.getUint32(4 * i, true)) as [number, number, number, number, number];
  if (magic !== PQ_MAGIC) throw new CheckpointError(file, 'not a product quantiser (bad magic)');
  if (bits < 1 || bits > 8 || dim < 1 || m < 1 || m > dim) throw new CheckpointError(file, `bad header dim ${dim}, m ${m}, bits ${bits}`);
  const nb = 2 ** bits * dim;
  const nr = hasRot ? dim * dim : 0;
  if (bytes.length !== 20 + 4 * (nb + nr))
    throw new CheckpointError(file, `product quantiser is ${bytes.length} bytes, expected ${20 + 4 * (nb + nr)}`);
  const f = new Float32Array(new Uint8Array(bytes.subarray(20)).buffer); // an aligned copy
  return new ProductQuantizer(dim, m, bits, f.slice(0, nb), hasRot ? f.slice(nb) : null);
}

/** refuse a quantiser whose dim differs from what the caller needs */
export function checkQuantizerDim(q: ProductQuantizer, dim: number, field: string): void {
  if (q.dim !== dim)
    throw new ConfigError(field, `quantiser dim is ${q.dim}, the memories' head dim is ${dim}; train one on vectors of width ${dim}`);
}
