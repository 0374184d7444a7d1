import { modelCounts } from '@mnemo/model';
import { describe, expect, it } from 'vitest';
import { modelConfigFor } from './config';
import { ladder } from './ladder';

describe('UltraMem ablation ladder', () => {
  it('every rung is a valid model within ±10% of Memory+ FLOPs/token (dense: a reference), each adding one change', () => {
    const rungs = ladder();
    const flops = rungs.map((r) => modelCounts(modelConfigFor(r.cfg, 1024)).flopsPerToken);
    const plus = flops[1]!;
    for (const [i, f] of flops.entries()) {
      if (i === 0) continue; // dense
      expect(Math.abs(f / plus - 1), `${rungs[i]!.label}: ${(f / plus).toFixed(3)}x Memory+`).toBeLessThanOrEqual(0.1);
    }
    const m = (i: number) => rungs[i]!.cfg.model as Record<string, unknown> & { memory: Record<string, unknown> };
    expect(m(2).memory.scoreFn).toBe('softmax');
    expect(m(3).memory.scoreFn).toBe('none');
    expect(m(4).memory.valueDim).toBe(64);
    expect(m(5).skips).toEqual([
      { read: 0, write: 1, kind: 'memory' },
      { read: 2, write: 3, kind: 'memory' },
    ]);
    expect((m(6).ultramem as Record<string, unknown>).scoring).toBe('pk');
    expect((m(8).ultramem as Record<string, unknown>).cores).toBe(2);
    expect(m(8).memory.valueLrDecay).toBeUndefined();
    expect(m(9).memory.valueLrDecay).toBe(10);
  });
});
