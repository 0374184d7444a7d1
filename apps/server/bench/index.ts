/**
 * mnemo-serve under load: autocannon, 32 concurrent clients for 30 s against POST /v1/completions,
 * with continuous batching and then with batching off (--no-batching), each in a fresh server
 * process (the CLI on a checkpoint) so the load generator does not share the server's thread.
 *
 * Model: ./runs/demo/checkpoint (from `mnemo-train demo`) when present; otherwise a small demo checkpoint
 * built here (BPE tokenizer on the repo docs + an untrained model of the demo's shape), and the
 * report says so.
 *
 *   npm run bench -w server [-- --quick]   →   docs/benchmarks/server.{json,md}
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchReport, repoRoot } from '@mnemo/bench';
import { parseArgvOrExit } from '@mnemo/core';
import autocannon from 'autocannon';
import { initBackend } from '@mnemo/kernels';
import { BpeTokenizer, LanguageModel, type ModelConfigInput, saveCheckpoint } from '@mnemo/model';

const quick = parseArgvOrExit(
  { quick: { type: 'boolean', description: '5 s of load per mode instead of 30 s' } },
  { name: 'server bench', synopsis: 'usage: npm run bench -w server [-- --quick]' },
).values.quick;
const CONNECTIONS = 32;
const DURATION_S = quick ? 5 : 30;
const MAX_TOKENS = 32;
const here = path.dirname(new URL(import.meta.url).pathname);
const serverDir = path.resolve(here, '..');

/** The trainer's demo preset (Memory+ in block 2), for the fallback checkpoint. */
const demoShape: ModelConfigInput = {
  vocabSize: 1024,
  dim: 128,
  layers: 4,
  heads: 4,
  kvHeads: 2,
  ffnHidden: 512,
  ffn: ['dense', 'dense', 'memoryPlus', 'dense'],
  memory: { numKeys: 128, heads: 4, topK: 16, keyDim: 64, queryNorm: 'qknorm', valueLr: 2e-2, valueOptimizer: 'adam' },
  seed: 7,
};

interface Target {
  /** what the report says about the model */
  source: string;
  /** script + arguments run with tsx */
  args: string[];
  cleanup(): void;
}

async function pickTarget(): Promise<Target> {
  const cli = path.join(serverDir, 'src', 'cli.ts');
  // `mnemo-train demo` saves its checkpoint to runs/demo/checkpoint
  for (const rel of ['runs/demo/checkpoint', 'runs/demo']) {
    const dir = path.join(repoRoot(), rel);
    if (existsSync(path.join(dir, 'config.json'))) {
      return { source: `${rel} (the trainer demo checkpoint, from \`mnemo-train demo\`)`, args: [cli, '--checkpoint', dir], cleanup() {} };
    }
  }
  // no demo run: build a small checkpoint of the demo's shape (untrained) and say so
  await initBackend();
  const root = repoRoot();
  const texts = ['README.md', 'docs/architecture.md']
    .map((f) => path.join(root, f))
    .filter(existsSync)
    .map((f) => readFileSync(f, 'utf8'));
  const tokenizer = BpeTokenizer.train(texts, { vocabSize: 1024 });
  const model = new LanguageModel({ ...demoShape, vocabSize: tokenizer.vocabSize });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'mnemo-serve-bench-'));
  const dir = path.join(tmp, 'demo');
  saveCheckpoint(dir, { model, tokenizer });
  model.dispose();
  return {
    source: `no runs/demo/checkpoint (run \`mnemo-train demo\` first for the trained demo): a checkpoint built by the bench, BPE ${tokenizer.vocabSize} tokens on the repo docs + an untrained model of the demo's shape`,
    args: [cli, '--checkpoint', dir],
    cleanup: () => rmSync(tmp, { recursive: true, force: true }),
  };
}

/** Start a server process; resolves with its URL once it prints the ready line. */
function startServer(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    ['--conditions=mnemo-source', '--import', 'tsx', ...args, '--port', '0', '--log-level', 'warn', '--max-queue', '256'],
    {
      cwd: serverDir,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /ready on (http:\/\/\S+)/.exec(out);
      if (m) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve({ child, url: m[1]! });
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before it was ready:\n${out}`)));
  });
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`metric ${name} missing from /metrics`);
  return Number(m[1]);
}

async function complete(url: string, body: object): Promise<void> {
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (r.status !== 200) throw new Error(`warm-up request failed: ${r.status} ${await r.text()}`);
  await r.json();
}

async function run(target: Target, batching: boolean, maxBatch: number) {
  const extra = batching ? ['--max-batch', String(maxBatch)] : ['--no-batching'];
  const { child, url } = await startServer([...target.args, ...extra]);
  const body = { prompt: 'The memory layer', max_tokens: MAX_TOKENS, temperature: 0.8 };
  // warm-up: every prompt length the load uses, a few batch sizes
  await Promise.all(Array.from({ length: 8 }, () => complete(url, body)));
  const tensorsBefore = await metric(url, 'mnemo_tfjs_tensors');
  const tokensBefore = await metric(url, 'mnemo_tokens_generated_total');
  const r = await autocannon({
    url: `${url}/v1/completions`,
    connections: CONNECTIONS,
    duration: DURATION_S,
    timeout: 120,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const tokens = (await metric(url, 'mnemo_tokens_generated_total')) - tokensBefore;
  // requests cut off when the run ended were cancelled; let the scheduler reap them first
  for (let i = 0; i < 6000; i++) {
    if ((await metric(url, 'mnemo_active_sequences')) + (await metric(url, 'mnemo_queue_depth')) === 0) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const tensorsAfter = await metric(url, 'mnemo_tfjs_tensors');
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  child.kill('SIGTERM');
  const exitCode = await exited;
  return {
    mode: batching ? `continuous batching (max ${maxBatch})` : 'no batching',
    'req/s': r.requests.total / r.duration,
    'gen tokens/s': tokens / r.duration,
    'p50 ms': r.latency.p50,
    'p99 ms': r.latency.p99,
    requests: r.requests.total,
    errors: r.errors + r.timeouts + r.non2xx,
    'tensors before': tensorsBefore,
    'tensors after': tensorsAfter,
    'exit code': exitCode,
  };
}

async function main() {
  const target = await pickTarget();
  process.stderr.write(`[server] model: ${target.source}\n`);
  const report = new BenchReport('server', {
    title: 'mnemo-serve under load: continuous batching vs one request at a time',
    command: 'npm run bench -w server',
    description:
      `autocannon, ${CONNECTIONS} concurrent connections for ${DURATION_S} s each, POST /v1/completions ` +
      `{"prompt": "The memory layer", "max_tokens": ${MAX_TOKENS}, "temperature": 0.8} (random seed per request). ` +
      `Model: ${target.source}. Each mode runs in a fresh server process (tsx on the sources, wasm backend, one JS thread); ` +
      'generated tokens from the server counter mnemo_tokens_generated_total; tensors = tf.memory().numTensors from /metrics after warm-up and after the run (once the requests cut off at the end were reaped).',
  });
  try {
    report.addRow(await run(target, true, CONNECTIONS));
    report.addRow(await run(target, false, 1));
  } finally {
    target.cleanup();
  }
  const [b, s] = report.rows;
  report.note(
    `Batching gives ${((b!['gen tokens/s'] as number) / (s!['gen tokens/s'] as number)).toFixed(2)}x the generated tokens/s of serving one request at a time.`,
  );
  report.note('Latency is per request (queueing included): without batching a request waits for the ones ahead of it.');
  report.set('model', target.source);
  report.write();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
