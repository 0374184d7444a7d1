/**
 * The server under attack, over real HTTP on 127.0.0.1 (raw sockets where fetch would normalise
 * the request): the holes of issue 20, each as a test that failed on the code before the fix.
 * What each test proves: docs/security.md.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '@mnemo/kernels';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ModelEngine } from './model-engine';
import type { ServerOptionsInput } from './options';
import type { MnemoServer } from './server';
import { saveTinyCheckpoint } from './testing/checkpoint';
import { FakeEngine } from './testing/fake-engine';
import { post, readSse, startServer } from './testing/http';
import { expectErrorShape, rawGet, rawJson, rawRequest } from './testing/raw';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

let running: MnemoServer[] = [];
afterEach(async () => {
  await Promise.all(running.map((s) => s.shutdown()));
  running = [];
});

async function start(engine: FakeEngine | ModelEngine | null, opts: ServerOptionsInput = {}) {
  const r = await startServer(engine, opts);
  running.push(r.server);
  return { ...r, port: r.server.port };
}

const completion = { prompt: 'a', max_tokens: 2, temperature: 0 };

describe('authentication is decided on the matched route', () => {
  it('percent-encoded and absolute-form targets of /v1/* get 401 without the key, 200 with it', async () => {
    const { port } = await start(new FakeEngine(), { apiKey: 's3cret' });
    const key = { authorization: 'Bearer s3cret' };
    const targets: Array<[string, string]> = [
      ['POST', '/%761/completions'],
      ['POST', '/v%31/completions'],
      ['POST', '/%76%31/%63ompletions'],
      ['POST', `http://127.0.0.1:${port}/v1/completions`],
      ['POST', 'http://elsewhere/v1/completions'],
      ['POST', '/v1/completions'],
      ['GET', '/v%31/models'],
      ['GET', `http://127.0.0.1:${port}/v1/models`],
      ['GET', '/v1/models/fake'],
      ['GET', '/v1/models/%66ake'],
      ['POST', '/v1/memory/%6cookup'],
    ];
    for (const [method, target] of targets) {
      const body = target.includes('memory') ? { text: 'ab' } : method === 'POST' ? completion : undefined;
      const req = (h: Record<string, string>) => (body ? rawJson(method, target, body, h) : rawGet(target, h, method));
      const denied = await rawRequest(port, req({}));
      expect([target, denied.status]).toEqual([target, 401]);
      expect(expectErrorShape(denied.body, 401).error.code).toBe('invalid_api_key');
      expect(denied.headers['www-authenticate']).toBe('Bearer');
      const allowed = await rawRequest(port, req(key));
      expect([target, allowed.status]).toEqual([target, 200]);
    }
    // unknown routes and wrong methods need the key too (fail closed: nothing about the API leaks)
    expect((await rawRequest(port, rawGet('/v2/anything'))).status).toBe(401);
    expect((await rawRequest(port, rawGet('/v1/completions', {}, 'DELETE'))).status).toBe(401);
    // the open routes stay open however they are spelled
    for (const t of ['/healthz', '/%68ealthz', `http://127.0.0.1:${port}/readyz`, '/metrics']) {
      expect([t, (await rawRequest(port, rawGet(t))).status]).toEqual([t, 200]);
    }
    expect((await rawRequest(port, rawGet('/healthz', {}, 'HEAD'))).status).toBe(200);
    expect((await rawRequest(port, rawGet('/v1/models', {}, 'HEAD'))).status).toBe(401);
  });

  it('the shutdown guard covers encoded and absolute-form targets (503, not served)', async () => {
    const engine = new FakeEngine();
    const { server, port } = await start(engine);
    server.closing = true; // the flag shutdown() sets first, without closing the listener
    try {
      for (const t of ['/v1/completions', '/%761/completions', `http://127.0.0.1:${port}/v%31/completions`]) {
        const r = await rawRequest(port, rawJson('POST', t, completion));
        expect([t, r.status]).toEqual([t, 503]);
        expect(expectErrorShape(r.body, 503).error.code).toBe('shutting_down');
        expect(r.headers.connection).toBe('close');
      }
      expect(engine.prefills).toBe(0);
      expect((await rawRequest(port, rawGet('/readyz'))).status).toBe(503);
      expect((await rawRequest(port, rawGet('/healthz'))).status).toBe(200);
    } finally {
      server.closing = false;
    }
  });
});

describe('the prompt limit bounds tokenizer work before it starts (real BPE)', () => {
  let tmp: string;
  let engine: ModelEngine;
  beforeAll(async () => {
    await initBackend();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'mnemo-sec-'));
    saveTinyCheckpoint(path.join(tmp, 'tiny'));
    engine = ModelEngine.load(path.join(tmp, 'tiny'));
  });
  afterAll(() => {
    engine.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('1 MB and 3 MB one-word prompts answer 400 at once while /healthz keeps answering', async () => {
    const { url } = await startServer(engine, { port: 0, bodyLimit: 4 << 20 }).then((r) => {
      running.push(r.server);
      return r;
    });
    // /healthz polled throughout: its worst latency is the event loop's longest block
    let polling = true;
    const health: number[] = [];
    const poller = (async () => {
      while (polling) {
        const t0 = performance.now();
        expect((await fetch(`${url}/healthz`)).status).toBe(200);
        health.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await new Promise((r) => setTimeout(r, 30));
    // the event loop's longest block in this process (the server runs here): the direct measure of
    // tokenizer work done before the limit is checked, whatever else the machine is doing
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    const answers: Array<[string, number, number]> = [];
    for (const mb of [1, 3]) {
      const word = 'memory'.repeat(Math.ceil((mb * 1e6) / 6));
      for (const [route, body] of [
        ['/v1/completions', { prompt: word, max_tokens: 1 }],
        ['/v1/memory/lookup', { text: word }],
      ] as const) {
        const json = JSON.stringify(body); // serialised before the clock starts: the server's time is measured
        // the fastest of 5 tries: the suite runs beside other packages' tests on 2 cores, so a try
        // may wait for a core; the old code took ~4 s per MB on every try
        const times: number[] = [];
        let status = 0;
        for (let k = 0; k < 5; k++) {
          const t0 = performance.now();
          const res = await post(`${url}${route}`, json);
          times.push(performance.now() - t0);
          const e = (await res.json()) as ErrorBody;
          expect(e.error.code).toBe('context_length_exceeded');
          status = res.status;
        }
        answers.push([`${mb} MB ${route}`, status, Math.min(...times)]);
      }
    }
    // three at once, as in the probe
    const json = JSON.stringify({ prompt: 'memory'.repeat(1e6 / 6) });
    const t0 = performance.now();
    const three = await Promise.all([0, 1, 2].map(() => post(`${url}/v1/completions`, json)));
    answers.push(['3 × 1 MB at once', three.every((r) => r.status === 400) ? 400 : 0, (performance.now() - t0) / 3]);
    loop.disable();
    polling = false;
    await poller;
    if (process.env.MNEMO_SEC_LOG) console.log(answers, Math.max(...health));
    for (const [what, status, ms] of answers) {
      expect([what, status]).toEqual([what, 400]);
      // wall clock includes waiting for a core when the suite runs beside other packages' tests on
      // 2 cores (the fastest of 5 tries took > 100 ms there; 20–70 ms on a quiet machine). The old
      // code took ~4,000 ms per MB on every try.
      expect([what, ms < 500]).toEqual([what, true]);
    }
    expect(health.length).toBeGreaterThan(3);
    // ns → ms. The loop also parses the 1–3 MB JSON bodies and collects their garbage: 112 ms was
    // seen on a clean clone's CI run (packages' suites in parallel on 2 cores), 20–70 ms quiet;
    // the old code blocked ~4,000 ms per MB
    expect(loop.max / 1e6).toBeLessThan(1000);
    // /healthz answered meanwhile: median 140 ms was seen in CI with other work on both cores
    // (a few ms quiet); the old code held it ~4,000 ms per MB
    expect(health.sort((a, b) => a - b)[Math.floor(health.length / 2)]!).toBeLessThan(1000);
  });
});

describe('slow clients and connection counts', () => {
  it('a slow-body client (1 byte every 100 ms) is answered 408 and closed within the request timeout', async () => {
    const timeout = 400;
    const { port } = await start(new FakeEngine(), { requestTimeoutMs: timeout });
    const body = JSON.stringify(completion);
    const res = await new Promise<{ ms: number; text: string; sent: number }>((resolve, reject) => {
      const t0 = performance.now();
      const sock = connect(port, '127.0.0.1');
      let text = '';
      let sent = 0;
      sock.on('data', (d) => {
        text += d;
      });
      sock.on('error', () => {});
      sock.write(
        `POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`,
      );
      const drip = setInterval(() => {
        if (sent < body.length - 1 && !sock.destroyed) sock.write(body[sent++]!);
      }, 100);
      const guard = setTimeout(() => {
        clearInterval(drip);
        sock.destroy();
        reject(new Error('the slow client was still connected after 5 s'));
      }, 5000);
      sock.on('close', () => {
        clearInterval(drip);
        clearTimeout(guard);
        resolve({ ms: performance.now() - t0, text, sent });
      });
    });
    // closed after the limit (it was really dripping) and soon after it (the check runs every timeout / 4)
    expect(res.ms).toBeGreaterThanOrEqual(timeout - 20);
    expect(res.ms).toBeLessThan(timeout * 2 + 200);
    expect(res.sent).toBeGreaterThan(1);
    expect(res.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(expectErrorShape(res.text.slice(res.text.indexOf('\r\n\r\n') + 4), 408).error.code).toBe('request_timeout');
  });

  it('a client that sends half its headers and stops is closed too', async () => {
    const { port } = await start(new FakeEngine(), { requestTimeoutMs: 300 });
    const t0 = performance.now();
    const r = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: 1', 5000);
    expect(r.status).toBe(408);
    expect(r.ms).toBeLessThan(1000);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(280);
  });

  it('connections over --max-connections are closed at once; a slot that frees is usable again', async () => {
    const { port } = await start(new FakeEngine(), { maxConnections: 3 });
    const open = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<ReturnType<typeof connect>>((resolve) => {
            const s = connect(port, '127.0.0.1', () => resolve(s));
            s.on('error', () => {});
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 50));
    const extra = await new Promise<{ closed: boolean; data: string }>((resolve) => {
      const s = connect(port, '127.0.0.1');
      let data = '';
      s.on('data', (d) => {
        data += d;
      });
      s.on('error', () => {});
      s.on('connect', () => s.write(rawGet('/healthz')));
      s.on('close', () => resolve({ closed: true, data }));
      setTimeout(() => resolve({ closed: false, data }), 2000);
    });
    expect(extra).toEqual({ closed: true, data: '' });
    open[0]!.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect((await rawRequest(port, rawGet('/healthz'))).status).toBe(200);
    for (const s of open) s.destroy();
  });
});

describe('memory lookups go through the queue', () => {
  it('429 when the queue is full, and a queued lookup waits its turn', async () => {
    const engine = new FakeEngine({ stepMs: 5 });
    const { server, url } = await start(engine, { maxBatch: 1, maxQueue: 1, maxTokens: 2000 });
    // one stream generating, one completion waiting: the queue is full
    const ac = new AbortController();
    const first = new Promise<void>((resolve) => {
      fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'a', max_tokens: 2000, stream: true, temperature: 0 }),
        signal: ac.signal,
      })
        .then((r) => readSse(r, () => resolve()))
        .catch(() => {});
    });
    await first;
    const queued = post(`${url}/v1/completions`, { prompt: 'b', max_tokens: 2, temperature: 0 });
    while (server.scheduler!.queueDepth < 1) await new Promise((r) => setTimeout(r, 2));
    const refused = await post(`${url}/v1/memory/lookup`, { text: 'abc' });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(expectErrorShape(await refused.text(), 429).error.code).toBe('queue_full');
    expect(engine.lookups).toBe(0);
    expect(server.metrics.queueRejections.get()).toBe(1);
    ac.abort();
    expect((await queued).status).toBe(200);
    const ok = await post(`${url}/v1/memory/lookup`, { text: 'abc' });
    expect(ok.status).toBe(200);
    expect(engine.lookups).toBe(1);
  });

  it('lookups queued behind a long one time out with 408 (--timeout-ms), and nothing runs them late', async () => {
    // four lookups pipelined on one connection reach the queue together; with maxBatch 1 one task
    // runs per tick and each spins 150 ms, so the three behind the first wait past the 100 ms limit
    const engine = new FakeEngine({ lookupMs: 150 });
    const { port } = await start(engine, { maxBatch: 1, maxQueue: 8, timeoutMs: 100 });
    const reqs = [0, 1, 2, 3].map((i) =>
      rawJson('POST', '/v1/memory/lookup', { text: 'abc' }, { connection: i === 3 ? 'close' : 'keep-alive' }),
    );
    const r = await rawRequest(port, reqs.join(''), 10_000);
    const all = splitResponses(
      `HTTP/1.1 ${r.status} x\r\n${Object.entries(r.headers)
        .map(([k, v]) => `${k}: ${v}`)
        .join('\r\n')}\r\n\r\n${r.body}`,
    );
    expect(all.length).toBe(4);
    const codes = all.map((x) => x.status);
    expect(codes).toEqual([200, 408, 408, 408]);
    for (const x of all.slice(1)) expect(expectErrorShape(x.body, 408).error.code).toBe('timeout');
    expect(engine.lookups).toBe(1);
  });
});

/** Responses one after another on one connection (Content-Length bodies). */
function splitResponses(text: string): Array<{ status: number; body: string }> {
  const out: Array<{ status: number; body: string }> = [];
  let rest = Buffer.from(text);
  while (rest.length) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = rest.subarray(0, end).toString();
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
    const len = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
    out.push({ status, body: rest.subarray(end + 4, end + 4 + len).toString() });
    rest = rest.subarray(end + 4 + len);
  }
  return out;
}

