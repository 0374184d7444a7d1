/**
 * The README's examples run as written: every `curl … localhost:8080 …` command of its sh blocks
 * (only the port changed) and the `openai` client snippet, against a server on an ephemeral port
 * serving the tiny model as 'demo'. Each answer must have the shape the README's comment shows
 * (its `object`, or an SSE stream ending in [DONE]). Skips with a printed reason without curl.
 * (Not run here: `npm run demo`, which trains for minutes, and the library snippet, which needs
 * the built package; both are exercised by cli.test.ts and server.test.ts.)
 */
import { exec, execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@mnemo/kernels';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelEngine } from './model-engine';
import type { MnemoServer } from './server';
import { saveTinyCheckpoint } from './testing/checkpoint';
import { startServer } from './testing/http';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(path.join(pkg, 'README.md'), 'utf8');
const haveCurl = spawnSync('curl', ['--version']).status === 0;
if (!haveCurl) console.log('readme.test: curl examples skipped: curl is not installed');

/** Fenced blocks of a language. */
function blocks(lang: string): string[] {
  return [...readme.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1]!);
}

/** curl commands (continuation lines joined) with the comment lines that follow each. */
function curlExamples(): Array<{ cmd: string; expect: string }> {
  const out: Array<{ cmd: string; expect: string }> = [];
  for (const b of blocks('sh')) {
    const lines = b.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!/^curl .*localhost:8080/.test(lines[i]!)) continue;
      let cmd = lines[i]!;
      while (cmd.endsWith('\\')) cmd = `${cmd.slice(0, -1)}${lines[++i]!.trim()}`;
      let expectText = '';
      while (lines[i + 1]?.startsWith('#')) expectText += lines[++i]!.slice(1);
      out.push({ cmd, expect: expectText });
    }
  }
  return out;
}

let tmp: string;
let server: MnemoServer;
let port: number;

describe('README examples', () => {
  beforeAll(async () => {
    await initBackend();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'mnemo-readme-'));
    saveTinyCheckpoint(path.join(tmp, 'tiny'));
    const r = await startServer(ModelEngine.load(path.join(tmp, 'tiny'), { id: 'demo' }));
    server = r.server;
    port = server.port;
  });

  afterAll(async () => {
    await server?.shutdown();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const examples = curlExamples();

  it('has the curl examples this test runs', () => {
    expect(examples.length).toBeGreaterThanOrEqual(5);
  });

  it.skipIf(!haveCurl).each(examples.map((e) => [e.cmd.slice(0, 70), e] as const))('%s', async (_name, ex) => {
    // asynchronous: the server answers in this process, so the event loop must keep running
    const cmd = ex.cmd.replaceAll('localhost:8080', `127.0.0.1:${port}`);
    const out = await new Promise<string>((resolve, reject) =>
      exec(cmd, { shell: '/bin/bash', timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    const object = /"object":"([^"]+)"/.exec(ex.expect)?.[1];
    if (ex.expect.trimStart().startsWith('data:')) {
      expect(out).toMatch(/^data: \{/);
      expect(out.trimEnd().endsWith('data: [DONE]')).toBe(true);
    } else {
      const json = JSON.parse(out) as { object?: string; error?: unknown };
      expect(json.error).toBeUndefined();
      if (object) expect(json.object).toBe(object);
    }
  });

  it('the openai client snippet streams a reply', async () => {
    const snippet = blocks('ts').find((b) => b.includes("from 'openai'"));
    expect(snippet).toBeDefined();
    // beside the package's node_modules, so `import 'openai'` resolves as in a user's project
    const dir = path.join(pkg, 'node_modules', '.cache', 'mnemo-readme-test');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `openai-snippet-${process.pid}.mjs`);
    writeFileSync(file, snippet!.replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`));
    try {
      const env = { ...process.env };
      delete env.MNEMO_API_KEY;
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [file], { env, timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
      );
      expect(out.length).toBeGreaterThan(0);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
