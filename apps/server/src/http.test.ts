/**
 * The HTTP layer over a fake engine: timing-dependent behaviour (timeouts, disconnects,
 * loading state, shutdown) where a deterministic, adjustable compute cost is needed.
 * The same API against the real model: server.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { MnemoServer } from './server';
import { FakeEngine } from './testing/fake-engine';
import { post, readSse, startServer } from './testing/http';

let running: MnemoServer[] = [];
afterEach(async () => {
  await Promise.all(running.map((s) => s.shutdown()));
  running = [];
});

async function start(engine: FakeEngine | null, opts = {}) {
  const r = await startServer(engine, opts);
  running.push(r.server);
  return r;
}

describe('HTTP layer (fake engine)', () => {
  it('answers 503 on /readyz and /v1/* until the model is attached, then 200', async () => {
    const { server, url } = await start(null);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    const r = await post(`${url}/v1/completions`, { prompt: 'a' });
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('model_loading');
    server.setEngine(new FakeEngine());
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect((await post(`${url}/v1/completions`, { prompt: 'a' })).status).toBe(200);
  });

  it('times out with 408 (not streamed) and with an error event mid-stream', async () => {
    // one step takes 60 ms and the limit is 150 ms: neither the 1000-token stream nor the
    // 5-token request behind it (≥ 5 steps) can finish in time, whatever the scheduling
    // (timing out while still queued: scheduler.test.ts). Greedy: the fake model's greedy
    // text is plain ASCII, never held back, never an end-of-sequence token.
    const engine = new FakeEngine({ stepMs: 60 });
    const { url } = await start(engine, { maxBatch: 1, timeoutMs: 150, maxTokens: 1000 });
    const streaming = post(`${url}/v1/completions`, { prompt: 'a', max_tokens: 1000, stream: true, temperature: 0 });
    await new Promise((r) => setTimeout(r, 20));
    const queued = await post(`${url}/v1/completions`, { prompt: 'b', max_tokens: 5, temperature: 0 });
    expect(queued.status).toBe(408);
    expect(((await queued.json()) as { error: unknown }).error).toMatchObject({ type: 'timeout_error', code: 'timeout' });
    const s = await readSse(await streaming);
    expect(s.done).toBe(true);
    expect(s.text.length).toBeGreaterThan(0);
    const last = s.events[s.events.length - 1] as { error: { code: string } };
    expect(last.error.code).toBe('timeout');
    expect(engine.liveCaches).toBe(0);
  });

  it('a client that disconnects cancels its generation and frees the cache', async () => {
    const engine = new FakeEngine({ stepMs: 2 });
    const { server, url } = await start(engine, { maxTokens: 5000 });
    for (const stream of [true, false]) {
      const ac = new AbortController();
      const res = fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'a', max_tokens: 5000, stream, temperature: 0 }),
        signal: ac.signal,
      }).then((r) => (stream ? readSse(r) : r.json()));
      res.catch(() => {});
      await waitFor(() => engine.liveCaches === 1);
      ac.abort();
      await waitFor(() => engine.liveCaches === 0);
    }
    await server.scheduler!.idle();
    expect(server.metrics.completions.get({ outcome: 'cancelled', finish_reason: 'none' })).toBe(2);
    // far fewer than the 2 x 5000 tokens asked for
    expect(server.metrics.tokensGenerated.get()).toBeLessThan(2000);
  });
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const t = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > t) throw new Error('waitFor: condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
