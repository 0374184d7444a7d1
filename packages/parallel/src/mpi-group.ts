/**
 * The `mpi` ProcessGroup backend: one rank per process, launched by `mpirun -np P node file.js`,
 * collectives through the N-API addon native/mpi.c (OpenMPI; built by scripts/install.cjs with
 * mpicc). Every collective is a nonblocking MPI call polled until its deadline (`timeoutMs`): a
 * peer that never arrives makes this rank throw a BackendError naming the collective (MPI cannot
 * tell which peer is missing), and the job is ended when the process exits (the rank kills itself), so no
 * rank hangs. A rank that dies is also seen by mpirun, which ends the others.
 *
 *   mpiAvailable() → { available, reason }      false when the addon or libmpi is missing
 *   MpiGroup.run(P, file, { data })             spawn mpirun from node (tests, bench)
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackendError, ConfigError, ShapeError, UsageError } from '@mnemo/core';
import { type GroupStats, type Numeric, type ProcessGroup, blockLength, bytesOf, checkCounts, checkNumeric } from './process-group';

interface MpiAddon {
  init(): [number, number];
  coll(
    kind: number,
    send: Uint8Array | null,
    recv: Uint8Array | null,
    a: Int32Array | null,
    b: Int32Array | null,
    root: number,
    timeoutMs: number,
  ): number;
  abort(code: number): void;
  finalize(): void;
}

const KIND = { allGather: 0, allGatherV: 1, allToAll: 2, allToAllV: 3, reduceScatter: 4, allReduce: 5, broadcast: 6, barrier: 7 } as const;

function packageRoot(): string {
  // src/mpi-group.ts and dist/index.js both sit one level below the package root
  const here = typeof __dirname === 'string' ? __dirname : path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, '..');
}

export function mpiAddonPath(): string {
  return path.join(packageRoot(), 'build', 'mnemo_mpi.node');
}

let addon: MpiAddon | null | undefined;
let addonReason = '';

function loadAddon(): MpiAddon | null {
  if (addon !== undefined) return addon;
  const file = mpiAddonPath();
  if (!fs.existsSync(file)) {
    addonReason = `the MPI addon ${file} is not built (install OpenMPI: apt-get install openmpi-bin libopenmpi-dev, then npm rebuild @mnemo/parallel)`;
    addon = null;
    return null;
  }
  try {
    addon = createRequire(import.meta.url)(file) as MpiAddon;
  } catch (e) {
    addonReason = `the MPI addon ${file} does not load (${(e as Error).message.split('\n')[0]})`;
    addon = null;
  }
  return addon;
}

/** Whether the mpi backend can run here: the addon loads (libmpi present). */
export function mpiAvailable(): { available: boolean; reason: string } {
  const a = loadAddon();
  return a ? { available: true, reason: 'MPI addon loaded' } : { available: false, reason: addonReason };
}

/** True in a process started by mpirun (OpenMPI sets OMPI_COMM_WORLD_SIZE). */
export function underMpirun(): boolean {
  return process.env.OMPI_COMM_WORLD_SIZE !== undefined || process.env.PMIX_RANK !== undefined;
}

class MpiProcessGroup implements ProcessGroup {
  readonly backend = 'mpi' as const;
  readonly rank: number;
  readonly size: number;
  private count = 0;
  private sent = 0;
  private broken = false;
  private closed = false;

  constructor(
    private readonly mpi: MpiAddon,
    readonly timeoutMs: number,
  ) {
    [this.rank, this.size] = mpi.init();
    process.on('exit', () => {
      // A broken job cannot finalize. MPI_Abort is the documented way out, but OpenMPI 4's mpirun
      // was seen to hang after it when another job ran on the same host; a rank killed by a
      // signal always ends the job (mpirun reports it and kills the rest).
      if (this.broken) process.kill(process.pid, 'SIGKILL');
      else mpi.finalize();
    });
  }

