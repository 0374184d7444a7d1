/**
 * The `local` ProcessGroup backend: P worker threads of one process (one machine; the tests).
 *
 *   const results = await LocalGroup.run(4, new URL('./my-worker.js', import.meta.url), { data });
 *   // in my-worker.js:  const group = localGroup();  …collectives…;  reportResult(value);
 *
 * Shared memory. One control block (Int32Array over a SharedArrayBuffer) holds
 *   [0]                 epoch: bumped (and notified) on every arrival and on a worker's exit
 *   seq[P]              phases each rank has entered (2 per collective)
 *   dead[P]             exit code + 1 of a worker that ended (set by the launcher), 0 while alive
 *   gen[P]              generation of each rank's slab
 *   hdr[P][P][2]        (byte offset, byte length) of the chunk rank s sends to rank d, in s's slab
 * and each rank owns a data slab (a SharedArrayBuffer it writes, its peers read). A collective is
 * one exchange: write my chunks into my slab and their headers, arrive (phase 2c+1), wait until every
 * rank has arrived, copy my chunk out of each peer's slab, arrive (2c+2) and wait again so no slab
 * is overwritten while a peer reads it. Waiting is Atomics.wait on the epoch word with the time left
 * before the deadline; a rank that has not arrived by then is named in a BackendError. A slab that
 * is too small is replaced by a bigger one, announced to each peer on a MessagePort that the peer
 * reads synchronously (receiveMessageOnPort) when it sees the new generation.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort, Worker, isMainThread, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { BackendError, ConfigError, ShapeError, UsageError } from '@mnemo/core';
import {
  type GroupStats,
  type Numeric,
  type ProcessGroup,
  blockLength,
  bytesOf,
  checkCounts,
  checkNumeric,
  sumBlocks,
  viewAs,
} from './process-group';

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_SLAB_BYTES = 1 << 20;

interface LocalInit {
  __mnemoLocalGroup: true;
  rank: number;
  size: number;
  timeoutMs: number;
  control: SharedArrayBuffer;
  slabs: SharedArrayBuffer[];
  /** ports[q]: to rank q (I announce my new slabs) — null for myself */
  out: (MessagePort | null)[];
  /** ports[q]: from rank q (q announces its new slabs) */
  in: (MessagePort | null)[];
  data: unknown;
}

class LocalProcessGroup implements ProcessGroup {
  readonly backend = 'local' as const;
  readonly rank: number;
  readonly size: number;
  readonly timeoutMs: number;
  private readonly ctl: Int32Array;
  private readonly slabs: SharedArrayBuffer[];
  private readonly gens: number[];
  private phase = 0;
  private count = 0;
  private sent = 0;
  private closed = false;
  private readonly init: LocalInit;

  constructor(init: LocalInit) {
    this.init = init;
    this.rank = init.rank;
    this.size = init.size;
    this.timeoutMs = init.timeoutMs;
    this.ctl = new Int32Array(init.control);
    this.slabs = [...init.slabs];
    this.gens = init.slabs.map(() => 0);
  }

  private seqAt(q: number): number {
    return 1 + q;
  }
  private deadAt(q: number): number {
    return 1 + this.size + q;
  }
  private genAt(q: number): number {
    return 1 + 2 * this.size + q;
  }
  private hdrAt(s: number, d: number): number {
    return 1 + 3 * this.size + (s * this.size + d) * 2;
  }

