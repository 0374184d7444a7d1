/**
 * The server over real HTTP (ephemeral port, fetch) against a real tiny LanguageModel:
 * completions equal the library's `generate`, batching does not change outputs, every error
 * class is answered in the OpenAI shape, auth, 429, memory lookups, metrics, no tensor leaks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '@mnemo/kernels';
import { generate } from '@mnemo/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelEngine } from './model-engine';
import type { MnemoServer } from './server';
import { post, readSse, startServer } from './testing/http';
import { parsePrometheusText, sampleValue } from './testing/prom-text';
import { saveTinyCheckpoint } from './testing/checkpoint';

interface CompletionBody {
  object: string;
  model: string;
  choices: Array<{ text: string; finish_reason: string }>;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}
interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

let engine: ModelEngine;
let tmp: string;
let server: MnemoServer;
let url: string;
const started: MnemoServer[] = [];

async function start(opts = {}, e: ModelEngine = engine) {
  const r = await startServer(e, opts);
  started.push(r.server);
  return r;
}

beforeAll(async () => {
  await initBackend();
  // a trainer-style checkpoint (BPE tokenizer + tiny dense/memory model), loaded as mnemo-serve does
  tmp = mkdtempSync(path.join(os.tmpdir(), 'mnemo-serve-test-'));
  saveTinyCheckpoint(path.join(tmp, 'tiny'));
  engine = ModelEngine.load(path.join(tmp, 'tiny'));
  ({ server, url } = await start({ maxTokens: 64, maxPromptTokens: 40 }));
});

afterAll(async () => {
  // shutdown() disposes the engine: the servers sharing it just close, the first one shuts down
  for (const s of started) if (s !== server) await s.app.close();
  await server.shutdown();
  rmSync(tmp, { recursive: true, force: true });
});

const cases = [
  { prompt: 'The memory', max_tokens: 12, temperature: 0 },
  { prompt: 'abc', max_tokens: 20, temperature: 0.8, top_p: 0.9, seed: 42 },
  { prompt: 'x', max_tokens: 9, temperature: 1.2, seed: 3 },
];

function reference(c: { prompt: string; max_tokens: number; temperature: number; top_p?: number; seed?: number; stop?: string[] }) {
  return generate(engine.model, engine.tokenizer, c.prompt, {
    maxTokens: c.max_tokens,
    temperature: c.temperature,
    topP: c.top_p ?? 1,
    seed: c.seed ?? 0,
    stop: c.stop,
  });
}

/** decoding steps that held a single sequence */
function stepsOfOne(s: MnemoServer): number {
  return Number(/mnemo_decode_batch_size_bucket\{le="1"\} (\d+)/.exec(s.metrics.decodeBatchSize.render())![1]);
}

