import { ConfigError } from '@mnemo/core';
import { describe, expect, it } from 'vitest';
import { ffnPlan, parseModelConfig } from './config';

const base = { vocabSize: 100, dim: 64, layers: 4, heads: 4 };

describe('model config', () => {
  it('fills defaults', () => {
    const c = parseModelConfig(base);
    expect(c).toMatchObject({
      kvHeads: 4,
      maxSeqLen: 256,
      ropeTheta: 10000,
      normEps: 1e-5,
      ffnHidden: 256,
      tieEmbeddings: true,
      ffn: ['dense', 'dense', 'dense', 'dense'],
      moe: { experts: 4, topK: 2, hidden: 256, balanceCoef: 0.01 },
      memory: { valueLr: 1e-3, valueOptimizer: 'adam', queryNorm: 'qknorm' },
      seed: 0,
    });
    expect(parseModelConfig(c)).toEqual(c); // parsing a parsed config is the identity
  });

  it.each([
    [{ ...base, kvHeads: 3 }, /^heads: must be divisible by kvHeads \(4 % 3 != 0\)/],
    [{ ...base, ffn: ['dense', 'moe', 'memory'] }, /^ffn: length 3 != layers 4/],
    [{ ...base, memory: { numKeys: 8, topK: 9 } }, /^memory\.topK: must be ≤ memory\.numKeys \(8\)/],
    [{ ...base, memory: { keyDim: 7 } }, /^memory\.keyDim: must be even/],
    [{ ...base, moe: { topK: 1 } }, /^moe\.topK:/],
    [{ ...base, dim: 66 }, /^dim: must be divisible by heads/],
    [{ ...base, dim: 12, heads: 4 }, /^dim: dim \/ heads = 3 must be even for RoPE/],
    [{ ...base, ffn: ['dense', 'dense', 'dense', 'ultra'] }, /^ffn\.3:/],
    [{ ...base, memory: { valueOptimizer: 'rmsprop' } }, /^memory\.valueOptimizer:/],
    [{ ...base, vocabSize: 0 }, /^vocabSize:/],
    [{ ...base, dimm: 3 }, /dimm/],
    [{ dim: 64, layers: 4, heads: 4 }, /^vocabSize:/],
  ])('rejects %j naming the field', (input, re) => {
    expect(() => parseModelConfig(input)).toThrow(ConfigError);
    expect(() => parseModelConfig(input)).toThrow(re);
  });

  it('ffnPlan spreads memory blocks like Memory+ (4, 12, 20 of 24)', () => {
    const plus24 = ffnPlan('memoryPlus', 24);
    expect(plus24.flatMap((k, i) => (k === 'memoryPlus' ? [i] : []))).toEqual([4, 12, 20]);
    expect(ffnPlan('memory', 4)).toEqual(['dense', 'dense', 'memory', 'dense']);
    expect(ffnPlan('memoryPlus', 4, [0, 3])).toEqual(['memoryPlus', 'dense', 'dense', 'memoryPlus']);
    expect(ffnPlan('moe', 3)).toEqual(['moe', 'moe', 'moe']);
    expect(ffnPlan('memoryPlus', 2, 3)).toEqual(['memoryPlus', 'memoryPlus']);
    expect(() => ffnPlan('memory', 4, [4])).toThrow(/^blocks: block 4 is not in \[0, 4\)/);
  });
});
