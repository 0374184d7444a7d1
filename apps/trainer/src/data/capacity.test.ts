/**
 * The capacity experiment's data and metric (issue 16): facts' entropy, the chance level, the
 * bits a model with a known share of knowledge stores, and a deterministic, uniform generator.
 */
import { describe, expect, it } from 'vitest';
import { type Attribute, DEFAULT_ATTRIBUTES, generateCapacityFacts, stepsForExposures, storedBits, wordSet } from './capacity';

const tiny: Attribute[] = [
  { name: 'pet', values: ['cat', 'dog', 'owl', 'eel'], templates: ['{e} owns a {o}.', 'The pet of {e} is a {o}.'] },
  { name: 'digit', values: ['0', '1', '2', '3', '4', '5', '6', '7'], templates: ['The digit of {e} is {o}.'] },
];

describe('capacity facts', () => {
  it('carry log2 V bits per fact: 23 per entity with the default attributes', () => {
    const d = generateCapacityFacts({ entities: 10, seed: 1 });
    expect(d.bitsPerFact).toEqual({ city: 6, employer: 6, colour: 4, year: 7 });
    expect(d.facts).toHaveLength(40);
    expect(d.totalBits).toBe(230);
    expect(DEFAULT_ATTRIBUTES.map((a) => new Set(a.values).size)).toEqual([64, 64, 16, 128]);
  });

  it('are deterministic per seed, with distinct entities and values from their sets', () => {
    const a = generateCapacityFacts({ entities: 300, seed: 7, attributes: tiny });
    const b = generateCapacityFacts({ entities: 300, seed: 7, attributes: tiny });
    expect(b).toEqual(a);
    expect(generateCapacityFacts({ entities: 300, seed: 8, attributes: tiny }).trainText).not.toBe(a.trainText);
    expect(new Set(a.facts.map((f) => f.entity)).size).toBe(300);
    for (const f of a.facts) expect(tiny.find((t) => t.name === f.attribute)!.values).toContain(f.value);
    // every fact in every template of its attribute: 300 × (2 + 1) statements
    expect(a.trainText.split('. ').length).toBe(900);
    expect(a.trainText.startsWith(' ')).toBe(true);
  });

  it('draw values uniformly (chi-square over 4,000 draws of 8 values)', () => {
    const d = generateCapacityFacts({ entities: 4000, seed: 3, attributes: tiny });
    const counts = new Map<string, number>();
    for (const f of d.facts) if (f.attribute === 'digit') counts.set(f.value, (counts.get(f.value) ?? 0) + 1);
    const e = 4000 / 8;
    const chi2 = [...counts.values()].reduce((s, c) => s + (c - e) ** 2 / e, 0);
    expect(counts.size).toBe(8);
    expect(chi2).toBeLessThan(24.3); // p = 0.001 at 7 degrees of freedom
  });

  it('ask each fact by its first template cut before the value, with the leading space', () => {
    const d = generateCapacityFacts({ entities: 5, seed: 2, attributes: tiny });
    const f = d.facts[0]!;
    expect(d.qa[0]).toEqual({ prompt: ` ${f.entity} owns a`, answer: f.value, attribute: 'pet' });
    expect(d.trainText).toContain(`${d.qa[0]!.prompt.trim()} ${f.value}.`);
  });

  it('refuse attributes with repeated values or templates without {o}', () => {
    expect(() => generateCapacityFacts({ entities: 2, seed: 1, attributes: [{ ...tiny[0]!, values: ['a', 'a'] }] })).toThrow(/distinct/);
    expect(() => generateCapacityFacts({ entities: 2, seed: 1, attributes: [{ ...tiny[0]!, templates: ['{e} x.'] }] })).toThrow(/\{o\}/);
    expect(() => wordSet(30_000, 1, 1)).toThrow(/do not fit/);
  });
});

