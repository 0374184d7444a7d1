/**
 * RowShardedTable: the value table V [N, dv] split by ROWS over a ProcessGroup of P ranks
 * (docs/design.md §5.2). Row r lives on rank r mod P as local row r div P (modulo spreads the n
 * consecutive ids of a hot first-half key); each rank's rows are a kernels ValueStore with the
 * same optimizer. It implements ValueTable for the rank's own tokens; every rank makes the same
 * calls (SPMD) with the same B and K.
 *
 *   forward(ids, w [B, K])
 *     1  all-to-all (v) of the entries to their row owners: (position b·K+j, local row) int32
 *        pairs and the weight — 12 bytes per entry that leaves this rank
 *     2  each owner lays what it got into bags [P·B, K] (−1 where another rank owns the row),
 *        runs the local bag, and returns each source token it touched as a partial bag [dv]
 *     3  the source sums its tokens' partial bags over owners (in rank order) → out [B, dv]
 *   backward(ids, w, gOut [B, dv])
 *     1  gOut[b] to each owner that contributed to token b
 *     2  the owner computes gw of its entries and updates its rows (fused) — whole rows, so row
 *        clip and row-wise Adam run unchanged; gw back per entry (4 bytes each)
 * Bytes sent per rank (uniform ids, ρ = remote owners per token): 16·B·K·(P−1)/P + 8·B·dv·ρ.
 * Exactness: row updates are the unsharded arithmetic (the owner sees the entries in global
 * order); out is a sum over owners in a different order than one bag (rounding only); gw exact.
 * Refused: clip 'global' (one norm over every touched row of every rank).
 */
import { ConfigError, DisposedError, ShapeError, ValueError, checkInt } from '@mnemo/core';
import {
  type BackwardOptions,
  type OptimizerConfig,
  type StepOptions,
  type ValueTable,
  type ValueTableStats,
  ValueStore,
  resolveOptimizer,
} from '@mnemo/kernels';
import type { ShardedTableOptions } from './dim-sharded';
import type { ProcessGroup } from './process-group';
import { initRows } from './shard-init';

/** The routing of one forward, kept for its backward. */
interface Routed {
  weights: Float32Array;
  B: number;
  K: number;
  /** source side: per owner q, positions b·K+j sent (in order) and the distinct tokens b sent */
  sentPos: Int32Array[];
  sentTok: Int32Array[];
  /** owner side: local bags of every source's entries [P·B, K] */
  li: Int32Array;
  lw: Float32Array;
  /** owner side: per source s, the positions received (in order) and its distinct tokens */
  gotPos: Int32Array[];
  gotTok: Int32Array[];
}

/** Rows of rank q of P when N rows are dealt modulo P. */
export function localRows(N: number, P: number, q: number): number {
  return Math.ceil((N - q) / P);
}

export class RowShardedTable implements ValueTable {
  readonly rows: number;
  readonly dim: number;
  /** this rank's rows r ≡ rank (mod P): a ValueStore [⌈(N − rank)/P⌉, dv] */
  readonly shard: ValueStore;
  private readonly cache = new WeakMap<Int32Array, Routed>();

  constructor(
    readonly group: ProcessGroup,
    opts: ShardedTableOptions | { shard: ValueStore; rows: number },
  ) {
    const P = group.size;
    if ('shard' in opts) {
      this.shard = opts.shard;
      this.rows = opts.rows;
    } else {
      this.rows = checkInt('rows', opts.rows, 1, 2 ** 31 - 1);
      if (this.rows < P) throw new ConfigError('rows', `N = ${this.rows} must be ≥ the group size P = ${P}`);
      checkRowOptimizer(opts.optimizer);
      this.shard = ValueStore.create({
        rows: localRows(this.rows, P, group.rank),
        dim: opts.dim,
        dtype: opts.dtype,
        optimizer: opts.optimizer,
        init: 'zeros',
        deferred: opts.deferred,
      });
      initRows(this.shard, this.rows, opts.dim, group.rank, P, opts.init ?? { kind: 'normal', std: opts.dim ** -0.5, seed: 0 });
    }
    this.dim = this.shard.dim;
    if (this.shard.rows !== localRows(this.rows, P, group.rank)) {
      throw new ShapeError(
        'shard',
        `holds ${this.shard.rows} rows; rank ${group.rank} of ${P} over N = ${this.rows} needs ${localRows(this.rows, P, group.rank)}`,
      );
    }
  }