describe('completions (real model)', () => {
  it('plain and streamed completions equal the library generate for the same settings', async () => {
    // a stop sequence taken from the middle of an unstopped completion, so it really cuts
    const free = reference({ prompt: 'product keys', max_tokens: 16, temperature: 0.7, seed: 11 }).text;
    const stop = [...free].find((ch, i) => i >= 3 && ch !== '\ufffd') ?? free.slice(-1);
    const all = [...cases, { prompt: 'product keys', max_tokens: 16, temperature: 0.7, seed: 11, stop: ['\u0000', stop] }];
    for (const c of all) {
      const ref = reference(c);
      const res = await post(`${url}/v1/completions`, { ...c, seed: c.seed ?? 0, model: 'tiny' });
      expect(res.status).toBe(200);
      const body = (await res.json()) as CompletionBody;
      expect(body.object).toBe('text_completion');
      expect(body.choices[0]!.text).toBe(ref.text);
      expect(body.choices[0]!.finish_reason).toBe(ref.finishReason);
      expect(body.usage.prompt_tokens).toBe(ref.promptTokens);
      expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
      if (ref.finishReason === 'length') expect(body.usage.completion_tokens).toBe(ref.tokens.length);

      const sres = await post(`${url}/v1/completions`, { ...c, seed: c.seed ?? 0, stream: true });
      expect(sres.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const s = await readSse(sres);
      expect(s.done).toBe(true);
      expect(s.raw.endsWith('data: [DONE]\n\n')).toBe(true);
      expect(s.text).toBe(ref.text);
      expect(s.finishReason).toBe(ref.finishReason);
    }
    // the references are real generations, not empty strings
    expect(all.map((c) => reference(c).tokens.length).reduce((a, b) => a + b)).toBeGreaterThan(20);
    // a stop sequence really cut something
    const stopped = reference(all[all.length - 1]!);
    expect(stopped.finishReason).toBe('stop');
  });

  it('batched greedy output equals unbatched, for concurrent requests', async () => {
    const prompts = ['a', 'memory layer', 'zz top', 'The', 'product', 'keys!', 'Q', 'hello world'];
    const body = (p: string, i: number) => ({ prompt: [p], max_tokens: 6 + i, temperature: 0 });
    const { server: solo, url: soloUrl } = await start({ batching: false, maxTokens: 64 });
    const alone: string[] = [];
    for (let i = 0; i < prompts.length; i++) {
      alone.push(((await (await post(`${soloUrl}/v1/completions`, body(prompts[i]!, i))).json()) as CompletionBody).choices[0]!.text);
    }
    // unbatched: every step decoded one sequence
    expect(stepsOfOne(solo)).toBe(solo.metrics.decodeBatchSize.count());
    const batched = await Promise.all(
      prompts.map(async (p, i) => ((await (await post(`${url}/v1/completions`, body(p, i))).json()) as CompletionBody).choices[0]!.text),
    );
    expect(batched).toEqual(alone);
    expect(alone).toEqual(prompts.map((p, i) => generate(engine.model, engine.tokenizer, p, { maxTokens: 6 + i }).text));
    // the shared server really decoded several sequences per step
    expect(server.metrics.decodeBatchSize.count()).toBeGreaterThan(stepsOfOne(server));
  });

  it('lists the model and answers memory lookups with the model inspection', async () => {
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string; memory_blocks: number[] }> };
    expect(models.data.map((m) => m.id)).toEqual(['tiny']);
    expect(models.data[0]!.memory_blocks).toEqual([1]);

    const text = 'memory layers €';
    const res = await post(`${url}/v1/memory/lookup`, { text });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      tokens: Array<{ id: number; text: string }>;
      layers: Array<{ block: number; heads: number; top_k: number; reads: Array<Array<{ slots: number[]; weights: number[] }>> }>;
    };
    const ids = engine.encode(text);
    expect(body.tokens.map((t) => t.id)).toEqual(ids);
    expect(ids.length).toBeGreaterThan(3);
    expect(body.tokens.map((t) => t.text).join('')).toMatch(/^memory layers /);
    const ref = engine.model.inspectMemory(ids);
    expect(body.layers.map((l) => l.block)).toEqual(ref.map((r) => r.block));
    const r = ref[0]!;
    const layer = body.layers[0]!;
    expect(layer.reads.length).toBe(ids.length);
    for (let t = 0; t < ids.length; t++) {
      for (let h = 0; h < r.heads; h++) {
        const off = (t * r.heads + h) * r.topK;
        const got = layer.reads[t]![h]!;
        // same set of slots with the same weights, sorted best first
        const want = Array.from({ length: r.topK }, (_, j) => [r.ids[off + j]!, r.weights[off + j]!] as const);
        expect(new Set(got.slots)).toEqual(new Set(want.map((w) => w[0])));
        for (let j = 0; j < got.slots.length; j++) {
          expect(got.weights[j]).toBeCloseTo(want.find((w) => w[0] === got.slots[j])![1], 6);
          if (j > 0) expect(got.weights[j]!).toBeLessThanOrEqual(got.weights[j - 1]!);
        }
      }
    }
    const top1 = (await (await post(`${url}/v1/memory/lookup`, { text, top_k: 1 })).json()) as typeof body;
    expect(top1.layers[0]!.reads[0]![0]!.slots.length).toBe(1);
  });

  it('exposes Prometheus metrics', async () => {
    await post(`${url}/v1/memory/lookup`, { text: 'x' });
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const name of [
      'mnemo_http_request_duration_seconds_bucket',
      'mnemo_tokens_generated_total',
      'mnemo_queue_depth',
      'mnemo_memory_lookups_total',
      'mnemo_tfjs_tensors',
    ]) {
      expect(text).toContain(name);
    }
    const lookups = Number(/^mnemo_memory_lookups_total (\d+)$/m.exec(text)![1]);
    expect(lookups).toBe(server.metrics.memoryLookups.get());
    expect(lookups).toBeGreaterThan(0);
    expect(Number(/^mnemo_tfjs_tensors (\d+)$/m.exec(text)![1])).toBeGreaterThan(0);
    expect(text).toMatch(/mnemo_http_request_duration_seconds_count\{method="POST",route="\/v1\/completions",status="200"\} [1-9]/);
  });

  it('/metrics parses as Prometheus text; time-to-first-token and tokens/s count each completion', async () => {
    const scrape = async () => parsePrometheusText(await (await fetch(`${url}/metrics`)).text());
    const before = await scrape();
    expect(before.get('nodejs_heap_size_used_bytes')?.type).toBe('gauge');
    expect(before.get('nodejs_gc_duration_seconds')?.type).toBe('histogram');
    const ttft0 = sampleValue(before, 'mnemo_time_to_first_token_seconds_count')!;
    const rate0 = sampleValue(before, 'mnemo_request_tokens_per_second_count')!;
    for (let i = 0; i < 2; i++) {
      const res = await post(`${url}/v1/completions`, { prompt: 'hello', max_tokens: 3, temperature: 0, seed: i });
      expect(res.status).toBe(200);
    }
    const after = await scrape();
    expect(sampleValue(after, 'mnemo_time_to_first_token_seconds_count')).toBe(ttft0 + 2);
    expect(sampleValue(after, 'mnemo_request_tokens_per_second_count')).toBe(rate0 + 2);
    expect(sampleValue(after, 'mnemo_time_to_first_token_seconds_sum')).toBeGreaterThan(
      sampleValue(before, 'mnemo_time_to_first_token_seconds_sum')!,
    );
  });
});