  /** Arrive at phase `target` and wait for every rank to reach it. */
  private meet(target: number, what: string): void {
    const ctl = this.ctl;
    Atomics.store(ctl, this.seqAt(this.rank), target);
    Atomics.add(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    const deadline = performance.now() + this.timeoutMs;
    for (;;) {
      const epoch = Atomics.load(ctl, 0);
      const missing: number[] = [];
      for (let q = 0; q < this.size; q++) if (Atomics.load(ctl, this.seqAt(q)) < target) missing.push(q);
      if (missing.length === 0) return;
      for (const q of missing) {
        const dead = Atomics.load(ctl, this.deadAt(q));
        if (dead !== 0) {
          this.closed = true;
          throw new BackendError(`${what}: rank ${q} exited (code ${dead - 1}) before arriving; this rank ${this.rank} stops`);
        }
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        this.closed = true;
        throw new BackendError(
          `${what} timed out after ${this.timeoutMs} ms on rank ${this.rank}: rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not arrive`,
        );
      }
      Atomics.wait(ctl, 0, epoch, left);
    }
  }

  /** The core of every collective: chunks[d] goes to rank d (null = nothing); returns what each rank sent me. */
  private exchange(name: string, chunks: (Uint8Array | null)[]): Uint8Array[] {
    if (this.closed) throw new BackendError(`${name}: the process group of rank ${this.rank} is closed`);
    this.count++;
    const what = `${name} (collective #${this.count})`;
    const P = this.size;
    // lay out distinct chunks in my slab (a chunk sent to several ranks is written once)
    const offsets = new Map<Uint8Array, number>();
    let total = 0;
    for (const c of chunks) {
      if (c && !offsets.has(c)) {
        offsets.set(c, total);
        total += (c.byteLength + 7) & ~7;
      }
    }
    this.ensureSlab(total);
    const mine = new Uint8Array(this.slabs[this.rank]!);
    for (const [c, off] of offsets) mine.set(c, off);
    for (let d = 0; d < P; d++) {
      const c = chunks[d];
      Atomics.store(this.ctl, this.hdrAt(this.rank, d), c ? offsets.get(c)! : 0);
      Atomics.store(this.ctl, this.hdrAt(this.rank, d) + 1, c ? c.byteLength : 0);
      if (c && d !== this.rank) this.sent += c.byteLength;
    }
    this.meet(++this.phase, what);
    const got: Uint8Array[] = [];
    for (let s = 0; s < P; s++) {
      const off = Atomics.load(this.ctl, this.hdrAt(s, this.rank));
      const len = Atomics.load(this.ctl, this.hdrAt(s, this.rank) + 1);
      const slab = this.slabOf(s);
      got.push(new Uint8Array(slab, off, len).slice());
    }
    this.meet(++this.phase, what);
    return got;
  }

  private ensureSlab(bytes: number): void {
    const cur = this.slabs[this.rank]!;
    if (cur.byteLength >= bytes) return;
    const next = new SharedArrayBuffer(Math.max(bytes, cur.byteLength * 2));
    const gen = this.gens[this.rank]! + 1;
    for (const port of this.init.out) port?.postMessage({ gen, slab: next });
    this.slabs[this.rank] = next;
    this.gens[this.rank] = gen;
    Atomics.store(this.ctl, this.genAt(this.rank), gen);
  }

  private slabOf(s: number): SharedArrayBuffer {
    const want = Atomics.load(this.ctl, this.genAt(s));
    while (this.gens[s]! < want) {
      const msg = receiveMessageOnPort(this.init.in[s]!);
      if (!msg) throw new BackendError(`rank ${s} announced slab generation ${want} but sent no slab`);
      const m = msg.message as { gen: number; slab: SharedArrayBuffer };
      this.slabs[s] = m.slab;
      this.gens[s] = m.gen;
    }
    return this.slabs[s]!;
  }

  allGather<T extends Numeric>(x: T): T {
    checkNumeric('x', x);
    const got = this.exchange('allGather', Array(this.size).fill(bytesOf(x)));
    for (const [q, g] of got.entries()) {
      if (g.byteLength !== x.byteLength)
        throw new ShapeError('allGather', `rank ${q} sent ${g.byteLength / 4} values, this rank ${x.length}; use allGatherV`);
    }
    return concat(x, got);
  }

  allGatherV<T extends Numeric>(x: T): { data: T; counts: number[] } {
    checkNumeric('x', x);
    const got = this.exchange('allGatherV', Array(this.size).fill(bytesOf(x)));
    return { data: concat(x, got), counts: got.map((g) => g.byteLength / 4) };
  }

  allToAll<T extends Numeric>(x: T): T {
    checkNumeric('x', x);
    const m = blockLength('allToAll', x, this.size);
    const b = bytesOf(x);
    const got = this.exchange(
      'allToAll',
      Array.from({ length: this.size }, (_, q) => b.subarray(q * m * 4, (q + 1) * m * 4)),
    );
    for (const [q, g] of got.entries())
      if (g.byteLength !== m * 4) throw new ShapeError('allToAll', `rank ${q} sent a block of ${g.byteLength / 4} values, this rank ${m}`);
    return concat(x, got);
  }

  allToAllV<T extends Numeric>(x: T, counts: readonly number[]): { data: T; counts: number[] } {
    checkNumeric('x', x);
    checkCounts('counts', counts, x.length, this.size);
    const b = bytesOf(x);
    let off = 0;
    const chunks = counts.map((c) => {
      const s = b.subarray(off * 4, (off + c) * 4);
      off += c;
      return s;
    });
    const got = this.exchange('allToAllV', chunks);
    return { data: concat(x, got), counts: got.map((g) => g.byteLength / 4) };
  }

  reduceScatter(x: Float32Array): Float32Array {
    if (!(x instanceof Float32Array)) throw new ShapeError('x', 'reduceScatter sums a Float32Array');
    const m = blockLength('reduceScatter', x, this.size);
    const b = bytesOf(x);
    const got = this.exchange(
      'reduceScatter',
      Array.from({ length: this.size }, (_, q) => b.subarray(q * m * 4, (q + 1) * m * 4)),
    );
    return sumBlocks(
      got.map((g) => viewAs(x, g)),
      m,
    );
  }

  allReduce(x: Float32Array): Float32Array {
    if (!(x instanceof Float32Array)) throw new ShapeError('x', 'allReduce sums a Float32Array');
    const got = this.exchange('allReduce', Array(this.size).fill(bytesOf(x)));
    return sumBlocks(
      got.map((g) => viewAs(x, g)),
      x.length,
    );
  }

  broadcast<T extends Numeric>(x: T, root: number): T {
    checkNumeric('x', x);
    if (!Number.isInteger(root) || root < 0 || root >= this.size)
      throw new ConfigError('root', `must be a rank in [0, ${this.size}), got ${root}`);
    const chunks = Array(this.size).fill(this.rank === root ? bytesOf(x) : null);
    const got = this.exchange('broadcast', chunks);
    const g = got[root]!;
    if (g.byteLength !== x.byteLength)
      throw new ShapeError('broadcast', `root sent ${g.byteLength / 4} values, this rank expects ${x.length}`);
    return viewAs(x, g);
  }

  barrier(): void {
    this.exchange('barrier', Array(this.size).fill(null));
  }

  stats(): GroupStats {
    return { collectives: this.count, bytesSent: this.sent };
  }

  resetStats(): void {
    this.count = 0;
    this.sent = 0;
  }

  close(): void {
    this.closed = true;
  }
}

function concat<T extends Numeric>(like: T, parts: Uint8Array[]): T {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const C = like.constructor as new (n: number) => T;
  const out = new C(n / 4);
  const b = bytesOf(out);
  let off = 0;
  for (const p of parts) {
    b.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** True inside a worker started by LocalGroup.run. */
export function inLocalGroup(): boolean {
  return !isMainThread && (workerData as LocalInit | null)?.__mnemoLocalGroup === true;
}

let current: LocalProcessGroup | null = null;

/** This worker's ProcessGroup (inside a worker started by LocalGroup.run). */
export function localGroup(): ProcessGroup {
  if (!inLocalGroup()) throw new UsageError('localGroup(): call it inside a worker started by LocalGroup.run');
  current ??= new LocalProcessGroup(workerData as LocalInit);
  return current;
}

/** The `data` LocalGroup.run passed to this worker. */
export function localGroupData<T = unknown>(): T {
  if (!inLocalGroup()) throw new UsageError('localGroupData(): call it inside a worker started by LocalGroup.run');
  return (workerData as LocalInit).data as T;
}

/** Send this worker's result back to LocalGroup.run (structured clone; typed arrays are fine). */
export function reportResult(value: unknown): void {
  parentPort?.postMessage({ __mnemoResult: value });
}

export interface LocalRunOptions {
  /** given to every worker (structured clone); read it with localGroupData() */
  data?: unknown;
  /** per-collective timeout in ms (default 30 000) */
  timeoutMs?: number;
  /** initial slab bytes per rank (grows on demand; default 1 MiB) */
  slabBytes?: number;
  /** extra node flags for the workers (TypeScript workers get --conditions=mnemo-source) */
  execArgv?: string[];
}

export interface LocalRankResult<T> {
  rank: number;
  /** what the worker passed to reportResult, or undefined */
  result: T | undefined;
  /** the worker's uncaught error, if it failed */
  error?: Error;
  exitCode: number;
}

/** tsx's ESM register API (TypeScript workers; tsx is a dev tool, not a dependency). */
function tsxEsmApi(): string {
  try {
    return path.join(path.dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist', 'esm', 'api', 'index.mjs');
  } catch {
    throw new UsageError('LocalGroup.run: a .ts worker needs tsx installed (npm i -D tsx), or pass a built .js worker');
  }
}

/** Launch P worker threads running `file`, each with a `local` ProcessGroup; resolves when all end. */
async function run<T = unknown>(P: number, file: string | URL, opts: LocalRunOptions = {}): Promise<LocalRankResult<T>[]> {
  if (!Number.isInteger(P) || P < 1 || P > 256) throw new ConfigError('P', `must be an integer in [1, 256], got ${P}`);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new ConfigError('timeoutMs', `must be > 0, got ${timeoutMs}`);
  const control = new SharedArrayBuffer(4 * (1 + 3 * P + 2 * P * P));
  const ctl = new Int32Array(control);
  const slabs = Array.from({ length: P }, () => new SharedArrayBuffer(opts.slabBytes ?? DEFAULT_SLAB_BYTES));
  const out: (MessagePort | null)[][] = Array.from({ length: P }, () => Array(P).fill(null));
  const inn: (MessagePort | null)[][] = Array.from({ length: P }, () => Array(P).fill(null));
  for (let s = 0; s < P; s++)
    for (let d = 0; d < P; d++)
      if (s !== d) {
        const ch = new MessageChannel();
        out[s]![d] = ch.port1;
        inn[d]![s] = ch.port2;
      }
  const file_ = file instanceof URL ? file.pathname : file.startsWith('file:') ? new URL(file).pathname : file;
  const ts = file_.endsWith('.ts');
  const tsx = ts ? tsxEsmApi() : '';
  const boot = `const { workerData } = require('node:worker_threads');
(async () => { const { register } = await import(${JSON.stringify(pathToFileURL(tsx).href)}); register(); await import(${JSON.stringify(pathToFileURL(file_).href)}); })().catch((e) => { setImmediate(() => { throw e; }); });`;
  const execArgv = [...(ts ? ['--conditions=mnemo-source'] : []), ...(opts.execArgv ?? [])];
  const workers = Array.from({ length: P }, (_, rank) => {
    const init: LocalInit = {
      __mnemoLocalGroup: true,
      rank,
      size: P,
      timeoutMs,
      control,
      slabs,
      out: out[rank]!,
      in: inn[rank]!,
      data: opts.data,
    };
    const ports = [...out[rank]!, ...inn[rank]!].filter((p): p is MessagePort => p !== null);
    return ts
      ? new Worker(boot, { eval: true, workerData: init, transferList: ports, execArgv })
      : new Worker(file_, { workerData: init, transferList: ports, execArgv });
  });
  return Promise.all(
    workers.map(
      (w, rank) =>
        new Promise<LocalRankResult<T>>((resolve) => {
          const res: LocalRankResult<T> = { rank, result: undefined, exitCode: 0 };
          w.on('message', (m: { __mnemoResult?: T }) => {
            if (m && '__mnemoResult' in m) res.result = m.__mnemoResult;
          });
          w.on('error', (e) => {
            res.error = e;
          });
          w.on('exit', (code) => {
            res.exitCode = code;
            // tell the peers: a rank waiting for this one fails now instead of at its timeout
            Atomics.store(ctl, 1 + P + rank, code + 1);
            Atomics.add(ctl, 0, 1);
            Atomics.notify(ctl, 0);
            resolve(res);
          });
        }),
    ),
  );
}

export const LocalGroup = { run };