describe('storedBits', () => {
  const answers = (attribute: string, n: number, right: number) => Array.from({ length: n }, (_, i) => ({ attribute, correct: i < right }));

  it('is n·log2 V when every answer is right and 0 at (or below) chance', () => {
    expect(storedBits(answers('pet', 100, 100), tiny).bits).toBe(200);
    expect(storedBits(answers('pet', 100, 25), tiny).bits).toBe(0); // 1/4 = chance
    expect(storedBits(answers('pet', 100, 10), tiny).bits).toBe(0); // below chance: clipped
    const d = storedBits([...answers('pet', 40, 40), ...answers('digit', 80, 80)], tiny);
    expect(d.bits).toBe(40 * 2 + 80 * 3);
    expect(d.perAttribute.map((a) => a.chance)).toEqual([0.25, 0.125]);
  });

  it('counts f·n·log2 V for a model that knows a share f and guesses uniformly on the rest', () => {
    // f = 0.5 of 800 digit facts known; the other 400 guessed uniformly: 400/8 = 50 right by luck
    const b = storedBits(answers('digit', 800, 400 + 50), tiny);
    expect(b.bits).toBeCloseTo(0.5 * 800 * 3, 9);
    expect(() => storedBits([{ attribute: 'shoe', correct: true }], tiny)).toThrow(/unknown attribute shoe/);
  });
});

describe('stepsForExposures', () => {
  it('gives the steps that show each fact `exposures` times in expectation', () => {
    // 3 templates: one pass = 3 exposures; 100 exposures = 33.3 passes of 30,000 tokens over 1,024-token steps
    expect(stepsForExposures({ textTokens: 30_000, exposures: 100, templates: 3, batch: 16, seqLen: 64 })).toBe(977);
    expect(stepsForExposures({ textTokens: 10, exposures: 1, templates: 3, batch: 16, seqLen: 64 })).toBe(1);
  });
});

describe('trainer data.capacity', () => {
  it('trains on the capacity facts alone, asks every fact, and refuses data.facts beside it', async () => {
    const { parseTrainerConfig } = await import('../config');
    const { prepareData } = await import('../train');
    const { preset } = await import('../presets');
    const base = { ...preset('dense'), data: {} };
    const cfg = parseTrainerConfig({ ...base, data: { capacity: { entities: 50, seed: 4 } } });
    const data = prepareData(cfg, () => {});
    const want = generateCapacityFacts({ entities: 50, seed: 4 });
    expect(data.trainText).toBe(want.trainText);
    expect(data.qa).toEqual(want.qa);
    expect(data.qa).toHaveLength(200);
    expect(data.factStatements).toEqual(want.factStatements);
    expect(data.valText.length).toBeGreaterThan(0);
    expect(data.valText).not.toBe(data.trainText);
    expect(() => parseTrainerConfig({ ...base, data: { facts: 10, capacity: { entities: 5 } } })).toThrow(/^data\.capacity/);
    expect(() => parseTrainerConfig({ ...base, data: { capacity: { entities: 0 } } })).toThrow(/data\.capacity\.entities/);
  });
});

