/**
 * Raw HTTP/1.1 over a TCP socket, for what fetch will not send: percent-escapes kept as written
 * (curl --path-as-is), absolute-form request targets, odd methods and headers, slow bodies.
 * Always 127.0.0.1, always bounded by a timeout.
 */
import { connect } from 'node:net';
import { expect } from 'vitest';

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** ms from connect to the server closing the connection (or the response ending) */
  ms: number;
}

/** Send `request` as is (add `Connection: close` yourself) and read until the server closes. */
export function rawRequest(port: number, request: string | Buffer, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`rawRequest: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {}); // a reset after the answer is fine; no answer is caught below
    sock.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const parsed = parseResponse(text);
      if (!parsed) reject(new Error(`rawRequest: no HTTP response (got ${JSON.stringify(text.slice(0, 200))})`));
      else resolve({ ...parsed, ms: performance.now() - t0 });
    });
    sock.write(request);
  });
}

export function parseResponse(text: string): Omit<RawResponse, 'ms'> | null {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
  if (!m) return null;
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = text.slice(end + 4);
  if (headers['transfer-encoding'] === 'chunked') body = unchunk(body);
  return { status: Number(m[1]), headers, body };
}

function unchunk(s: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const nl = s.indexOf('\r\n', i);
    if (nl < 0) return out;
    const n = Number.parseInt(s.slice(i, nl), 16);
    if (!(n > 0)) return out;
    out += s.slice(nl + 2, nl + 2 + n);
    i = nl + 2 + n + 2;
  }
}

/** A request with a JSON body. */
export function rawJson(method: string, target: string, body: unknown, headers: Record<string, string> = {}): string {
  const b = typeof body === 'string' ? body : JSON.stringify(body);
  const h = {
    host: '127.0.0.1',
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(b)),
    connection: 'close',
    ...headers,
  };
  return `${method} ${target} HTTP/1.1\r\n${Object.entries(h)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n')}\r\n\r\n${b}`;
}

/** A request without a body. */
export function rawGet(target: string, headers: Record<string, string> = {}, method = 'GET'): string {
  const h = { host: '127.0.0.1', connection: 'close', ...headers };
  return `${method} ${target} HTTP/1.1\r\n${Object.entries(h)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n')}\r\n\r\n`;
}

/** the OpenAI error shape, exactly */
export function expectErrorShape(body: string, status: number): ErrorBody {
  let e: ErrorBody;
  try {
    e = JSON.parse(body) as ErrorBody;
  } catch {
    throw new Error(`status ${status}: body is not JSON: ${JSON.stringify(body.slice(0, 200))}`);
  }
  expect(Object.keys(e)).toEqual(['error']);
  expect(Object.keys(e.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof e.error.message).toBe('string');
  expect(e.error.message.length).toBeGreaterThan(5);
  expect(typeof e.error.type).toBe('string');
  expect(e.error.param === null || typeof e.error.param === 'string').toBe(true);
  expect(e.error.code === null || typeof e.error.code === 'string').toBe(true);
  return e;
}
