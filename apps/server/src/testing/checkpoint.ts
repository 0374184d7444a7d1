/**
 * A tiny trainer-style checkpoint for tests: BpeTokenizer trained on a small text, a 2-block
 * LanguageModel (dense + memory FFN) sized to that vocabulary, saved with saveCheckpoint.
 */
import { BpeTokenizer, LanguageModel, saveCheckpoint } from '@mnemo/model';
import { tinyConfig } from './tiny-model';

export const tinyCorpus = [
  'Memory layers store facts in a large table of values that is read sparsely.',
  'Product keys split the query in two halves and search each half against a small set of sub-keys.',
  'The top k slots of every head are mixed with softmax weights; only those rows receive gradients.',
  'A dense feed-forward block spends the same compute on every token; a memory block reads a few rows.',
];

/** Train the tokenizer, build the model, save both to `dir`; returns the vocabulary size. */
export function saveTinyCheckpoint(dir: string, extra: Record<string, unknown> = {}, over: { seed?: number } = {}): number {
  const tokenizer = BpeTokenizer.train(tinyCorpus, { vocabSize: 300 });
  const model = new LanguageModel({ ...tinyConfig, vocabSize: tokenizer.vocabSize, ...over });
  try {
    saveCheckpoint(dir, { model, tokenizer, extra: { step: 0, ...extra } });
  } finally {
    model.dispose();
  }
  return tokenizer.vocabSize;
}
