/**
 * The mnemo-serve CLI as a child process (tsx on the sources) on a checkpoint saved in the
 * test: flag errors, then SIGTERM during a stream — the stream completes with [DONE], new
 * requests are refused, the process exits 0.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '@mnemo/kernels';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveTinyCheckpoint } from './testing/checkpoint';
import { type SpawnedCli, spawnSource, waitReady } from './testing/spawn';
import { post, readSse } from './testing/http';

let tmp: string;
let ckpt: string;

beforeAll(async () => {
  await initBackend();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'mnemo-serve-cli-'));
  ckpt = path.join(tmp, 'tiny');
  saveTinyCheckpoint(ckpt);
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const spawnCli = (args: string[]) => spawnSource('cli.ts', args);
const ready = (p: SpawnedCli) => waitReady(p, 30_000);

describe('mnemo-serve CLI', () => {
  it('refuses bad flags with exit code 2 naming the flag', async () => {
    const p = spawnCli(['--checkpoint', ckpt, '--max-batch', 'lots']);
    expect(await p.exit).toBe(2);
    expect(p.err()).toContain('--max-batch');
    const q = spawnCli(['--port', '1']);
    expect(await q.exit).toBe(2);
    expect(q.err()).toContain('--checkpoint');
  });

  it('a missing checkpoint exits 1 with a clear message', async () => {
    const p = spawnCli(['--checkpoint', path.join(tmp, 'nope'), '--port', '0']);
    expect(await p.exit).toBe(1);
    expect(p.err()).toContain('nope');
  });

  it('SIGTERM during a stream: the stream completes with [DONE], new requests are refused, exit 0', async () => {
    const p = spawnCli(['--checkpoint', ckpt, '--port', '0', '--max-tokens', '60']);
    const url = await ready(p);
    expect(p.out()).toContain('curl');
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const res = await post(`${url}/v1/completions`, { prompt: 'Memory layers', max_tokens: 60, temperature: 0, stream: true });
    expect(res.status).toBe(200);
    let signalled = false;
    let afterSignal = 0;
    let refused: number | string | null = null;
    const stream = readSse(res, () => {
      if (signalled) {
        afterSignal++;
        return;
      }
      signalled = true;
      p.child.kill('SIGTERM');
      // once the server has taken the signal, a new request gets 503 or no connection at all
      void (async () => {
        while (!p.err().includes('SIGTERM') && p.child.exitCode === null) await new Promise((r) => setTimeout(r, 2));
        refused = await post(`${url}/v1/completions`, { prompt: 'late', max_tokens: 2 }).then(
          (r) => r.status,
          () => 'connection refused',
        );
      })();
    });
    const s = await stream;
    expect(signalled).toBe(true);
    expect(s.done).toBe(true);
    expect(['length', 'stop']).toContain(s.finishReason);
    // the stream really was in flight when the signal came
    expect(afterSignal).toBeGreaterThan(0);
    expect(await p.exit).toBe(0);
    for (let i = 0; i < 100 && refused === null; i++) await new Promise((r) => setTimeout(r, 10));
    expect([503, 'connection refused']).toContain(refused);
  });
});
