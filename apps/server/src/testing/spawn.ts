/**
 * Test helpers: run one of the server's CLIs as a child process on its TypeScript sources (tsx,
 * the `mnemo-source` condition), collect its output, wait for its "ready on URL" line.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

export interface SpawnedCli {
  child: ChildProcess;
  exit: Promise<number | null>;
  out: () => string;
  err: () => string;
}

/** Run `src/<file>` (e.g. 'cli.ts') with `args`. */
export function spawnSource(file: string, args: string[]): SpawnedCli {
  const entry = path.join(import.meta.dirname, '..', file);
  const child = spawn(process.execPath, ['--conditions=mnemo-source', '--import', 'tsx', entry, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exit, out: () => out, err: () => err };
}

/** The URL of mnemo-serve's "ready on" line; throws when it exits first or after `timeoutMs`. */
export async function waitReady(p: SpawnedCli, timeoutMs: number): Promise<string> {
  const t = Date.now() + timeoutMs;
  for (;;) {
    const m = /ready on (http:\/\/\S+)/.exec(p.out());
    if (m) return m[1]!;
    if (p.child.exitCode !== null) throw new Error(`mnemo-serve exited early:\n${p.err()}`);
    if (Date.now() > t) throw new Error(`mnemo-serve not ready in ${timeoutMs / 1000} s:\n${p.err()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