describe('shutdown', () => {
  it('grace expiry ends a stream with an error event and [DONE], answers a queued request 503; new connections are refused', async () => {
    const engine = new FakeEngine({ stepMs: 10 });
    const { server, url, port } = await start(engine, { maxBatch: 1, maxTokens: 5000, shutdownGraceMs: 300 });
    let firstEvent!: () => void;
    const started = new Promise<void>((r) => {
      firstEvent = r;
    });
    const stream = post(`${url}/v1/completions`, { prompt: 'a', max_tokens: 5000, stream: true, temperature: 0 }).then((r) =>
      readSse(r, () => firstEvent()),
    );
    await started;
    const queued = post(`${url}/v1/completions`, { prompt: 'b', max_tokens: 5, temperature: 0 });
    const queuedLookup = post(`${url}/v1/memory/lookup`, { text: 'b' });
    while (server.scheduler!.queueDepth < 2) await new Promise((r) => setTimeout(r, 2));
    const done = server.shutdown();
    // the listener is closed: a new connection is refused (docs: README "shutdown")
    await new Promise((r) => setTimeout(r, 20));
    const fresh = await rawRequest(port, rawGet('/healthz'), 2000).then(
      (r) => r.status,
      (e: Error) => e.message,
    );
    expect(String(fresh)).toMatch(/no HTTP response/);
    const s = await stream;
    expect(s.done).toBe(true);
    const last = s.events[s.events.length - 1] as ErrorBody;
    expect(last.error).toMatchObject({ type: 'service_unavailable', code: 'shutting_down' });
    expect(s.text.length).toBeGreaterThan(0);
    for (const q of [await queued, await queuedLookup]) {
      expect(q.status).toBe(503);
      expect(expectErrorShape(await q.text(), 503).error.code).toBe('shutting_down');
    }
    await done;
    running = running.filter((x) => x !== server);
    expect(engine.liveCaches).toBe(0);
  }, 10_000);
});