  get disposed(): boolean {
    return this.shard.disposed;
  }

  private live(): void {
    if (this.shard.disposed) throw new DisposedError('RowShardedTable: used after dispose()');
  }

  private route(ids: Int32Array, weights: Float32Array, K: number, batch: number | undefined): Routed {
    if (!(ids instanceof Int32Array)) throw new ShapeError('ids', 'must be an Int32Array [B, K]');
    if (!(weights instanceof Float32Array) || weights.length !== ids.length)
      throw new ShapeError('weights', `must be a Float32Array [B, K] of ${ids.length} values`);
    const P = this.group.size;
    const B = K > 0 ? ids.length / K : (batch ?? 0);
    // validate before the first collective, and share the verdict: every rank throws, none waits
    const rows = this.rows;
    let bad = -1;
    for (let i = 0; i < ids.length && bad < 0; i++) {
      const r = ids[i]!;
      if (r < -1 || r >= rows || (r >= 0 && !Number.isFinite(weights[i]!))) bad = i;
    }
    const dims = this.group.allGather(Int32Array.of(B, K, bad, bad >= 0 ? ids[bad]! : 0));
    for (let q = 0; q < P; q++) {
      const [Bq, Kq, badq, idq] = [dims[4 * q]!, dims[4 * q + 1]!, dims[4 * q + 2]!, dims[4 * q + 3]!];
      if (Bq !== B || Kq !== K)
        throw new ShapeError('ids', `rank ${q} looks up [${Bq}, ${Kq}], this rank [${B}, ${K}]: every rank must pass the same [B, K]`);
      if (badq >= 0) {
        throw new ValueError(
          q === this.group.rank && ids[badq]! >= -1 && ids[badq]! < rows ? 'weights' : 'ids',
          `rank ${q}, element ${badq}: id ${idq}${q === this.group.rank ? `, weight ${weights[badq]}` : ''}; ids must be in [0, ${rows}) or -1 and weights finite`,
        );
      }
    }
    // 1. entries to their owners: one buffer, owner-major (prefix offsets), positions increasing
    const count = new Int32Array(P);
    for (let i = 0; i < ids.length; i++) if (ids[i]! >= 0) count[ids[i]! % P]!++;
    const start = new Int32Array(P + 1);
    for (let q = 0; q < P; q++) start[q + 1] = start[q]! + count[q]!;
    const pairs = new Int32Array(2 * start[P]!); // (position, local row)
    const ws = new Float32Array(start[P]!);
    const sentPosAll = new Int32Array(start[P]!);
    const fill = start.slice(0, P);
    for (let i = 0; i < ids.length; i++) {
      const r = ids[i]!;
      if (r < 0) continue;
      const q = r % P;
      const n = fill[q]!++;
      pairs[2 * n] = i;
      pairs[2 * n + 1] = (r - q) / P;
      ws[n] = weights[i]!;
      sentPosAll[n] = i;
    }
    const counts = Array.from(count);
    const gotPairs = this.group.allToAllV(
      pairs,
      counts.map((c) => 2 * c),
    );
    const gotW = this.group.allToAllV(ws, counts);
    // 2. the owner's bags [P·B, K]
    const li = new Int32Array(P * B * K).fill(-1);
    const lw = new Float32Array(P * B * K);
    const gotPos: Int32Array[] = [];
    const gotTok: Int32Array[] = [];
    let off = 0;
    for (let s = 0; s < P; s++) {
      const c = gotW.counts[s]!;
      const pos = new Int32Array(c);
      for (let n = 0; n < c; n++) {
        const p = gotPairs.data[2 * (off + n)]!;
        pos[n] = p;
        li[s * B * K + p] = gotPairs.data[2 * (off + n) + 1]!;
        lw[s * B * K + p] = gotW.data[off + n]!;
      }
      off += c;
      gotPos.push(pos);
      gotTok.push(tokensOf(pos, K));
    }
    const sentPos = Array.from({ length: P }, (_, q) => sentPosAll.subarray(start[q]!, start[q + 1]!));
    const routed: Routed = { weights, B, K, sentPos, sentTok: sentPos.map((p) => tokensOf(p, K)), li, lw, gotPos, gotTok };
    this.cache.set(ids, routed);
    return routed;
  }

