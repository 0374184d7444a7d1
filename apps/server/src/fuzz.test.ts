/**
 * A bounded fuzz test over real HTTP: a few hundred generated malformed requests (bad JSON,
 * wrong types, huge numbers, unicode, missing fields, bad methods, odd paths and headers), from a
 * fixed seed so a failure replays. Every answer is below 500, and every error (HEAD aside, which
 * has no body) is exactly the OpenAI shape {error: {message, type, param, code}}.
 */
import { mulberry32 } from '@mnemo/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MnemoServer } from './server';
import { FakeEngine } from './testing/fake-engine';
import { startServer } from './testing/http';
import { expectErrorShape, rawRequest } from './testing/raw';

const N = 400;
let server: MnemoServer;
let port: number;

beforeAll(async () => {
  ({ server } = await startServer(new FakeEngine({ maxSeqLen: 64 }), {
    apiKey: 'k',
    maxTokens: 8,
    maxPromptTokens: 32,
    requestTimeoutMs: 2000,
  }));
  port = server.port;
});
afterAll(() => server.shutdown());

type Rng = () => number;
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

const weird: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  1e308,
  -1e308,
  2 ** 53 + 2,
  -(2 ** 63),
  Number.MAX_SAFE_INTEGER,
  '',
  ' ',
  'x'.repeat(5000),
  '🐋'.repeat(50),
  '\u0000',
  '\ud800',
  'é\u0301',
  '<|eos|>',
  '%00',
  '../../etc/passwd',
  [],
  [[]],
  [1, 2],
  ['a', 'b'],
  {},
  { a: { b: { c: [] } } },
  'NaN',
  '1e999',
  '-0',
];
const fields = [
  'prompt',
  'max_tokens',
  'temperature',
  'top_p',
  'stop',
  'stream',
  'stream_options',
  'seed',
  'model',
  'n',
  'logit_bias',
  'user',
  'text',
  'top_k',
  '__proto__',
  'constructor',
];
const badJson = [
  '{',
  '}',
  '{"prompt": "a",',
  '{"prompt": tru}',
  "{'prompt': 'a'}",
  '{"prompt": "a"}}',
  'null',
  '[]',
  '"str"',
  '1e999',
  '{"prompt": "\\ud800"}',
  '{"prompt": "a", "prompt": 5}',
  '\u0000',
  '{"max_tokens": 1e400, "prompt": "a"}',
  '{"__proto__": {"x": 1}, "prompt": "a"}',
  ' '.repeat(100),
  '{"a":'.repeat(2000),
];
const paths = [
  '/v1/completions',
  '/v1/memory/lookup',
  '/v1/models',
  '/v1/models/fake',
  '/v1/models/%zz',
  '/v1//completions',
  '/v1/completions/',
  '/V1/COMPLETIONS',
  '/v1/completions?x=1&x=2',
  '/%2e%2e/v1/completions',
  '/v1/models/..%2f..',
  '//',
  '/healthz',
  '/readyz',
  '/metrics',
  `/${'a'.repeat(300)}`,
  '/v1/models/%00',
  '*',
  `/v1/models/${'m'.repeat(300)}`,
  '/v1/models/🐋',
];
const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'FOO', 'post'];
const contentTypes = [
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=latin1',
  '',
  'application/jsonx',
];
const badAuths = ['Bearer nope', 'bearer k', 'Basic aw==', 'Bearer', '', 'Bearer k k', `Bearer ${'k'.repeat(500)}`];

function body(r: Rng): string {
  const kind = r();
  if (kind < 0.25) return pick(r, badJson);
  const o: Record<string, unknown> = {};
  if (r() < 0.7) o[r() < 0.5 ? 'prompt' : 'text'] = r() < 0.5 ? pick(r, ['a', 'hello', '🐋 é', '']) : pick(r, weird);
  const extra = Math.floor(r() * 4);
  for (let i = 0; i < extra; i++) o[pick(r, fields)] = pick(r, weird);
  if (r() < 0.3) o.max_tokens = pick(r, [1, 2, 8, 9, 0, -3, 1e9, 2.5]);
  if (r() < 0.2) o.stream = pick(r, [true, false, 'yes']);
  return kind < 0.3 ? JSON.stringify([o]) : JSON.stringify(o);
}

function request(r: Rng): { text: string; method: string } {
  const method = r() < 0.7 ? 'POST' : pick(r, methods);
  const p = r() < 0.7 ? pick(r, ['/v1/completions', '/v1/memory/lookup']) : pick(r, paths);
  const b = method === 'GET' || method === 'HEAD' ? (r() < 0.8 ? '' : body(r)) : body(r);
  const headers: Array<[string, string]> = [['host', pick(r, ['127.0.0.1', 'localhost:1', '[::1]', 'evil.example'])]];
  const auth = r() < 0.85 ? 'Bearer k' : pick(r, badAuths);
  if (auth) headers.push(['authorization', auth]);
  const ct = pick(r, contentTypes);
  if (ct && (b || r() < 0.3)) headers.push(['content-type', ct]);
  if (r() < 0.1) headers.push(['x-odd', pick(r, ['é', '\t', 'a'.repeat(3000), '{}', 'b'.repeat(20_000)])]);
  if (r() < 0.05) headers.push(['transfer-encoding', 'identity']);
  if (r() < 0.05) headers.push(['accept-encoding', 'gzip, br']);
  const bytes = Buffer.from(b, 'utf8');
  // Content-Length: right, or (rarely) shorter than the body, which then reads as a bad next request
  const len = r() < 0.05 ? Math.max(0, bytes.length - 1) : bytes.length;
  if (b || method === 'POST') headers.push(['content-length', String(len)]);
  headers.push(['connection', 'close']);
  const head = `${method} ${p} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  return { text: head + b, method };
}

describe('fuzz', () => {
  it(`${N} generated malformed requests: no 5xx, every error in the OpenAI shape`, async () => {
    const r = mulberry32(20);
    const reqs = Array.from({ length: N }, () => request(r));
    const statuses = new Map<number, number>();
    let i = 0;
    const worker = async () => {
      while (i < reqs.length) {
        const q = reqs[i++]!;
        const res = await rawRequest(port, q.text, 5000);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect([q.text.slice(0, 300), res.status < 500]).toEqual([q.text.slice(0, 300), true]);
        if (res.status >= 400 && q.method !== 'HEAD') {
          try {
            expectErrorShape(res.body, res.status);
          } catch (e) {
            throw new Error(
              `${(e as Error).message}\nrequest: ${JSON.stringify(q.text.slice(0, 300))}\nresponse: ${res.status} ${res.body.slice(0, 300)}`,
            );
          }
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    if (process.env.MNEMO_FUZZ_LOG) console.log([...statuses].sort((a, b) => a[0] - b[0]));
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(N);
    // the generator really explores: many kinds of refusal, and some requests get through
    expect([...statuses.keys()].filter((s) => s >= 400).length).toBeGreaterThanOrEqual(6);
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    // and the server is still serving
    const ok = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n');
    expect(ok.status).toBe(200);
  }, 60_000);
});