describe('facts files (data.capacity.factsFile)', () => {
  const write = async (lines: unknown[]) => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const f = path.join(mkdtempSync(path.join(tmpdir(), 'capfile-')), 'facts.jsonl');
    writeFileSync(f, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n'));
    return f;
  };

  it("take bits per fact from the values' entropy and chance from the most common value", async () => {
    const { readCapacityFactsFile } = await import('./capacity');
    // 'size': 3 of 4 entities 'big' → H = −(¾ log2 ¾ + ¼ log2 ¼) = 0.811 bits, chance ¾
    const f = await write([
      { attribute: 'size', templates: ['{e} is {o}.', '{e} looks {o}.'] },
      { entity: 'Ann', attribute: 'size', value: 'big' },
      { entity: 'Bob', attribute: 'size', value: 'big' },
      { entity: 'Cy', attribute: 'size', value: 'big' },
      { entity: 'Di', attribute: 'size', value: 'small' },
      { entity: 'Ann', attribute: 'pet', value: 'cat' },
      { entity: 'Bob', attribute: 'pet', value: 'dog' },
    ]);
    const d = readCapacityFactsFile(f);
    const size = d.stats.find((s) => s.name === 'size')!;
    expect(size.bits).toBeCloseTo(0.8113, 4);
    expect(size.chance).toBe(0.75);
    expect(d.stats.find((s) => s.name === 'pet')).toEqual({ name: 'pet', bits: 1, chance: 0.5 });
    expect(d.factsPer).toEqual({ size: 4, pet: 2 });
    expect(d.qa).toContainEqual({ prompt: ' Di is', answer: 'small', attribute: 'size' });
    expect(d.qa).toContainEqual({ prompt: ' The pet of Bob is', answer: 'dog', attribute: 'pet' }); // default template
    expect(d.trainText).toContain('Di looks small.');
  });

  it('refuse bad lines naming the line and the field', async () => {
    const { readCapacityFactsFile } = await import('./capacity');
    const ok = { entity: 'A', attribute: 'x', value: '1' };
    await expect(write([ok, { entity: 'B', attribute: 'x', value: 2 }]).then(readCapacityFactsFile)).rejects.toThrow(
      /facts\.jsonl:2: "value"/,
    );
    await expect(write([ok, 'nope']).then(readCapacityFactsFile)).rejects.toThrow(/:2: not JSON/);
    await expect(write([ok, { entity: 'B', value: '2' }]).then(readCapacityFactsFile)).rejects.toThrow(/:2: "attribute"/);
    await expect(write([ok, { attribute: 'x', templates: ['no slots'] }]).then(readCapacityFactsFile)).rejects.toThrow(/:2: "templates"/);
    await expect(write([ok, { entity: 'B', attribute: 'x', value: '1' }]).then(readCapacityFactsFile)).rejects.toThrow(/one value only/);
    await expect(write([]).then(readCapacityFactsFile)).rejects.toThrow(/no facts/);
    expect(() => readCapacityFactsFile('/nonexistent/facts.jsonl')).toThrow(/^data\.capacity\.factsFile: cannot read/);
  });

  it('feed the trainer, and entities and factsFile are one or the other', async () => {
    const { parseTrainerConfig } = await import('../config');
    const { prepareData } = await import('../train');
    const { preset } = await import('../presets');
    const f = await write([
      { entity: 'Ann', attribute: 'pet', value: 'cat' },
      { entity: 'Bob', attribute: 'pet', value: 'dog' },
    ]);
    const base = { ...preset('dense'), data: {} };
    const data = prepareData(parseTrainerConfig({ ...base, data: { capacity: { factsFile: f } } }), () => {});
    expect(data.qa).toHaveLength(2);
    expect(data.trainText).toContain('The pet of Ann is cat.');
    expect(() => parseTrainerConfig({ ...base, data: { capacity: { factsFile: f, entities: 3 } } })).toThrow(/^data\.capacity\.entities/);
    expect(() => parseTrainerConfig({ ...base, data: { capacity: {} } })).toThrow(/^data\.capacity\.entities/);
  });
});

describe('bitsFromCounts', () => {
  it('scales f measured on a sample of questions to every fact of the attribute', async () => {
    const { bitsFromCounts, uniformStats } = await import('./capacity');
    // 100 of 800 digit facts asked, 50 + (50/8 by luck) right → f = 0.5 → 0.5 · 800 · 3 bits
    const b = bitsFromCounts({ digit: { n: 100, correct: 50 + 50 / 8 } }, uniformStats(tiny), { digit: 800, pet: 0 });
    expect(b.bits).toBeCloseTo(1200, 9);
    expect(b.perAttribute.find((a) => a.attribute === 'pet')!.bits).toBe(0);
    expect(() => bitsFromCounts({ shoe: { n: 1, correct: 1 } }, uniformStats(tiny))).toThrow(/unknown attribute shoe/);
  });
});