describe('shutdown, on a connection that was already open', () => {
  it('a request that arrives after shutdown began gets 503 shutting_down with Connection: close', async () => {
    const engine = new FakeEngine({ stepMs: 10 });
    const { server, url, port } = await start(engine, { maxTokens: 5000, shutdownGraceMs: 2000 });
    // a stream keeps the server in its grace period
    let firstEvent!: () => void;
    const started = new Promise<void>((r) => {
      firstEvent = r;
    });
    const ac = new AbortController();
    const stream = fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a', max_tokens: 5000, stream: true, temperature: 0 }),
      signal: ac.signal,
    })
      .then((r) => readSse(r, () => firstEvent()))
      .catch(() => null);
    await started;
    // a second connection, mid-request (half its headers sent): not idle, so shutdown keeps it
    const sock = connect(port, '127.0.0.1');
    let text = '';
    sock.on('data', (d) => {
      text += d;
    });
    sock.on('error', () => {});
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    await new Promise<void>((r) => sock.on('connect', () => r()));
    const body = JSON.stringify(completion);
    sock.write(`POST /%761/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n`);
    await new Promise((r) => setTimeout(r, 30));
    const done = server.shutdown();
    await new Promise((r) => setTimeout(r, 30));
    sock.write(`content-length: ${body.length}\r\n\r\n${body}`);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]);
    sock.destroy();
    expect(text).toMatch(/^HTTP\/1\.1 503 /);
    expect(text.toLowerCase()).toContain('connection: close');
    expect(expectErrorShape(text.slice(text.indexOf('\r\n\r\n') + 4), 503).error.code).toBe('shutting_down');
    expect(engine.prefills).toBe(1); // only the stream's
    ac.abort();
    await stream;
    await done;
    running = running.filter((x) => x !== server);
  }, 10_000);
});

