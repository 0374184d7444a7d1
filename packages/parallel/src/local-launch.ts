/**
 * LocalGroup.run: start P worker threads that form a `local` ProcessGroup (local-group.ts): one
 * control block and P slabs (SharedArrayBuffers), a MessagePort per ordered pair of ranks for slab
 * announcements, and, when a worker ends, its exit code in the control block (its peers fail at
 * once instead of at their timeout). TypeScript worker files run through tsx (a dev tool).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { ConfigError, UsageError } from '@mnemo/core';
import type { LocalInit } from './local-group';

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_SLAB_BYTES = 1 << 20;

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
  const control = new SharedArrayBuffer(4 * (1 + 4 * P + 2 * P * P));
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
