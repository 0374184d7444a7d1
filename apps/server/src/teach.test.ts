/**
 * POST /v1/memory/teach and /v1/memory/save over a fake engine: a taught text shows in the next
 * completion, refusals name the field, teaching races completions without an error, and what was
 * taught is saved at shutdown. The same routes over the real model: teach-model.test.ts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TEACH_TOKENS } from './routes/teach';
import type { MnemoServer } from './server';
import { FakeEngine } from './testing/fake-engine';
import { FakeTeacher } from './testing/fake-teacher';
import { post, startServer } from './testing/http';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'mnemo-teach-'));
let running: MnemoServer[] = [];
afterEach(async () => {
  await Promise.all(running.map((s) => s.shutdown()));
  running = [];
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function start(engine: FakeEngine, opts = {}) {
  const r = await startServer(engine, opts);
  running.push(r.server);
  return r;
}

type ErrorBody = { error: { param: string | null; code: string; message: string } };
type Taught = {
  object: string;
  data: {
    index: number;
    tokens: number;
    slots_written: number;
    slots: number[];
    loss_before: number;
    loss_after: number;
  }[];
  unsaved: number;
  usage: { prompt_tokens: number };
};

async function complete(url: string, prompt: string, max_tokens = 6): Promise<string> {
  const r = await post(`${url}/v1/completions`, { prompt, max_tokens, temperature: 0 });
  expect(r.status).toBe(200);
  return ((await r.json()) as { choices: { text: string }[] }).choices[0]!.text;
}

describe('POST /v1/memory/teach', () => {
  it('a taught text shows in the next completion; save writes it and clears the unsaved count', async () => {
    const teacher = new FakeTeacher(path.join(tmp, 'a.json'));
    const { url } = await start(new FakeEngine({ teacher }));
    expect(await complete(url, 'Q')).not.toBe('zorbia');
    const r = await post(`${url}/v1/memory/teach`, { text: 'Qzorbia', steps: 7, top_t: 3 });
    expect(r.status).toBe(200);
    const body = (await r.json()) as Taught;
    expect(body.object).toBe('memory.teach');
    expect(body.usage.prompt_tokens).toBe(7);
    expect(body.unsaved).toBe(1);
    expect(body.data).toHaveLength(1);
    expect(body.data[0]!.slots_written).toBe(3);
    expect(body.data[0]!.slots).toEqual([81, 98, 105]);
    expect(body.data[0]!.loss_after).toBeLessThan(body.data[0]!.loss_before);
    expect(teacher.calls).toEqual([{ steps: 7, topT: 3 }]);
    expect(await complete(url, 'Q')).toBe('zorbia');
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^mnemo_teach_texts_total 1$/m);
    expect(metrics).toMatch(/^mnemo_teach_rows_written_total 3$/m);

    const s = await post(`${url}/v1/memory/save`, {});
    expect(s.status).toBe(200);
    expect(await s.json()).toMatchObject({ object: 'memory.save', path: path.join(tmp, 'a.json'), saved: 1 });
    expect(teacher.unsaved).toBe(0);
    expect(JSON.parse(readFileSync(path.join(tmp, 'a.json'), 'utf8'))).toContainEqual([81, 122]);
  });

  it('several texts in one request, each reported by index', async () => {
    const teacher = new FakeTeacher(path.join(tmp, 'b.json'));
    const { url } = await start(new FakeEngine({ teacher }));
    const body = (await (await post(`${url}/v1/memory/teach`, { text: ['Abc', 'Xyzw'] })).json()) as Taught;
    expect(body.data.map((d) => [d.index, d.tokens])).toEqual([
      [0, 3],
      [1, 4],
    ]);
    expect(body.unsaved).toBe(2);
    expect(teacher.calls).toEqual([{}, {}].map(() => ({ steps: undefined, topT: undefined })));
  });

  it('bad input answers 400 naming the field, and the server stays up', async () => {
    const teacher = new FakeTeacher(path.join(tmp, 'c.json'));
    const { url } = await start(new FakeEngine({ teacher, maxSeqLen: 4096 }));
    const cases: Array<[unknown, string | null]> = [
      [{ text: '' }, 'text'],
      [{ text: 42 }, 'text'],
      [{}, 'text'],
      [{ text: [] }, 'text'],
      [{ text: ['ok text', ''] }, 'text.1'],
      [{ text: 'x' }, 'text'], // one token: nothing to predict
      [{ text: 'ab', steps: 0 }, 'steps'],
      [{ text: 'ab', steps: 2.5 }, 'steps'],
      [{ text: 'ab', top_t: -1 }, 'top_t'],
      [{ text: 'ab', colour: 'red' }, null],
      [{ text: 'a'.repeat(MAX_TEACH_TOKENS + 1) }, 'text'],
      [{ text: ['a'.repeat(MAX_TEACH_TOKENS / 2), 'b'.repeat(MAX_TEACH_TOKENS / 2 + 1)] }, 'text[1]'],
    ];
    for (const [body, param] of cases) {
      const r = await post(`${url}/v1/memory/teach`, body);
      const e = (await r.json()) as ErrorBody;
      expect([JSON.stringify(body).slice(0, 60), r.status]).toEqual([JSON.stringify(body).slice(0, 60), 400]);
      if (param !== null) expect([JSON.stringify(body).slice(0, 60), e.error.param]).toEqual([JSON.stringify(body).slice(0, 60), param]);
    }
    expect(teacher.calls).toHaveLength(0);
    expect((await post(`${url}/v1/memory/teach`, { text: 'fine' })).status).toBe(200);
  });

  it('a model that cannot be taught answers 400 not_teachable', async () => {
    const { url } = await start(new FakeEngine());
    for (const route of ['/v1/memory/teach', '/v1/memory/save']) {
      const r = await post(`${url}${route}`, { text: 'abc' });
      expect(r.status).toBe(400);
      expect(((await r.json()) as ErrorBody).error.code).toBe('not_teachable');
    }
  });

  it('needs the API key when the server has one', async () => {
    const teacher = new FakeTeacher(path.join(tmp, 'd.json'));
    const { url } = await start(new FakeEngine({ teacher }), { apiKey: 'sekret' });
    expect((await post(`${url}/v1/memory/teach`, { text: 'abc' })).status).toBe(401);
    expect((await post(`${url}/v1/memory/save`, {})).status).toBe(401);
    expect(teacher.calls).toHaveLength(0);
    expect((await post(`${url}/v1/memory/teach`, { text: 'abc' }, { authorization: 'Bearer sekret' })).status).toBe(200);
  });

  it('teaching races completions: every request answers 200', async () => {
    const teacher = new FakeTeacher(path.join(tmp, 'e.json'), { teachMs: 20 });
    const { url } = await start(new FakeEngine({ teacher, stepMs: 2 }));
    const jobs: Promise<number>[] = [];
    for (let i = 0; i < 12; i++) {
      jobs.push(post(`${url}/v1/completions`, { prompt: `p${i}`, max_tokens: 8 }).then((r) => r.status));
      if (i % 3 === 0) jobs.push(post(`${url}/v1/memory/teach`, { text: `t${i}abc` }).then((r) => r.status));
    }
    expect(new Set(await Promise.all(jobs))).toEqual(new Set([200]));
    expect(teacher.unsaved).toBe(4);
  });
});

describe('shutdown', () => {
  it('saves what was taught and not saved', async () => {
    const file = path.join(tmp, 'f.json');
    const teacher = new FakeTeacher(file);
    const { url, server } = await startServer(new FakeEngine({ teacher }));
    await post(`${url}/v1/memory/teach`, { text: 'Kquendle' });
    expect(existsSync(file)).toBe(false);
    await server.shutdown();
    expect(teacher.saves).toBe(1);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toContainEqual([75, 113]);
  });

  it('a save that fails at shutdown is said loudly, and the server still stops', async () => {
    const teacher = new FakeTeacher(path.join(tmp, 'g.json'), { failSave: true });
    const { url, server } = await startServer(new FakeEngine({ teacher }));
    await post(`${url}/v1/memory/teach`, { text: 'Kquendle' });
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    await server.shutdown();
    expect(err.mock.calls.flat().join(' ')).toMatch(/could not save 1 taught text\(s\) at shutdown: disk full/);
    err.mockRestore();
  });
});
