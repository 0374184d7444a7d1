/**
 * Test helpers: start a MnemoServer on an ephemeral port, read SSE streams with fetch.
 */
import type { Engine } from '../engine';
import type { ServerOptionsInput } from '../options';
import { MnemoServer } from '../server';

export async function startServer(engine: Engine | null, options: ServerOptionsInput = {}): Promise<{ server: MnemoServer; url: string }> {
  const server = new MnemoServer({ port: 0, ...options });
  await server.listen();
  if (engine) server.setEngine(engine);
  return { server, url: `http://127.0.0.1:${server.port}` };
}

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export interface SseResult {
  events: unknown[];
  done: boolean;
  text: string;
  finishReason: string | null;
  raw: string;
}

/** Read an SSE body to its end: parsed `data:` events, whether `[DONE]` came, the joined text. */
export async function readSse(res: Response, onEvent?: (e: unknown) => void): Promise<SseResult> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let raw = '';
  let buf = '';
  const events: unknown[] = [];
  let done = false;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    const s = dec.decode(value, { stream: true });
    raw += s;
    buf += s;
    let i = buf.indexOf('\n\n');
    while (i >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      i = buf.indexOf('\n\n');
      if (!block.startsWith('data: ')) throw new Error(`not an SSE data event: ${block}`);
      const data = block.slice(6);
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      if (done) throw new Error('event after [DONE]');
      const e = JSON.parse(data);
      events.push(e);
      onEvent?.(e);
    }
  }
  let text = '';
  let finishReason: string | null = null;
  for (const e of events as Array<{ choices?: Array<{ text: string; finish_reason: string | null }> }>) {
    for (const c of e.choices ?? []) {
      text += c.text;
      if (c.finish_reason) finishReason = c.finish_reason;
    }
  }
  return { events, done, text, finishReason, raw };
}
