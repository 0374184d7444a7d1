/**
 * One rank of a PoolService (pool-service.ts): loads its shard, then serves calls. Rank 0 waits
 * for the caller's request in the shared control block and broadcasts it; every rank forwards its
 * slice of the bags; rank 0 gathers the outputs into the request buffer and wakes the caller.
 */
import { DONE, ERR_AT, FAILED, OP_CLOSE, OP_LOOKUP, OP_READ, LOAD_FAILED, READY, REQUEST } from './pool-service';
import { ShardedPool, groupData, openGroup } from './index';

const { file, ctl: ctlBuf, data } = groupData<{ file: string; ctl: SharedArrayBuffer; data: SharedArrayBuffer }>();
const group = openGroup();
const ctl = new Int32Array(ctlBuf);
const P = group.size;
const root = group.rank === 0;

function writeError(e: unknown): void {
  const msg = String((e as Error)?.message ?? e).slice(0, 1000);
  for (let i = 0; i < msg.length; i++) ctl[ERR_AT + i] = msg.charCodeAt(i);
  Atomics.store(ctl, 5, msg.length);
}

function fail(e: unknown): void {
  writeError(e);
  Atomics.store(ctl, 0, FAILED);
  Atomics.notify(ctl, 0);
}

let pool: ShardedPool;
try {
  pool = ShardedPool.load(group, file);
} catch (e) {
  writeError(e);
  Atomics.store(ctl, LOAD_FAILED, 1); // PoolService.start throws this error and stops the other ranks
  throw e;
}
Atomics.add(ctl, READY, 1);
const table = pool.table;
for (;;) {
  if (root) while (Atomics.load(ctl, 0) !== REQUEST) Atomics.wait(ctl, 0, Atomics.load(ctl, 0));
  let op = 0;
  try {
    // [op, B, K, n] from rank 0
    const h = group.broadcast(root ? Int32Array.of(ctl[1]!, ctl[2]!, ctl[3]!, ctl[4]!) : new Int32Array(4), 0);
    op = h[0]!;
    const [B, K, n] = [h[1]!, h[2]!, h[3]!];
    if (op === OP_LOOKUP) {
      const b = Math.ceil(B / P); // bags per rank; the last ranks' tail is padding (id −1: a zero bag)
      const ids = new Int32Array(P * b * K).fill(-1);
      const w = new Float32Array(P * b * K);
      if (root) {
        ids.set(new Int32Array(data, 0, B * K));
        w.set(new Float32Array(data, 4 * B * K, B * K));
      }
      const allIds = group.broadcast(ids, 0);
      const allW = group.broadcast(w, 0);
      const r = group.rank;
      const out = table.forward(allIds.subarray(r * b * K, (r + 1) * b * K), allW.subarray(r * b * K, (r + 1) * b * K), K, b); // [b, dv]
      const all = group.allGather(out); // [P·b, dv]
      if (root) new Float32Array(data, 8 * B * K, B * table.dim).set(all.subarray(0, B * table.dim));
    } else if (op === OP_READ) {
      const rows = table.readRows(root ? new Int32Array(data, 0, n).slice() : new Int32Array(0)); // a collective
      if (root) new Float32Array(data, 4 * n, n * table.dim).set(rows);
    }
    if (root) {
      Atomics.store(ctl, 0, DONE);
      Atomics.notify(ctl, 0);
    }
  } catch (e) {
    if (root) fail(e);
    throw e;
  }
  if (op === OP_CLOSE) break;
}
pool.dispose();
group.close();
