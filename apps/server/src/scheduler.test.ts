import { describe, expect, it } from 'vitest';
import { ApiError } from './errors';
import { type JobRequest, Scheduler } from './scheduler';
import { FakeEngine } from './testing/fake-engine';

const enc = (s: string) => [...new TextEncoder().encode(s)];

function req(prompt: string, over: Partial<JobRequest> = {}): JobRequest {
  return {
    promptIds: enc(prompt),
    maxTokens: 12,
    sampling: { temperature: 0, topP: 1 },
    stop: [],
    seed: 1,
    deadline: Date.now() + 60_000,
    ...over,
  };
}

const prompts = ['alpha', 'b', 'gamma ray', 'delta', 'epsilon', 'zeta!'];
const settings = prompts.map((_, i) => ({
  maxTokens: 5 + 3 * i,
  sampling: { temperature: i % 2 ? 0.8 : 0, topP: 1 },
  seed: 100 + i,
}));

describe('Scheduler', () => {
  it('batched decoding gives each request the same output as running it alone', async () => {
    const alone: string[] = [];
    for (let i = 0; i < prompts.length; i++) {
      const s = new Scheduler(new FakeEngine(), { maxBatch: 1, maxQueue: 10, batching: false });
      alone.push((await s.submit(req(prompts[i]!, settings[i])).result).text);
    }
    const engine = new FakeEngine();
    const s = new Scheduler(engine, { maxBatch: 4, maxQueue: 10, batching: true });
    const results = await Promise.all(prompts.map((p, i) => s.submit(req(p, settings[i])).result));
    expect(results.map((r) => r.text)).toEqual(alone);
    expect(results.every((r) => r.outcome === 'finished' && r.finishReason === 'length')).toBe(true);
    expect(results.map((r) => r.completionTokens)).toEqual(settings.map((x) => x.maxTokens));
    // steps really were batched, never above maxBatch, and every cache was freed
    expect(Math.max(...engine.batchSizes)).toBe(4);
    expect(engine.liveCaches).toBe(0);
    // sampling at temperature > 0 depends on the seed
    const other = await s.submit(req(prompts[1]!, { ...settings[1]!, seed: 7 })).result;
    expect(other.text).not.toBe(alone[1]);
  });

  it('with batching off, decodes one sequence at a time', async () => {
    const engine = new FakeEngine();
    const s = new Scheduler(engine, { maxBatch: 8, maxQueue: 10, batching: false });
    await Promise.all(prompts.map((p) => s.submit(req(p)).result));
    expect(new Set(engine.batchSizes)).toEqual(new Set([1]));
  });

  it('refuses with 429 and Retry-After when the queue is full', async () => {
    const s = new Scheduler(new FakeEngine(), { maxBatch: 2, maxQueue: 3, batching: true });
    // 2 free slots + 3 queue places
    const jobs = Array.from({ length: 5 }, () => s.submit(req('x')));
    let err: unknown;
    try {
      s.submit(req('x'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(429);
    expect(Number((err as ApiError).headers['retry-after'])).toBeGreaterThanOrEqual(1);
    await Promise.all(jobs.map((j) => j.result));
    expect((await s.submit(req('x')).result).outcome).toBe('finished');
  });

  it('cancelling frees the cache and stops generation', async () => {
    const engine = new FakeEngine({ stepMs: 2 });
    const s = new Scheduler(engine, { maxBatch: 4, maxQueue: 10, batching: true });
    let deltas = 0;
    const job = s.submit(req('hello', { maxTokens: 200 }), () => {
      deltas++;
      if (deltas === 3) job.cancel();
    });
    const r = await job.result;
    expect(r.outcome).toBe('cancelled');
    expect(r.completionTokens).toBeLessThan(10);
    expect(engine.liveCaches).toBe(0);
    await s.idle();
  });

  it('a queued job cancelled before it got a slot is never prefilled (no leaked cache)', async () => {
    const engine = new FakeEngine();
    const s = new Scheduler(engine, { maxBatch: 2, maxQueue: 4, batching: true });
    const a = s.submit(req('a', { maxTokens: 3 }));
    const b = s.submit(req('b'));
    b.cancel(); // before the first tick: b is reaped while still in the queue
    expect((await b.result).outcome).toBe('cancelled');
    expect((await a.result).outcome).toBe('finished');
    await s.idle();
    expect(engine.prefills).toBe(1);
    expect(engine.liveCaches).toBe(0);
  });

  it('a job past its deadline ends with outcome timeout, queued or running', async () => {
    const engine = new FakeEngine({ stepMs: 5 });
    const s = new Scheduler(engine, { maxBatch: 1, maxQueue: 10, batching: true });
    const running = s.submit(req('a', { maxTokens: 1000, deadline: Date.now() + 60 }));
    const queued = s.submit(req('b', { deadline: Date.now() + 30 }));
    const [r1, r2] = await Promise.all([running.result, queued.result]);
    expect(r1.outcome).toBe('timeout');
    expect(r1.completionTokens).toBeGreaterThan(0);
    expect(r2.outcome).toBe('timeout');
    expect(queued.started).toBe(false);
    expect(engine.liveCaches).toBe(0);
  });

  it('stops at the context length with finish_reason length, and on end-of-sequence with stop', async () => {
    const s = new Scheduler(new FakeEngine({ maxSeqLen: 10 }), { maxBatch: 2, maxQueue: 2, batching: true });
    const r = await s.submit(req('abcd', { maxTokens: 100 })).result;
    expect(r.finishReason).toBe('length');
    // 4 prompt tokens fill positions 0..3; tokens 1..6 are fed at 4..9; the 7th cannot be fed
    expect(r.completionTokens).toBe(7);
    const e = new Scheduler(new FakeEngine({ eosAfter: 3 }), { maxBatch: 2, maxQueue: 2, batching: true });
    const r2 = await e.submit(req('abcd', { maxTokens: 100 })).result;
    expect(r2.finishReason).toBe('stop');
    expect(r2.tokens.length).toBe(3);
    expect(r2.completionTokens).toBe(3); // the end-of-sequence token is not counted
  });

  it('an engine failure ends the affected jobs with outcome error and the scheduler keeps serving', async () => {
    const engine = new FakeEngine();
    const s = new Scheduler(engine, { maxBatch: 2, maxQueue: 2, batching: true });
    const orig = engine.prefill.bind(engine);
    engine.prefill = () => {
      throw new Error('boom');
    };
    const r = await s.submit(req('a')).result;
    expect(r.outcome).toBe('error');
    expect(r.error?.message).toBe('boom');
    engine.prefill = orig;
    expect((await s.submit(req('a')).result).outcome).toBe('finished');
    expect(engine.liveCaches).toBe(0);
  });
  it('tasks share the queue: first come first served, the same bound (429), a deadline (408), shutdown (503)', async () => {
    const engine = new FakeEngine();
    const s = new Scheduler(engine, { maxBatch: 1, maxQueue: 2, batching: true });
    const order: string[] = [];
    const a = s.submit(req('a', { maxTokens: 3 }));
    const b = s.submit(req('b', { maxTokens: 3 }));
    const t = s.submitTask(() => {
      order.push(`task after ${engine.prefills} prefills`);
      return 42;
    }, Date.now() + 60_000);
    // 1 free slot + 2 queue places are taken
    expect(() => s.submitTask(() => 0, Date.now() + 60_000)).toThrow(expect.objectContaining({ status: 429, code: 'queue_full' }));
    expect(await t.result).toBe(42);
    // the task waited behind b, which waited for a's slot: both were prefilled first
    expect(order).toEqual(['task after 2 prefills']);
    await Promise.all([a.result, b.result]);
    // past its deadline while queued: 408, never run
    let ran = false;
    const late = s.submitTask(() => {
      ran = true;
    }, Date.now() - 1);
    await expect(late.result).rejects.toMatchObject({ status: 408, code: 'timeout' });
    // shutdown cuts off what is queued: jobs end 'shutdown', tasks reject 503
    const j = s.submit(req('c', { maxTokens: 50 }));
    const k = s.submit(req('d', { maxTokens: 50 }));
    const u = s.submitTask(() => {
      ran = true;
    }, Date.now() + 60_000);
    s.cancelAll('shutdown');
    expect((await j.result).outcome).toBe('shutdown');
    expect((await k.result).outcome).toBe('shutdown');
    await expect(u.result).rejects.toMatchObject({ status: 503, code: 'shutting_down' });
    expect(ran).toBe(false);
    await s.idle();
    expect(engine.liveCaches).toBe(0);
  });
});
