import { ConfigError } from '@mnemo/core';
import { describe, expect, it } from 'vitest';
import { parseMemoryLayerConfig } from './config';

describe('memory layer config', () => {
  it('fills defaults; valueDim defaults to inputDim', () => {
    const c = parseMemoryLayerConfig({ inputDim: 64, numKeys: 32 });
    expect(c).toMatchObject({ heads: 4, topK: 32, keyDim: 256, valueDim: 64, queryNorm: 'qknorm', gating: 'silu' });
  });

  it.each([
    [{ inputDim: 64, numKeys: 16, topK: 32 }, /^topK: must be ≤ numKeys \(16\)/],
    [{ inputDim: 64, numKeys: 16, topK: 4, keyDim: 7 }, /^keyDim: must be even/],
    [{ inputDim: 64.5, numKeys: 16 }, /^inputDim:/],
    [{ inputDim: 64, numKeys: 16, queryNorm: 'batchnorm' }, /^queryNorm:/],
    [{ inputDim: 64, numKeys: 16, heads: 0 }, /^heads:/],
    [{ inputDim: 64, numKeys: 16, inputDropout: 1 }, /^inputDropout:/],
    [{ inputDim: 64, numKeys: 16, valuDim: 3 }, /valuDim/],
    [{ numKeys: 16 }, /^inputDim:/],
  ])('rejects %j naming the field', (input, re) => {
    expect(() => parseMemoryLayerConfig(input)).toThrow(ConfigError);
    expect(() => parseMemoryLayerConfig(input)).toThrow(re);
  });

  it('prefixes the field path for nested configs', () => {
    expect(() => parseMemoryLayerConfig({ inputDim: 8, numKeys: 4, topK: 8 }, 'blocks.3.memory')).toThrow(/^blocks\.3\.memory\.topK:/);
  });
});