describe('errors of the parser and the router are in the OpenAI shape', () => {
  it('bad URL 400, long path segment 414, huge headers 431, malformed HTTP 400; wrong methods 405 with Allow', async () => {
    const { port } = await start(new FakeEngine());
    const cases: Array<[string, string, number, string]> = [
      ['bad escape', rawGet('/v1/models/%zz'), 400, 'invalid_url'],
      ['long segment', rawGet(`/v1/models/${'x'.repeat(300)}`), 414, 'uri_too_long'],
      ['huge header', rawGet('/healthz', { 'x-big': 'y'.repeat(20_000) }), 431, 'headers_too_large'],
      ['huge URL', rawGet(`/healthz?${'q'.repeat(20_000)}`), 431, 'headers_too_large'],
      ['not HTTP', 'HELLO\r\n\r\n', 400, 'bad_request'],
      ['bad content-length', 'POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: x\r\n\r\n', 400, 'bad_request'],
      ['DELETE completions', rawGet('/v1/completions', {}, 'DELETE'), 405, 'method_not_allowed'],
      ['GET completions', rawGet('/v1/completions'), 405, 'method_not_allowed'],
      ['POST healthz', rawJson('POST', '/healthz', {}), 405, 'method_not_allowed'],
      ['PUT model', rawGet('/v1/models/fake', {}, 'PUT'), 405, 'method_not_allowed'],
      ['unknown', rawGet('/nothing'), 404, 'unknown_url'],
    ];
    for (const [what, req, status, code] of cases) {
      const r = await rawRequest(port, req);
      expect([what, r.status]).toEqual([what, status]);
      expect([what, expectErrorShape(r.body, status).error.code]).toEqual([what, code]);
    }
    expect((await rawRequest(port, rawGet('/v1/completions', {}, 'DELETE'))).headers.allow).toBe('POST');
    expect((await rawRequest(port, rawJson('POST', '/healthz', {}))).headers.allow).toBe('GET, HEAD');
    expect((await rawRequest(port, rawGet('/healthz'))).status).toBe(200);
  });
});

