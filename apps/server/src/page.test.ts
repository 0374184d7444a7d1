/**
 * The inspector page at / in a real browser: Playwright (playwright-core) driving Debian's
 * chromium headless against the server on an ephemeral port, serving the real tiny model behind
 * an API key. Load the page, paste the key, submit a prompt, check the streamed tokens equal the
 * API's completion, the heat map is filled, and a clicked slot lists the sample tokens reading it.
 * Skips with a printed reason where /usr/bin/chromium is missing (.ci/run installs it).
 * MNEMO_UPDATE_SCREENSHOT=1 writes docs/images/server-page.png.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@mnemo/kernels';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelEngine } from './model-engine';
import type { MnemoServer } from './server';
import { saveTinyCheckpoint } from './testing/checkpoint';
import { FakeEngine } from './testing/fake-engine';
import { post, startServer } from './testing/http';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.log(`page.test: skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`);

const KEY = 'page-test-key';
let tmp: string;
let server: MnemoServer;
let url: string;
let browser: Browser;

describe('GET / (no browser)', () => {
  it('is public with a key set, but keeps the Host check; the HTML is self-contained (no other origin)', async () => {
    const { server: s, url: u } = await startServer(new FakeEngine(), { apiKey: KEY });
    try {
      const res = await fetch(`${u}/`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'.*connect-src 'self'/);
      const html = await res.text();
      expect(html).toMatch(/<title>mnemo-serve<\/title>/);
      expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//); // no CDN, nothing fetched from elsewhere
      expect((await fetch(`${u}/v1/models`)).status).toBe(401); // what the page calls needs the key
    } finally {
      await s.shutdown();
    }
    // bound to loopback without a key: a rebinding Host name is refused for the page too
    const open = await startServer(new FakeEngine());
    try {
      const r = await rawGet(open.server.port, 'evil.example');
      expect(r).toMatch(/^HTTP\/1\.1 403/);
    } finally {
      await open.server.shutdown();
    }
  });
});

/** GET / with a chosen Host header (fetch does not let a test set it). */
function rawGet(port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    let out = '';
    sock.on('data', (d) => {
      out += d;
    });
    sock.on('end', () => resolve(out));
    sock.on('error', reject);
  });
}

describe.skipIf(!haveChromium)('the page at / in headless chromium', () => {
  beforeAll(async () => {
    await initBackend();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'mnemo-page-'));
    // MNEMO_PAGE_CHECKPOINT=runs/demo/checkpoint: serve a trained model instead (the README screenshot)
    const dir = process.env.MNEMO_PAGE_CHECKPOINT ?? path.join(tmp, 'tiny');
    if (!process.env.MNEMO_PAGE_CHECKPOINT) saveTinyCheckpoint(dir);
    ({ server, url } = await startServer(ModelEngine.load(dir, { id: process.env.MNEMO_PAGE_CHECKPOINT ? 'demo' : 'tiny' }), {
      apiKey: KEY,
    }));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.shutdown();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('streams a completion, draws the heat map, explores a slot; the API calls need the pasted key', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/401/.test(m.text())) problems.push(m.text());
    });
    const res = await page.goto(`${url}/`);
    expect(res!.status()).toBe(200); // the page is public
    expect(res!.headers()['content-security-policy']).toMatch(/script-src 'sha256-/);
    // without the key the page's API calls are refused
    await expect.poll(() => page.textContent('#model')).toMatch(/Missing API key/);

    await page.fill('#key', KEY);
    await page.dispatchEvent('#key', 'change');
    await expect.poll(() => page.textContent('#model')).toMatch(/(tiny|demo) · vocab \d+/);
    const prompt = process.env.MNEMO_PAGE_PROMPT ?? 'Memory layers';
    await page.fill('#prompt', prompt);
    await page.fill('#max', '12');
    await page.click('#go');
    await expect.poll(() => page.textContent('#status'), { timeout: 30_000 }).toMatch(/chunks streamed/);

    // the streamed text is the API's greedy completion, and it came in several chunks
    const api = (await (
      await post(`${url}/v1/completions`, { prompt, max_tokens: 12, temperature: 0 }, { authorization: `Bearer ${KEY}` })
    ).json()) as { choices: Array<{ text: string }> };
    expect(await page.textContent('#out .completion')).toBe(api.choices[0]!.text);
    expect(Number(await page.getAttribute('#out', 'data-chunks'))).toBeGreaterThan(1);

    // the heat map: one row per token of prompt + completion, heads × k cells per memory block, shaded by weight
    const look = (await (
      await post(`${url}/v1/memory/lookup`, { text: prompt + api.choices[0]!.text, top_k: 4 }, { authorization: `Bearer ${KEY}` })
    ).json()) as { tokens: unknown[]; layers: Array<{ heads: number; top_k: number }> };
    const expected = look.layers.reduce((s, l) => s + look.tokens.length * l.heads * l.top_k, 0);
    expect(expected).toBeGreaterThan(0);
    expect(await page.locator('table.heat td.cell').count()).toBe(expected);
    // every cell shaded by its weight, with the block's range of weights showing as different shades
    const alphas = await page.$$eval('table.heat td.cell', (tds) =>
      tds.map((td) => {
        const m = /rgba?\(11, 107, 203(?:, ([0-9.]+))?\)/.exec(td.getAttribute('style') ?? '');
        return m ? (m[1] ?? '1') : 'none'; // alpha 1 is serialized as rgb(...)
      }),
    );
    expect(alphas.filter((a) => a === 'none')).toEqual([]);
    expect(new Set(alphas).size).toBeGreaterThan(expected / 10);

    // the slot explorer over a sample text holding the prompt: the clicked slot (read by the prompt's
    // first token) is read by at least that token
    await page.fill('#sample', `${prompt}, a sample.`);
    await page.click('table.heat td.cell >> nth=0');
    await expect.poll(() => page.textContent('#slot'), { timeout: 20_000 }).toMatch(/slot \d+ of block \d+: read by|error|more than/i);
    expect(await page.textContent('#slot')).toMatch(/read by [1-9]\d* of \d+ tokens of the sample text/);
    expect(await page.locator('#slot li.hit').count()).toBeGreaterThan(0);
    expect(await page.textContent('#refs')).toMatch(/reads no Memory³ knowledge base/);

    const shot = process.env.MNEMO_UPDATE_SCREENSHOT
      ? fileURLToPath(new URL('../../../docs/images/server-page.png', import.meta.url))
      : path.join(tmp, 'page.png');
    mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
    expect(problems).toEqual([]);
  }, 90_000);
});