  forward(ids: Int32Array, weights: Float32Array, bagSize: number, batch?: number, out?: Float32Array): Float32Array {
    this.live();
    const P = this.group.size;
    const dv = this.dim;
    const rt = this.route(ids, weights, bagSize, batch);
    const { B } = rt;
    const partial = this.shard.forward(rt.li, rt.lw, rt.K, P * B); // [P·B, dv]
    // 3. partial bags of the touched tokens back to their sources
    const send = new Float32Array(rt.gotTok.reduce((a, t) => a + t.length, 0) * dv);
    let n = 0;
    for (let s = 0; s < P; s++) for (const b of rt.gotTok[s]!) send.set(partial.subarray((s * B + b) * dv, (s * B + b + 1) * dv), dv * n++);
    const recv = this.group.allToAllV(
      send,
      rt.gotTok.map((t) => t.length * dv),
    );
    out ??= new Float32Array(B * dv);
    if (out.length !== B * dv) throw new ShapeError('out', `must hold B·dv = ${B * dv} values`);
    out.fill(0);
    n = 0;
    for (let q = 0; q < P; q++)
      for (const b of rt.sentTok[q]!) {
        for (let c = 0; c < dv; c++) out[b * dv + c] = out[b * dv + c]! + recv.data[n * dv + c]!;
        n++;
      }
    return out;
  }

  backward(ids: Int32Array, weights: Float32Array, gOut: Float32Array, bagSize: number, opts: BackwardOptions = {}): Float32Array {
    this.live();
    const P = this.group.size;
    const dv = this.dim;
    const cached = this.cache.get(ids);
    const rt =
      cached && cached.weights === weights
        ? cached
        : this.route(ids, weights, bagSize, gOut instanceof Float32Array ? gOut.length / dv : 0);
    this.cache.delete(ids);
    const { B, K } = rt;
    if (!(gOut instanceof Float32Array) || gOut.length !== B * dv)
      throw new ShapeError('gOut', `must be a Float32Array [B=${B}, dv=${dv}]`);
    // 1. gOut[b] to every owner that touched token b
    const send = new Float32Array(rt.sentTok.reduce((a, t) => a + t.length, 0) * dv);
    let n = 0;
    for (let q = 0; q < P; q++) for (const b of rt.sentTok[q]!) send.set(gOut.subarray(b * dv, (b + 1) * dv), dv * n++);
    const recv = this.group.allToAllV(
      send,
      rt.sentTok.map((t) => t.length * dv),
    );
    const gLocal = new Float32Array(P * B * dv); // [P·B, dv], zero for tokens that touched no row here
    n = 0;
    for (let s = 0; s < P; s++) for (const b of rt.gotTok[s]!) gLocal.set(recv.data.subarray(dv * n, dv * ++n), (s * B + b) * dv);
    // 2. gw of my entries and the update of my rows; gw back to the sources
    const gwLocal = this.shard.backward(rt.li, rt.lw, gLocal, K, opts); // [P·B, K]
    const back = new Float32Array(rt.gotPos.reduce((a, p) => a + p.length, 0));
    n = 0;
    for (let s = 0; s < P; s++) for (const p of rt.gotPos[s]!) back[n++] = gwLocal[s * B * K + p]!;
    const gwRecv = this.group.allToAllV(
      back,
      rt.gotPos.map((p) => p.length),
    );
    const gw = new Float32Array(B * K);
    n = 0;
    for (let q = 0; q < P; q++) for (const p of rt.sentPos[q]!) gw[p] = gwRecv.data[n++]!;
    return gw;
  }

  step(opts: StepOptions = {}): number {
    this.live();
    return this.shard.step(opts);
  }

