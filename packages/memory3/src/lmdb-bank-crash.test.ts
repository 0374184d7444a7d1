import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openMemoryBank } from './lmdb-bank';
import { fixtureEntry } from './store-fixtures';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = mkdtempSync(path.join(tmpdir(), 'memory3-crash-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const shape = { layers: 2, kvHeads: 2, tokens: 8, headDim: 16 };
const embedDim = 16;

/** Run the writer child until it has acknowledged `minAcks` writes, then SIGKILL it; the acks it printed. */
function writeThenKill(dir: string, start: number, minAcks: number): Promise<{ acks: Array<[number, number]>; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=mnemo-source', '--import', 'tsx', path.join(here, 'store-crash-child.ts'), dir, String(start)],
      {
        cwd: path.join(here, '..'),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    const acks: Array<[number, number]> = [];
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      out = lines.pop()!; // a partial last line is no acknowledgement
      for (const l of lines) {
        const m = /^ack (\d+) (\d+)$/.exec(l);
        if (m) acks.push([Number(m[1]), Number(m[2])]);
      }
      if (acks.length >= minAcks && !child.killed) child.kill('SIGKILL');
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited with ${code} before it was killed: ${err}`));
      else resolve({ acks, signal });
    });
  });
}

describe('kill -9 during a stream of writes', () => {
  it('loses no acknowledged write; the bank reopens, its index catches up, ids are never reused', async () => {
    const dir = path.join(root, 'bank');
    let maxId = 0;
    const recoveries: string[] = [];
    for (const [round, start] of [
      [0, 1],
      [1, 10_000],
    ] as const) {
      const { acks } = await writeThenKill(dir, start, 60 + 30 * round);
      expect(acks.length).toBeGreaterThanOrEqual(60);
      const bank = await openMemoryBank(dir, { shape, embedDim });
      // the index was saved every 25 writes: usually the writes after the last save are added back
      // (stale, caught-up); a kill between an index save and its meta record gives corrupt, full
      expect([null, 'stale', 'corrupt']).toContain(bank.indexRecovery?.reason ?? null);
      recoveries.push(bank.indexRecovery?.mode ?? 'none');
      expect(bank.size).toBeGreaterThanOrEqual(acks.length + (round ? 60 : 0));
      for (const [id, seed] of acks) {
        expect(id).toBeGreaterThan(maxId); // round 1: after round 0's ids, none reused
        const want = fixtureEntry(seed, shape, embedDim);
        const got = bank.get(id);
        expect(got.text).toBe(want.text);
        expect(got.memory.kv).toEqual(want.memory.kv);
        expect(got.embedding).toEqual(want.embedding);
      }
      // every acknowledged memory is findable: the index was loaded and caught up, or rebuilt
      let top1 = 0;
      for (const [id, seed] of acks) if (bank.search(fixtureEntry(seed, shape, embedDim).embedding, 1)[0]?.id === id) top1++;
      expect(top1 / acks.length).toBeGreaterThanOrEqual(0.98);
      const ids = bank.list().map((i) => i.id);
      expect(new Set(ids).size).toBe(ids.length);
      maxId = Math.max(...ids);
      await bank.close();
    }
    expect(recoveries).toHaveLength(2);
    const bank = await openMemoryBank(dir, { shape, embedDim });
    const [next] = await bank.add([fixtureEntry(1, shape, embedDim)]);
    expect(next).toBeGreaterThan(maxId);
    await bank.close();
  });
});
