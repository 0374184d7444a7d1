/**
 * Bench fallback when no checkpoint can be had: serve a randomly initialised model of the demo's
 * shape over a byte-level codec, through the same MnemoServer and ModelEngine as mnemo-serve.
 * Prints `mnemo-serve: ready on <url>` like the CLI; SIGTERM shuts down gracefully.
 *
 *   tsx --conditions=mnemo-source bench/serve-random.ts [--no-batching] [--max-batch N]
 */
import { initBackend } from '@mnemo/kernels';
import { LanguageModel, type ModelConfigInput, type TextCodec } from '@mnemo/model';
import { MnemoServer, ModelEngine } from '../src/index';

export const benchModelConfig: ModelConfigInput = {
  vocabSize: 258,
  dim: 128,
  layers: 4,
  heads: 4,
  kvHeads: 2,
  maxSeqLen: 256,
  ffnHidden: 384,
  ffn: ['dense', 'dense', 'memoryPlus', 'dense'],
  memory: { numKeys: 128, heads: 4, topK: 16, keyDim: 64, queryNorm: 'qknorm', valueLr: 1e-3, valueOptimizer: 'adam' },
  seed: 1,
};

const byteCodec: TextCodec = {
  bosId: 256,
  eosId: 257,
  encode: (text) => [...new TextEncoder().encode(text)],
  decode: (ids) => new TextDecoder().decode(new Uint8Array(ids.filter((i) => i < 256))),
};

async function main() {
  const args = process.argv.slice(2);
  const maxBatch = Number(args[args.indexOf('--max-batch') + 1]) || 16;
  await initBackend();
  const server = new MnemoServer({ port: 0, batching: !args.includes('--no-batching'), maxBatch, maxQueue: 256 });
  const url = await server.listen();
  server.setEngine(new ModelEngine(new LanguageModel(benchModelConfig), byteCodec, 'random-demo'));
  process.on('SIGTERM', () => server.shutdown().then(() => process.exit(0)));
  process.stdout.write(`mnemo-serve: ready on ${url}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