  private call(
    name: string,
    kind: number,
    send: Numeric | null,
    recv: Numeric | null,
    a: Int32Array | null = null,
    b: Int32Array | null = null,
    root = 0,
  ): void {
    if (this.closed || this.broken)
      throw new BackendError(`${name}: the MPI group of rank ${this.rank} is ${this.broken ? 'broken by an earlier timeout' : 'closed'}`);
    this.count++;
    const rc = this.mpi.coll(kind, send && bytesOf(send), recv && bytesOf(recv), a, b, root, this.timeoutMs);
    if (rc !== 0) {
      this.broken = true;
      throw new BackendError(
        `${name} (collective #${this.count}) timed out after ${this.timeoutMs} ms on MPI rank ${this.rank} of ${this.size}: a peer did not arrive (dead, stalled or in another collective); the job will be aborted`,
      );
    }
  }

  allGather<T extends Numeric>(x: T): T {
    checkNumeric('x', x);
    const out = new (x.constructor as new (n: number) => T)(x.length * this.size);
    this.call('allGather', KIND.allGather, x, out);
    this.sent += x.byteLength * (this.size - 1);
    return out;
  }

  private gatherCounts(n: number): number[] {
    const c = new Int32Array(this.size);
    this.call('allGather(counts)', KIND.allGather, Int32Array.of(n), c);
    return [...c];
  }

  allGatherV<T extends Numeric>(x: T): { data: T; counts: number[] } {
    checkNumeric('x', x);
    const counts = this.gatherCounts(x.length);
    const bytes = Int32Array.from(counts, (c) => c * 4);
    const displs = new Int32Array(this.size);
    for (let q = 1; q < this.size; q++) displs[q] = displs[q - 1]! + bytes[q - 1]!;
    const out = new (x.constructor as new (n: number) => T)(counts.reduce((s, c) => s + c, 0));
    this.call('allGatherV', KIND.allGatherV, x, out, bytes, displs);
    this.sent += x.byteLength * (this.size - 1);
    return { data: out, counts };
  }

  allToAll<T extends Numeric>(x: T): T {
    checkNumeric('x', x);
    const m = blockLength('allToAll', x, this.size);
    const out = new (x.constructor as new (n: number) => T)(x.length);
    this.call('allToAll', KIND.allToAll, x, out);
    this.sent += m * 4 * (this.size - 1);
    return out;
  }

  allToAllV<T extends Numeric>(x: T, counts: readonly number[]): { data: T; counts: number[] } {
    checkNumeric('x', x);
    checkCounts('counts', counts, x.length, this.size);
    const P = this.size;
    const recvCounts = new Int32Array(P);
    this.call('allToAll(counts)', KIND.allToAll, Int32Array.from(counts), recvCounts);
    const s = new Int32Array(2 * P);
    const r = new Int32Array(2 * P);
    for (let q = 0; q < P; q++) {
      s[q] = counts[q]! * 4;
      r[q] = recvCounts[q]! * 4;
      if (q > 0) {
        s[P + q] = s[P + q - 1]! + s[q - 1]!;
        r[P + q] = r[P + q - 1]! + r[q - 1]!;
      }
    }
    const out = new (x.constructor as new (n: number) => T)([...recvCounts].reduce((a, c) => a + c, 0));
    this.call('allToAllV', KIND.allToAllV, x, out, s, r);
    this.sent += (x.length - counts[this.rank]!) * 4;
    return { data: out, counts: [...recvCounts] };
  }

  reduceScatter(x: Float32Array): Float32Array {
    if (!(x instanceof Float32Array)) throw new ShapeError('x', 'reduceScatter sums a Float32Array');
    const m = blockLength('reduceScatter', x, this.size);
    const out = new Float32Array(m);
    this.call('reduceScatter', KIND.reduceScatter, x, out);
    this.sent += m * 4 * (this.size - 1);
    return out;
  }

  allReduce(x: Float32Array): Float32Array {
    if (!(x instanceof Float32Array)) throw new ShapeError('x', 'allReduce sums a Float32Array');
    const out = new Float32Array(x.length);
    this.call('allReduce', KIND.allReduce, x, out);
    this.sent += x.byteLength * (this.size - 1);
    return out;
  }

