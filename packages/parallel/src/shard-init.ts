/**
 * Initial values of a shard that equal the same part of the unsharded table for the same seed.
 * The unsharded ValueStore fills V [N, dv] row-major from one seeded stream (mulberry32, two
 * Box–Muller normals per pair of uniforms, kernels/table-config.ts fillInit); a shard replays that
 * stream once and keeps its own columns (dim-sharding) or rows (row-sharding), so the
 * concatenation of the shards IS the single-rank table, whatever P is. Time O(N·dv) per rank,
 * memory only the shard. Values are written through writeRows in blocks of rows.
 */
import { mulberry32 } from '@mnemo/core';
import type { InitConfig, ValueTable } from '@mnemo/kernels';

/** Replay the unsharded init stream row by row: visit(r, row [dv]) for every row r. */
function replay(rows: number, dim: number, init: Exclude<InitConfig, 'zeros'>, visit: (r: number, row: Float32Array) => void): void {
  const rand = mulberry32(init.seed ?? 0);
  const row = new Float32Array(dim);
  let spare = Number.NaN; // the second normal of a pair that straddles two rows (odd dv)
  for (let r = 0; r < rows; r++) {
    let c = 0;
    if (!Number.isNaN(spare)) {
      row[c++] = spare;
      spare = Number.NaN;
    }
    while (c < dim) {
      const u1 = 1 - rand();
      const u2 = rand();
      const rad = init.std * Math.sqrt(-2 * Math.log(u1));
      row[c++] = rad * Math.cos(2 * Math.PI * u2);
      const b = rad * Math.sin(2 * Math.PI * u2);
      if (c < dim) row[c++] = b;
      else if (r + 1 < rows) spare = b;
    }
    visit(r, row);
  }
}

const BLOCK = 4096;

/** Write columns [c0, c1) of the unsharded init into `shard` ([N, c1 − c0]). */
export function initColumns(shard: ValueTable, dim: number, c0: number, c1: number, init: InitConfig): void {
  if (init === 'zeros') return;
  const w = c1 - c0;
  let ids = new Int32Array(BLOCK);
  const buf = new Float32Array(BLOCK * w);
  let n = 0;
  replay(shard.rows, dim, init, (r, row) => {
    ids[n] = r;
    buf.set(row.subarray(c0, c1), n * w);
    if (++n === BLOCK) {
      shard.writeRows(ids, buf);
      n = 0;
    }
  });
  if (n > 0) {
    ids = ids.slice(0, n);
    shard.writeRows(ids, buf.slice(0, n * w));
  }
}

/** Write the rows r ≡ rank (mod P) of the unsharded init into `shard` (local row r div P). */
export function initRows(shard: ValueTable, rows: number, dim: number, rank: number, P: number, init: InitConfig): void {
  if (init === 'zeros') return;
  const ids = new Int32Array(BLOCK);
  const buf = new Float32Array(BLOCK * dim);
  let n = 0;
  replay(rows, dim, init, (r, row) => {
    if (r % P !== rank) return;
    ids[n] = (r - rank) / P;
    buf.set(row, n * dim);
    if (++n === BLOCK) {
      shard.writeRows(ids, buf);
      n = 0;
    }
  });
  if (n > 0) shard.writeRows(ids.slice(0, n), buf.slice(0, n * dim));
}