describe('Host header (DNS rebinding)', () => {
  it('a loopback server without a key answers only to loopback Host names', async () => {
    const { port } = await start(new FakeEngine());
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, 'app.localhost', '127.1.2.3']) {
      expect([host, (await rawRequest(port, rawGet('/v1/models', { host }))).status]).toEqual([host, 200]);
    }
    for (const host of [
      `evil.example:${port}`,
      'evil.example',
      '127.0.0.1.evil.example',
      '0.0.0.0',
      `192.168.1.5:${port}`,
      'localhost.evil',
    ]) {
      const r = await rawRequest(port, rawJson('POST', '/v1/completions', completion, { host }));
      expect([host, r.status]).toEqual([host, 403]);
      expect(expectErrorShape(r.body, 403).error.code).toBe('invalid_host');
    }
    // an absolute-form target names the host too
    expect((await rawRequest(port, rawGet('http://evil.example/v1/models'))).status).toBe(403);
  });

  it('with an API key, or --allowed-hosts, the check follows the configuration', async () => {
    const keyed = await start(new FakeEngine(), { apiKey: 'k' });
    expect((await rawRequest(keyed.port, rawGet('/v1/models', { host: 'api.example', authorization: 'Bearer k' }))).status).toBe(200);
    const listed = await start(new FakeEngine(), { allowedHosts: ['api.example'] });
    expect((await rawRequest(listed.port, rawGet('/v1/models', { host: 'API.example:80' }))).status).toBe(200);
    expect((await rawRequest(listed.port, rawGet('/v1/models', { host: '127.0.0.1' }))).status).toBe(403);
    const any = await start(new FakeEngine(), { allowedHosts: ['*'] });
    expect((await rawRequest(any.port, rawGet('/v1/models', { host: 'whatever.example' }))).status).toBe(200);
  });
});