describe('errors (real model)', () => {
  const bad: Array<[string, unknown, number, string | null, string?]> = [
    ['malformed JSON', '{"prompt": "a",', 400, null, 'invalid_json'],
    ['missing prompt', { max_tokens: 3 }, 400, 'prompt'],
    ['prompt wrong type', { prompt: 5 }, 400, 'prompt'],
    ['prompt array of mixed types', { prompt: ['a', 2] }, 400, 'prompt'],
    ['token id past the vocabulary', { prompt: [1, 2, 1_000_000] }, 400, 'prompt.2', 'invalid_token_id'],
    ['logit_bias key not a token id', { prompt: 'a', logit_bias: { '99999': 5 } }, 400, 'logit_bias.99999', 'invalid_token_id'],
    ['logit_bias out of range', { prompt: 'a', logit_bias: { '5': 101 } }, 400, 'logit_bias.5'],
    ['suffix', { prompt: 'a', suffix: 'end' }, 400, 'suffix', 'unsupported_parameter'],
    ['best_of', { prompt: 'a', best_of: 3 }, 400, 'best_of', 'unsupported_parameter'],
    ['max_tokens wrong type', { prompt: 'a', max_tokens: 'many' }, 400, 'max_tokens', 'invalid_type'],
    ['max_tokens negative', { prompt: 'a', max_tokens: -1 }, 400, 'max_tokens'],
    ['max_tokens above the limit', { prompt: 'a', max_tokens: 65 }, 400, 'max_tokens', 'max_tokens_too_large'],
    ['temperature out of range', { prompt: 'a', temperature: 3 }, 400, 'temperature'],
    ['top_p zero', { prompt: 'a', top_p: 0 }, 400, 'top_p'],
    ['stop wrong type', { prompt: 'a', stop: 7 }, 400, 'stop'],
    ['stream wrong type', { prompt: 'a', stream: 'yes' }, 400, 'stream'],
    ['seed fractional', { prompt: 'a', seed: 1.5 }, 400, 'seed'],
    ['unknown field', { prompt: 'a', tempreature: 0 }, 400, 'tempreature', 'unknown_parameter'],
    ['n too large', { prompt: 'a', n: 17 }, 400, 'n'],
    ['max_tokens 0 without echo', { prompt: 'a', max_tokens: 0 }, 400, 'max_tokens'],
    // bytes the tokenizer never merged: one token each, 42 > --max-prompt-tokens 40
    ['prompt too long', { prompt: 'ÿ'.repeat(21) }, 400, 'prompt', 'context_length_exceeded'],
    ['unknown model', { prompt: 'a', model: 'gpt-4' }, 404, 'model', 'model_not_found'],
    ['body not an object', '[1, 2]', 400, null],
  ];

  it.each(bad)('%s → %i naming the parameter', async (_name, body, status, param, code) => {
    const res = await post(`${url}/v1/completions`, body);
    expect(res.status).toBe(status);
    const e = (await res.json()) as ErrorBody;
    expect(e.error.type).toBe('invalid_request_error');
    expect(e.error.param).toBe(param);
    expect(e.error.message.length).toBeGreaterThan(10);
    if (code) expect(e.error.code).toBe(code);
  });

  it('lookup errors, 413 on a large body, 404 on unknown routes, 405 on a wrong method, and the server stays up', async () => {
    const cases: Array<[Response, number, string | null]> = [
      [await post(`${url}/v1/memory/lookup`, { text: '' }), 400, 'text'],
      [await post(`${url}/v1/memory/lookup`, { text: 'a', extra: 1 }), 400, 'extra'],
      [await post(`${url}/v1/memory/lookup`, { text: 'a', top_k: -1 }), 400, 'top_k'],
      [await post(`${url}/v1/completions`, { prompt: 'z'.repeat(2 << 20) }), 413, null],
      [await fetch(`${url}/v1/nothing`), 404, null],
    ];
    const wrongMethod = await fetch(`${url}/v1/completions`);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    cases.push([wrongMethod, 405, null]);
    for (const [res, status, param] of cases) {
      expect(res.status).toBe(status);
      const e = (await res.json()) as ErrorBody;
      expect(e.error.type).toBe('invalid_request_error');
      expect(e.error.param).toBe(param);
    }
    expect((await post(`${url}/v1/completions`, { prompt: 'ok', max_tokens: 2 })).status).toBe(200);
  });

  it('bearer auth: 401 without or with a wrong key, 200 with the right one; health stays open', async () => {
    const { url: u } = await start({ apiKey: 's3cret' });
    const body = { prompt: 'a', max_tokens: 2 };
    const none = await post(`${u}/v1/completions`, body);
    expect(none.status).toBe(401);
    expect(((await none.json()) as ErrorBody).error.code).toBe('invalid_api_key');
    expect((await post(`${u}/v1/completions`, body, { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await fetch(`${u}/v1/models`)).status).toBe(401);
    expect((await post(`${u}/v1/completions`, body, { authorization: 'Bearer s3cret' })).status).toBe(200);
    expect((await fetch(`${u}/healthz`)).status).toBe(200);
  });

  it('429 with Retry-After when the queue is full, and served again afterwards', async () => {
    const { server: s, url: u } = await start({ maxBatch: 1, maxQueue: 1, maxTokens: 64 });
    const all = await Promise.all(
      Array.from({ length: 8 }, (_, i) => post(`${u}/v1/completions`, { prompt: `p${i}`, max_tokens: 40, temperature: 0 })),
    );
    const codes = all.map((r) => r.status);
    expect(codes.filter((c) => c === 200).length).toBeGreaterThanOrEqual(2);
    const refused = all.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const e = (await r.json()) as ErrorBody;
      expect(e.error.type).toBe('rate_limit_error');
      expect(e.error.code).toBe('queue_full');
    }
    expect(s.metrics.queueRejections.get()).toBe(refused.length);
    await s.scheduler!.idle();
    expect((await post(`${u}/v1/completions`, { prompt: 'again', max_tokens: 2 })).status).toBe(200);
  });
});

describe('resources (real model)', () => {
  it('the tensor count is flat over ~200 requests of every kind', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    // a first round warms the model's per-length caches (causal masks), the second must leak nothing
    await mixedRequests(200);
    await server.scheduler!.idle();
    const before = tf.memory().numTensors;
    await mixedRequests(200);
    await server.scheduler!.idle();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('clients that disconnect, queued or generating, leave no KV cache behind', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    const { server: s, url: u } = await start({ batching: false, maxTokens: 60 });
    const body = JSON.stringify({ prompt: 'Memory layers', max_tokens: 60, temperature: 0, stream: true });
    const round = async () => {
      const acs = Array.from({ length: 6 }, () => new AbortController());
      let first!: () => void;
      const firstEvent = new Promise<void>((r) => {
        first = r;
      });
      const reads = acs.map((ac) =>
        fetch(`${u}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: ac.signal })
          .then((r) => readSse(r, () => first()))
          .catch(() => null),
      );
      await firstEvent; // one request generating, five queued behind it
      for (const ac of acs) ac.abort();
      await Promise.all(reads);
      await new Promise((r) => setTimeout(r, 20));
      await s.scheduler!.idle();
    };
    await round(); // warm-up
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await round();
    expect(tf.memory().numTensors).toBe(before);
    expect(s.metrics.completions.get({ outcome: 'cancelled', finish_reason: 'none' })).toBeGreaterThanOrEqual(20);
  });
});

async function mixedRequests(n: number): Promise<void> {
  const reqs: Array<Promise<unknown>> = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 4;
    const p =
      kind === 0
        ? post(`${url}/v1/completions`, { prompt: `r${i}`, max_tokens: 4, temperature: 0.5, seed: i }).then((r) => r.json())
        : kind === 1
          ? post(`${url}/v1/completions`, { prompt: `s${i}`, max_tokens: 4, stream: true }).then(readSse)
          : kind === 2
            ? post(`${url}/v1/memory/lookup`, { text: `l${i}` }).then((r) => r.json())
            : post(`${url}/v1/completions`, { prompt: 'x', max_tokens: 'bad' }).then((r) => r.json());
    reqs.push(p);
    if (reqs.length === 16) await Promise.all(reqs.splice(0));
  }
  await Promise.all(reqs);
}
