import { modelCounts } from '@mnemo/model';
import { describe, expect, it } from 'vitest';
import { modelConfigFor } from './config';
import { MEMORY_BLOCKS, PRESET_SEED, PRESETS, preset } from './presets';

const counts = (name: string, blocks?: number[]) => modelCounts(modelConfigFor(preset(name, { memoryBlocks: blocks }), 1024));

describe('presets', () => {
  it('are matched in forward FLOPs/token: every preset within 0.8–1.01x the dense one (the MoE router adds 0.2%; memory models run fewer, never more)', () => {
    const dense = counts('dense').flopsPerToken;
    for (const name of PRESETS) {
      const r = counts(name).flopsPerToken / dense;
      expect(r, name).toBeGreaterThan(0.8);
      expect(r, name).toBeLessThanOrEqual(1.01);
    }
  });

  it('memory presets put memory layers in MEMORY_BLOCKS, over one shared pool', () => {
    for (const name of ['memory', 'memoryPlus'] as const) {
      const ffn = preset(name).model.ffn as string[];
      expect(ffn.flatMap((k, i) => (k === name ? [i] : []))).toEqual([...MEMORY_BLOCKS]);
      // one pool: two memory blocks hold the same value parameters as one (plus each block's own keys)
      const one = counts(name, [2]).memoryParams;
      const two = counts(name).memoryParams;
      const c = preset(name).model.memory as { numKeys: number };
      const pool = c.numKeys ** 2 * (preset(name).model.dim as number); // N × dv values
      expect(two - one).toBeLessThan(pool / 10); // the second block's query and sub-keys, not another pool
      expect(two).toBeGreaterThan(one);
    }
  });

  it('memoryBlocks override is checked and named in the error', () => {
    expect(preset('memoryPlus', { memoryBlocks: [2] }).model.ffn).toEqual(['dense', 'dense', 'memoryPlus', 'dense']);
    expect(() => preset('memoryPlus', { memoryBlocks: [4] })).toThrow(/memoryBlocks: expected block indices in 0\.\.3, got \[4\]/);
    expect(() => preset('memoryPlus', { memoryBlocks: [] })).toThrow(/memoryBlocks/);
    // dense and MoE presets ignore it
    expect(preset('dense', { memoryBlocks: [0] }).model.ffn).toEqual(['dense', 'dense', 'dense', 'dense']);
  });

  it('seed s sets model init seed s and data-order seed s + 4 (default PRESET_SEED); a bad seed is named', () => {
    const a = preset('memoryPlus', { seed: 2 });
    expect([a.model.seed, a.train.seed]).toEqual([2, 6]);
    const d = preset('dense');
    expect([d.model.seed, d.train.seed]).toEqual([PRESET_SEED, PRESET_SEED + 4]);
    // only the seeds differ: same data, same everything else
    expect({ ...a, model: { ...a.model, seed: 0 }, train: { ...a.train, seed: 0 } }).toEqual({
      ...preset('memoryPlus'),
      model: { ...preset('memoryPlus').model, seed: 0 },
      train: { ...preset('memoryPlus').train, seed: 0 },
    });
    expect(() => preset('dense', { seed: 1.5 })).toThrow(/seed: expected an integer/);
  });
});
