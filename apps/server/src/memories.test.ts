/**
 * The Memory³ routes over a fake engine and a fake knowledge base: add / list / get / delete,
 * the references completions and lookups read, refusals that name the field, and writes and
 * deletes racing completions. The same routes over the real model and store: memory3-server.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_WRITE_TOKENS } from './routes/memories';
import type { MnemoServer } from './server';
import { FakeEngine } from './testing/fake-engine';
import { FakeMemories } from './testing/fake-memories';
import { post, readSse, startServer } from './testing/http';

let running: MnemoServer[] = [];
afterEach(async () => {
  await Promise.all(running.map((s) => s.shutdown()));
  running = [];
});

async function start(engine: FakeEngine, opts = {}) {
  const r = await startServer(engine, opts);
  running.push(r.server);
  return r;
}

type Memory = { id: number; object: string; text: string; tokens: number; created_at: number; bytes: number };
type ErrorBody = { error: { param: string | null; code: string; message: string } };

describe('Memory³ routes', () => {
  it('adds texts (split into references), lists them by page, gets and deletes one', async () => {
    const memories = new FakeMemories({ maxReferenceTokens: 16 });
    const { url } = await start(new FakeEngine({ memories }));
    const r = await post(`${url}/v1/memories`, { text: 'the capital of zorbia is quendle' }); // 32 bytes: 2 references
    expect(r.status).toBe(201);
    const body = (await r.json()) as { data: Memory[]; usage: { prompt_tokens: number } };
    expect(body.data.map((m) => m.text).join('')).toBe('the capital of zorbia is quendle');
    expect(body.data.map((m) => m.object)).toEqual(['memory', 'memory']);
    expect(body.usage.prompt_tokens).toBe(32);
    const two = (await (await post(`${url}/v1/memories`, { text: ['alpha beta', 'gamma delta'] })).json()) as { data: Memory[] };
    expect(two.data).toHaveLength(2);
    expect(memories.size).toBe(4);

    const page = (await (await fetch(`${url}/v1/memories?offset=1&limit=2`)).json()) as {
      data: Memory[];
      total: number;
      has_more: boolean;
    };
    expect(page.total).toBe(4);
    expect(page.data.map((m) => m.id)).toEqual([body.data[1]!.id, two.data[0]!.id]);
    expect(page.has_more).toBe(true);

    const id = two.data[1]!.id;
    expect(((await (await fetch(`${url}/v1/memories/${id}`)).json()) as Memory).text).toBe('gamma delta');
    const del = await fetch(`${url}/v1/memories/${id}`, { method: 'DELETE' });
    expect(await del.json()).toEqual({ id, object: 'memory.deleted', deleted: true });
    expect(memories.size).toBe(3);
    const again = await fetch(`${url}/v1/memories/${id}`, { method: 'DELETE' });
    expect(again.status).toBe(404);
    expect(((await again.json()) as ErrorBody).error.code).toBe('memory_not_found');
    expect((await fetch(`${url}/v1/memories/${id}`)).status).toBe(404);
  });

  it('refuses bad input naming the field, and answers 400 when the model reads no store', async () => {
    const { url } = await start(new FakeEngine({ memories: new FakeMemories() }));
    const cases: Array<[unknown, string]> = [
      [{ text: '' }, 'text'],
      [{ text: [] }, 'text'],
      [{ text: 'a', extra: 1 }, 'extra'],
      [{ text: 'x'.repeat(MAX_WRITE_TOKENS + 1) }, 'text'],
      [{ text: ['short', 'y'.repeat(MAX_WRITE_TOKENS)] }, 'text[1]'],
    ];
    for (const [bodyIn, param] of cases) {
      const r = await post(`${url}/v1/memories`, bodyIn);
      expect(r.status, JSON.stringify(bodyIn).slice(0, 60)).toBe(400);
      expect(((await r.json()) as ErrorBody).error.param).toBe(param);
    }
    for (const bad of ['abc', '0', '-3', '1.5', '99999999999999999999']) {
      const r = await fetch(`${url}/v1/memories/${bad}`, { method: 'DELETE' });
      expect(r.status, bad).toBe(400);
      expect(((await r.json()) as ErrorBody).error.param).toBe('id');
    }
    expect((await fetch(`${url}/v1/memories?limit=1000`)).status).toBe(400);
    expect((await fetch(`${url}/v1/memories?page=2`)).status).toBe(400);

    const plain = await start(new FakeEngine());
    const r = await post(`${plain.url}/v1/memories`, { text: 'a fact' });
    expect(r.status).toBe(400);
    expect(((await r.json()) as ErrorBody).error.code).toBe('no_memory_store');
    expect((await fetch(`${plain.url}/v1/memories`)).status).toBe(400);
    // and without a store, completions carry no references field
    const c = (await (await post(`${plain.url}/v1/completions`, { prompt: 'a', max_tokens: 2 })).json()) as Record<string, unknown>;
    expect('references' in c).toBe(false);
  });

  it('completions and lookups report the references they read', async () => {
    const memories = new FakeMemories();
    const { url } = await start(new FakeEngine({ memories, memoryBlocks: [] }));
    const added = (await (await post(`${url}/v1/memories`, { text: ['zorbia capital quendle', 'unrelated words here'] })).json()) as {
      data: Memory[];
    };
    const c = (await (await post(`${url}/v1/completions`, { prompt: 'tell me about zorbia', max_tokens: 3, temperature: 0 })).json()) as {
      references: number[];
    };
    expect(c.references).toEqual([added.data[0]!.id]);
    const s = await readSse(await post(`${url}/v1/completions`, { prompt: 'quendle and zorbia', max_tokens: 3, stream: true }));
    const finish = s.events.find((e) => (e as { choices: { finish_reason: string | null }[] }).choices?.[0]?.finish_reason) as {
      references: number[];
    };
    expect(finish.references).toEqual([added.data[0]!.id]);
    // a model with no memory FFN but a store can be looked up: what each 64-token chunk reads
    const l = (await (await post(`${url}/v1/memory/lookup`, { text: `${'x'.repeat(64)}unrelated here` })).json()) as {
      references: { start: number; end: number; ids: number[] }[];
    };
    expect(l.references).toEqual([
      { start: 0, end: 64, ids: [] },
      { start: 64, end: 78, ids: [added.data[1]!.id] },
    ]);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/mnemo_memory_references_written_total 2/);
    expect(metrics).toMatch(/mnemo_memory_references 2/);
  });

  it('writes and deletes racing completions: no errors, the server stays up', async () => {
    const memories = new FakeMemories();
    const engine = new FakeEngine({ memories, stepMs: 1 });
    const { url } = await start(engine, { maxQueue: 256 });
    const work: Promise<number>[] = [];
    for (let i = 0; i < 20; i++) {
      work.push(post(`${url}/v1/memories`, { text: `fact number ${i} about zorbia` }).then((r) => r.status));
      work.push(post(`${url}/v1/completions`, { prompt: `zorbia ${i}`, max_tokens: 8 }).then((r) => r.status));
      if (i % 2 === 1) work.push(fetch(`${url}/v1/memories/${i}`, { method: 'DELETE' }).then((r) => (r.status === 404 ? 200 : r.status)));
    }
    const statuses = await Promise.all(work);
    expect(statuses.filter((s) => s !== 200 && s !== 201)).toEqual([]);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(engine.liveCaches).toBe(0);
  });
});
