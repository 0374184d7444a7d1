import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '@mnemo/kernels';
import { PoolService } from '@mnemo/parallel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelEngine } from './model-engine';
import type { MnemoServer } from './server';
import { loadShardedEngine } from './sharded-engine';
import { saveTinyCheckpoint } from './testing/checkpoint';
import { post, startServer } from './testing/http';

interface Completion {
  choices: { text: string; finish_reason: string }[];
  usage: { completion_tokens: number };
}

let tmp: string;
beforeAll(async () => {
  await initBackend();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'mnemo-sharded-serve-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('mnemo-serve --memory-parallel 2: the pool held by 2 worker threads', () => {
  it('greedy completions equal the unsharded server', async () => {
    const dir = path.join(tmp, 'ckpt');
    saveTinyCheckpoint(dir);
    const plain = ModelEngine.load(dir);
    const sharded = await loadShardedEngine(dir, 2);
    expect(sharded.model.pool).toBeInstanceOf(PoolService); // the table is in the workers, not here
    const servers: MnemoServer[] = [];
    try {
      const urls: string[] = [];
      for (const e of [plain, sharded]) {
        const { server, url } = await startServer(e);
        servers.push(server);
        urls.push(url);
      }
      for (const prompt of ['Memory layers store', 'The top k slots of every head', 'A dense']) {
        const ask = async (u: string) =>
          (await (await post(`${u}/v1/completions`, { prompt, max_tokens: 12, temperature: 0 })).json()) as Completion;
        const [a, b] = [await ask(urls[0]!), await ask(urls[1]!)];
        expect(a.choices[0]!.text.length + a.usage.completion_tokens).toBeGreaterThan(0);
        expect(b.choices[0]!.text).toBe(a.choices[0]!.text);
        expect(b.choices[0]!.finish_reason).toBe(a.choices[0]!.finish_reason);
        expect(b.usage).toEqual(a.usage);
      }
    } finally {
      for (const s of servers) await s.shutdown();
    }
    plain.dispose();
    sharded.dispose();
    const exits = await (sharded.model.pool as PoolService).exited();
    expect(exits.map((r) => r.exitCode)).toEqual([0, 0]);
  }, 60_000);
});
