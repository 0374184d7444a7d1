/**
 * Child process for the kill test: `save-and-kill.ts DIR STEP N`: save a small checkpoint with
 * extra.step = N to DIR, and SIGKILL this process right before write step STEP (a real kill:
 * no catch, no finally, no cleanup runs).
 */
import { initBackend } from '@mnemo/kernels';
import { type CheckpointWriteStep, saveCheckpoint } from '../checkpoint';
import { LanguageModel } from '../model';

const [dir, step, n] = process.argv.slice(2);
await initBackend({ log: false });
const model = new LanguageModel({
  vocabSize: 40,
  dim: 16,
  layers: 2,
  heads: 2,
  maxSeqLen: 16,
  ffn: ['dense', 'memoryPlus'],
  memory: { numKeys: 8, heads: 1, topK: 2, keyDim: 8 },
  seed: 1,
});
saveCheckpoint(
  dir!,
  { model, tokenizer: { toJSON: () => ({ kind: 'test', merges: [] }) }, extra: { step: Number(n) } },
  {
    beforeStep: (s: CheckpointWriteStep) => {
      if (s === step) process.kill(process.pid, 'SIGKILL');
    },
  },
);
process.stdout.write('saved\n');
