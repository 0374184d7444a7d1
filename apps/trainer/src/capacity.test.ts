/**
 * The capacity experiment (issue 16): its models are matched in FLOPs/token, its curve analysis
 * (best LR, knee, means) is right, a run's stored bits come from its answers, and a run killed
 * after a checkpoint and resumed ends exactly where an uninterrupted one does.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { modelCounts } from '@mnemo/model';
import { describe, expect, it } from 'vitest';
import {
  CAPACITY_MODELS,
  type CapacityPoint,
  bestLr,
  capacityConfig,
  capacityFacts,
  capacityPoint,
  capacitySteps,
  curveOf,
  knee,
  knobsLabel,
  knobsTag,
  parseKnobs,
  parseModelKnobs,
  parseModelRates,
} from './capacity';
import type { CompareRow } from './compare';
import { modelConfigFor } from './config';
import { finishedRun, resumePoint, trainOrResume } from './reuse';
import { runTraining } from './train';

const spec = { entities: 10, seed: 1, lr: 1e-2, steps: 10, out: 'runs/x' };

describe('capacity models', () => {
  it('are within ±10% of the dense model in FLOPs/token, and the memory ones hold 2.1 M values', () => {
    const dense = modelCounts(modelConfigFor(capacityConfig({ ...spec, model: 'dense' }), 512));
    for (const m of CAPACITY_MODELS) {
      const c = modelCounts(modelConfigFor(capacityConfig({ ...spec, model: m }), 512));
      expect(Math.abs(c.flopsPerToken / dense.flopsPerToken - 1), m).toBeLessThan(0.1);
      if (m === 'memory' || m === 'memoryPlus') expect(c.memoryParams, m).toBeGreaterThan(2_000_000);
    }
    expect(() => capacityConfig({ ...spec, model: 'huge' as 'dense' })).toThrow(/^--models: unknown model 'huge'/);
  });

  it('knobs change only the memory layer they name; non-memory models and bad knobs are refused by name', () => {
    const mem = (c: Parameters<typeof modelConfigFor>[0]) => modelConfigFor(c, 512).memory;
    const base = mem(capacityConfig({ ...spec, model: 'memoryPlus' }));
    const [vlr, wide] = parseKnobs('valueLrScale=10; topK=32,heads=4');
    const a = mem(capacityConfig({ ...spec, model: 'memoryPlus', knobs: vlr }));
    expect(a.valueLr).toBeCloseTo(10 * base.valueLr, 12);
    expect([a.topK, a.heads]).toEqual([base.topK, base.heads]);
    const b = mem(capacityConfig({ ...spec, model: 'memoryPlus', knobs: wide }));
    expect([b.topK, b.heads, b.valueLr]).toEqual([32, 4, base.valueLr]);
    // PKM keeps its 2× on top of the scale
    expect(mem(capacityConfig({ ...spec, model: 'memory', knobs: vlr })).valueLr).toBeCloseTo(2 * 10 * spec.lr, 12);
    expect([knobsLabel(wide!), knobsTag(wide!), knobsTag(vlr!)]).toEqual(['topK 32, heads 4', 'k32-h4', 'vlr10']);
    // 4 heads of half the key width cost what the default 2 heads do (±10% of dense)
    const [narrow] = parseKnobs('heads=4,keyDim=8');
    const c = modelConfigFor(capacityConfig({ ...spec, model: 'memoryPlus', knobs: narrow }), 512);
    expect([c.memory.heads, c.memory.keyDim]).toEqual([4, 8]);
    const dense = modelCounts(modelConfigFor(capacityConfig({ ...spec, model: 'dense' }), 512)).flopsPerToken;
    expect(Math.abs(modelCounts(c).flopsPerToken / dense - 1)).toBeLessThan(0.1);
    expect(() => capacityConfig({ ...spec, model: 'dense', knobs: vlr })).toThrow(/^--knobs: model 'dense' has no memory layer/);
    expect(() => parseKnobs('topK=3.5')).toThrow(/topK must be an integer/);
    expect(() => parseKnobs('slots=4')).toThrow(/unknown knob 'slots'/);
    expect(() => parseKnobs('heads=0')).toThrow(/heads must be a positive number/);
    expect(() => parseKnobs('topK')).toThrow(/expected name=value, got 'topK'/);
    expect(parseKnobs('')).toEqual([]);
  });

  it('train each fact `exposures` times: steps from the text the trainer will tokenize', () => {
    const facts = capacityFacts({ entities: 40 });
    const a = capacitySteps(facts, 3, 30);
    const b = capacitySteps(facts, 3, 60);
    expect(a.textTokens).toBeGreaterThan(40 * 4 * 3 * 4); // ≥ 4 tokens a statement
    expect(b.steps).toBeGreaterThanOrEqual(2 * a.steps - 1);
    expect(b.steps).toBeLessThanOrEqual(2 * a.steps + 1);
  });
});

const pt = (model: string, facts: number, bits: number, extra: Partial<CapacityPoint> = {}): CapacityPoint => ({
  model,
  facts,
  seed: 1,
  lr: 1e-2,
  totalBits: facts * 5.75,
  bits,
  recall: 0,
  denseParams: 1,
  memoryParams: 0,
  flopsPerToken: 1,
  trainFlops: 1,
  bitsPerDenseParam: bits,
  bitsPerMemoryParam: null,
  bitsPerGflop: 1,
  ...extra,
});

describe('capacity curves', () => {
  it("bestLr picks each model's rate with the most bits", () => {
    const pts = [
      pt('dense', 100, 50, { lr: 1e-3 }),
      pt('dense', 100, 80, { lr: 1e-2 }),
      pt('moe', 100, 70, { lr: 3e-2 }),
      pt('moe', 100, 60, { lr: 1e-2 }),
    ];
    expect(bestLr(pts)).toEqual({ dense: 1e-2, moe: 3e-2 });
  });

  it('parseModelKnobs reads one knob set per memory model and names a bad model or knob', () => {
    expect(parseModelKnobs('memoryPlus:valueLrScale=10,topK=32; memory:topK=16')).toEqual({
      memoryPlus: { valueLrScale: 10, topK: 32 },
      memory: { topK: 16 },
    });
    expect(parseModelKnobs('')).toEqual({});
    expect(() => parseModelKnobs('dense:topK=32')).toThrow(/'dense' is not a memory model/);
    expect(() => parseModelKnobs('memoryPlus:topK=32;memoryPlus:heads=4')).toThrow(/memoryPlus is named twice/);
    expect(() => parseModelKnobs('memoryPlus:depth=3')).toThrow(/--curve-knobs \(memoryPlus\): unknown knob 'depth'/);
    expect(() => parseModelKnobs('memoryPlus:')).toThrow(/needs one knob set/);
    expect(() => parseModelKnobs('topK=32')).toThrow(/expected model:name=value/);
  });

  it('parseModelRates reads model=rate pairs and names a bad model or rate', () => {
    expect(parseModelRates('dense=1e-2, memoryPlus=3e-2')).toEqual({ dense: 1e-2, memoryPlus: 3e-2 });
    expect(parseModelRates('')).toEqual({});
    expect(() => parseModelRates('dense=1e-2,mlp=1e-3')).toThrow(/unknown model 'mlp'/);
    expect(() => parseModelRates('dense=-1')).toThrow(/rate of dense/);
    expect(() => parseModelRates('dense')).toThrow(/expected model=rate/);
  });

  it('knee: the first segment under half the slope from the origin; none while the curve grows', () => {
    // from the origin 1 bit/fact, then slopes 1, 1, 0.25 (< 0.5): bends between 400 and 800
    expect(
      knee([
        { facts: 100, bits: 100 },
        { facts: 200, bits: 200 },
        { facts: 400, bits: 400 },
        { facts: 800, bits: 500 },
      ]),
    ).toEqual({ from: 400, to: 800 });
    expect(
      knee([
        { facts: 100, bits: 100 },
        { facts: 200, bits: 200 },
        { facts: 400, bits: 390 },
      ]),
    ).toBeNull();
    // flat from the smallest count (a model that stores what it can there): bends at once, whatever comes later
    expect(
      knee([
        { facts: 1000, bits: 3608 },
        { facts: 2000, bits: 3202 },
        { facts: 4000, bits: 3705 },
        { facts: 8000, bits: 1011 },
      ]),
    ).toEqual({ from: 1000, to: 2000 });
    expect(knee([{ facts: 100, bits: 100 }])).toBeNull(); // too few points
  });

  it('curveOf averages seeds per fact count, sorted by facts', () => {
    const c = curveOf(
      [pt('dense', 200, 10, { seed: 1 }), pt('dense', 100, 4), pt('dense', 200, 20, { seed: 2 }), pt('moe', 100, 99)],
      'dense',
    );
    expect(c).toEqual([
      { facts: 100, bits: 4, min: 4, max: 4, n: 1 },
      { facts: 200, bits: 15, min: 10, max: 20, n: 2 },
    ]);
  });

  it('capacityPoint: bits from the answers per attribute, per parameter and per training FLOP', () => {
    const facts = capacityFacts({ entities: 100 });
    const row: CompareRow = {
      name: 'dense',
      denseParams: 1000,
      memoryParams: 0,
      flopsPerToken: 1e5,
      tokensPerSec: 1,
      valLoss: 1,
      factLoss: 1,
      recall: 0.5,
      questions: 40,
      // every city right, chance-level years (1 in 128 of 128 asked), the rest unasked
      byAttribute: { city: { n: 10, correct: 10 }, year: { n: 128, correct: 1 } },
    };
    const p = capacityPoint(row, facts, { model: 'dense', seed: 1, lr: 1e-2, steps: 10 });
    expect(p.bits).toBeCloseTo(100 * 6, 9); // all 100 cities × 6 bits; years add 0
    expect(p.bitsPerDenseParam).toBeCloseTo(0.6, 9);
    expect(p.trainFlops).toBe(3 * 1e5 * 10 * 32 * 64);
    expect(p.bitsPerMemoryParam).toBeNull();
    expect(() => capacityPoint({ ...row, byAttribute: undefined }, facts, { model: 'dense', seed: 1, lr: 1, steps: 1 })).toThrow(
      /per-attribute/,
    );
  });
});

describe('capacity runs', () => {
  it('a run killed after a checkpoint resumes to exactly the uninterrupted result', { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'capacity-'));
    const s = { model: 'memoryPlus' as const, entities: 12, seed: 2, lr: 1e-2, steps: 8, questions: 24 };
    const whole = capacityConfig({ ...s, out: path.join(dir, 'whole') });
    const cut = capacityConfig({ ...s, out: path.join(dir, 'cut') });
    const a = await trainOrResume(whole, { quiet: true });
    expect(a.byAttribute && Object.values(a.byAttribute).reduce((n, c) => n + c.n, 0)).toBe(24);
    expect(a.usage?.slots).toBe(65_536);
    // killed right after the step-4 checkpoint (checkpointEvery = steps / 4 = 2)
    await runTraining(cut, { quiet: true, stopAfter: 5 });
    expect(finishedRun(cut)).toBeNull();
    expect(resumePoint(cut)).toBe(path.join(cut.out, 'checkpoint'));
    // a mark in the metrics before the checkpoint: a resumed run keeps those lines, a fresh one starts the file anew
    const metrics = path.join(cut.out, 'metrics.jsonl');
    writeFileSync(metrics, `${JSON.stringify({ step: 1, mark: 'before the kill' })}\n${readFileSync(metrics, 'utf8')}`);
    const b = await trainOrResume(cut, { quiet: true });
    expect(readFileSync(metrics, 'utf8')).toContain('before the kill');
    const same = (r: CompareRow) => ({ ...r, tokensPerSec: 0 });
    expect(same(b)).toEqual(same(a));
    // finished now: read back, not trained again; another config's checkpoint is not resumed
    expect(same(await trainOrResume(cut, { quiet: true }))).toEqual(same(a));
    expect(resumePoint({ ...cut, train: { ...cut.train, lr: 3e-2 } })).toBeNull();
  });
});