  broadcast<T extends Numeric>(x: T, root: number): T {
    checkNumeric('x', x);
    if (!Number.isInteger(root) || root < 0 || root >= this.size)
      throw new ConfigError('root', `must be a rank in [0, ${this.size}), got ${root}`);
    const buf = x.slice() as T;
    this.call('broadcast', KIND.broadcast, null, buf, null, null, root);
    if (this.rank === root) this.sent += x.byteLength * (this.size - 1);
    return buf;
  }

  barrier(): void {
    this.call('barrier', KIND.barrier, null, null);
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

let group: MpiProcessGroup | null = null;

/** This rank's mpi ProcessGroup (in a process started by mpirun). */
export function mpiGroup(opts: { timeoutMs?: number } = {}): ProcessGroup {
  if (group) return group;
  const a = loadAddon();
  if (!a) throw new BackendError(`mpi backend not available: ${addonReason}`);
  if (!underMpirun()) throw new UsageError('mpiGroup(): this process was not started by mpirun (OMPI_COMM_WORLD_SIZE is unset)');
  const t = opts.timeoutMs ?? Number(process.env.MNEMO_GROUP_TIMEOUT_MS ?? 30_000);
  if (!(Number.isFinite(t) && t > 0)) throw new ConfigError('timeoutMs', `must be > 0, got ${t}`);
  group = new MpiProcessGroup(a, t);
  return group;
}

/** Whether `mpirun` is on PATH. */
export function mpirunPath(): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const f = path.join(dir, 'mpirun');
    if (dir && fs.existsSync(f)) return f;
  }
  return null;
}

export interface MpiRunOptions {
  data?: unknown;
  timeoutMs?: number;
  /** kill the whole job after this many ms (default timeoutMs · 4 + 60 s) */
  jobTimeoutMs?: number;
}

export interface MpiRunResult<T> {
  /** values from reportResult, by rank (undefined where a rank reported nothing) */
  results: (T | undefined)[];
  /** mpirun's exit code; null when a signal ended it (see `signal`) */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** true when jobTimeoutMs passed and runMpi killed the job (a hang) */
  timedOut: boolean;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Spawn `mpirun -np P node file` (TypeScript files run through tsx) and collect reportResult lines. */
export function runMpi<T = unknown>(P: number, file: string, opts: MpiRunOptions = {}): Promise<MpiRunResult<T>> {
  const mpirun = mpirunPath();
  if (!mpirun) throw new BackendError('mpirun not found on PATH (apt-get install openmpi-bin libopenmpi-dev)');
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const ts = file.endsWith('.ts');
  const node = [process.execPath, ...(ts ? ['--import', 'tsx', '--conditions=mnemo-source'] : []), file];
  const args = [
    '--allow-run-as-root',
    '--oversubscribe',
    '--bind-to',
    'none',
    '-np',
    String(P),
    '-x',
    'MNEMO_GROUP_DATA',
    '-x',
    'MNEMO_GROUP_TIMEOUT_MS',
    ...node,
  ];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MNEMO_GROUP_DATA: JSON.stringify(opts.data ?? null),
    MNEMO_GROUP_TIMEOUT_MS: String(timeoutMs),
    OMPI_MCA_btl_vader_single_copy_mechanism: 'none', // containers often forbid CMA (ptrace)
  };
  const resultDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-mpi-run-'));
  env.MNEMO_GROUP_RESULT_DIR = resultDir;
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(mpirun, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    let timedOut = false;
    const kill = setTimeout(
      () => {
        timedOut = true;
        child.kill('SIGKILL');
      },
      opts.jobTimeoutMs ?? timeoutMs * 4 + 60_000,
    );
    child.on('close', (code, signal) => {
      clearTimeout(kill);
      const results: (T | undefined)[] = Array(P).fill(undefined);
      for (let r = 0; r < P; r++) {
        const f = path.join(resultDir, `rank-${r}.json`);
        if (fs.existsSync(f)) results[r] = JSON.parse(fs.readFileSync(f, 'utf8')) as T;
      }
      fs.rmSync(resultDir, { recursive: true, force: true });
      resolve({ results, exitCode: code, signal, timedOut, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

export const MpiGroup = { run: runMpi };