  /** Collective: rows [n, dv] of this rank's ids. */
  readRows(ids: Int32Array): Float32Array {
    this.live();
    const { perOwner, counts } = this.split(ids, true);
    const P = this.group.size;
    const dv = this.dim;
    const asked = this.group.allToAllV(concatI(perOwner.map((o) => o.lids)), counts);
    const rows = this.shard.readRows(asked.data); // [Σ, dv]
    const recv = this.group.allToAllV(
      rows,
      asked.counts.map((c) => c * dv),
    );
    const out = new Float32Array(ids.length * dv);
    let n = 0;
    for (let q = 0; q < P; q++) for (const i of perOwner[q]!.at) out.set(recv.data.subarray(n * dv, ++n * dv), i * dv);
    return out;
  }

  /** Collective: overwrite rows (float32 [n, dv]) of this rank's ids. */
  writeRows(ids: Int32Array, rows: Float32Array): void {
    this.live();
    const dv = this.dim;
    if (!(rows instanceof Float32Array) || rows.length !== ids.length * dv)
      throw new ShapeError('rows', `expected a Float32Array [n=${ids.length}, dv=${dv}]`);
    const { perOwner, counts } = this.split(ids, false);
    const asked = this.group.allToAllV(concatI(perOwner.map((o) => o.lids)), counts);
    const send = new Float32Array(rows.length);
    let n = 0;
    for (const o of perOwner) for (const i of o.at) send.set(rows.subarray(i * dv, (i + 1) * dv), dv * n++);
    const recv = this.group.allToAllV(
      send,
      counts.map((c) => c * dv),
    );
    this.shard.writeRows(asked.data, recv.data);
  }

  /** ids by owner: local ids and where they sit in `ids` (−1 stays home as a zero row). */
  private split(ids: Int32Array, allowPadding: boolean): { perOwner: { lids: Int32Array; at: number[] }[]; counts: number[] } {
    if (!(ids instanceof Int32Array)) throw new ShapeError('ids', 'must be an Int32Array of row ids');
    const P = this.group.size;
    const lists = Array.from({ length: P }, () => ({ lids: [] as number[], at: [] as number[] }));
    for (let i = 0; i < ids.length; i++) {
      const r = ids[i]!;
      if (r === -1 && allowPadding) continue;
      if (!Number.isInteger(r) || r < 0 || r >= this.rows)
        throw new ShapeError('ids', `element ${i} is ${r}; ids must be in [0, ${this.rows})${allowPadding ? ' or -1' : ''}`);
      lists[r % P]!.lids.push((r - (r % P)) / P);
      lists[r % P]!.at.push(i);
    }
    return { perOwner: lists.map((l) => ({ lids: Int32Array.from(l.lids), at: l.at })), counts: lists.map((l) => l.lids.length) };
  }

  /** This rank's table: rows N, dim dv; valueBytes/stateBytes/bytes are this rank's shard. */
  stats(): ValueTableStats {
    this.live();
    return { ...this.shard.stats(), rows: this.rows, dim: this.dim };
  }

  /** This rank's rows as a store file ([⌈(N − rank)/P⌉, dv] with their optimizer state). */
  save(file: string): void {
    this.shard.save(file);
  }

  dispose(): void {
    this.shard.dispose();
  }
}

/** Distinct tokens b = pos div K of increasing positions. */
function tokensOf(pos: Int32Array, K: number): Int32Array {
  const t: number[] = [];
  for (const p of pos) {
    const b = Math.floor(p / K);
    if (t.length === 0 || t[t.length - 1] !== b) t.push(b);
  }
  return Int32Array.from(t);
}

function concatI(parts: Int32Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function concatF(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Whole rows stay on one rank: only a norm over every rank's rows is refused. */
export function checkRowOptimizer(cfg: OptimizerConfig): void {
  const o = resolveOptimizer(cfg);
  if (o.clip?.mode === 'global') {
    throw new ConfigError(
      'optimizer.clip',
      "'global' clipping needs one norm over the touched rows of every rank; use clip 'row' or no clip with a sharded pool",
    );
  }
}
