import { describe, expect, it } from 'vitest';
import { generateFacts, sentences } from './facts';

const filler = ['Call me Ishmael, some years ago.', 'The sea was calm that morning.', 'Queequeg sharpened his harpoon.'];

describe('synthetic facts', () => {
  it('makes exactly `count` facts over unique made-up entities; the same seed gives the same data', () => {
    const d = generateFacts({ count: 41, seed: 9, filler });
    expect(d.facts).toHaveLength(41);
    expect(d.qa).toHaveLength(41);
    const keys = d.facts.map((f) => `${f.entity}/${f.relation}`);
    expect(new Set(keys).size).toBe(41);
    expect(new Set(d.facts.map((f) => f.relation)).size).toBeGreaterThanOrEqual(4);
    expect(generateFacts({ count: 41, seed: 9, filler })).toEqual(d);
    const other = generateFacts({ count: 41, seed: 10, filler });
    expect(other.facts.map((f) => f.entity)).not.toEqual(d.facts.map((f) => f.entity));
  });

  it('each fact is stated in several templates in the training text; prompts stop right before the object', () => {
    const d = generateFacts({ count: 30, seed: 1, filler });
    for (const [i, f] of d.facts.entries()) {
      const q = d.qa[i]!;
      expect(q.answer).toBe(f.object);
      expect(q.prompt).toContain(f.entity);
      expect(q.prompt).not.toContain(f.object);
      expect(q.prompt).toBe(q.prompt.trimEnd());
      expect(q.prompt.startsWith(' ') && !q.prompt.startsWith('  ')).toBe(true); // as preceded in the training text
      // seen mode: the evaluation statement is one of the training statements, and there are others
      expect(d.trainText).toContain(`${q.prompt} ${q.answer}`);
      const mentions = d.trainText.split(f.entity).length - 1;
      expect(mentions).toBeGreaterThanOrEqual(3);
      expect(d.factStatements[i]).toContain(f.entity);
      expect(d.factStatements[i]).toContain(f.object);
      expect(d.trainText).toContain(d.factStatements[i]); // a training statement
    }
  });

  it("harder 'unseen' mode: the evaluation template is never used in training for any fact", () => {
    const d = generateFacts({ count: 30, seed: 1, mode: 'unseen', filler });
    for (const [i, q] of d.qa.entries()) {
      expect(d.trainText).not.toContain(`${q.prompt} `);
      expect(d.trainText).toContain(d.facts[i]!.entity); // still stated, in the other templates
    }
    // same facts and questions as seen mode; only the training text differs
    expect(d.qa).toEqual(generateFacts({ count: 30, seed: 1, filler }).qa);
  });

  it('held-out text states other facts, about entities the training text never names', () => {
    const d = generateFacts({ count: 40, seed: 5, filler, fillerRatio: 0 });
    const trained = new Set(d.facts.map((f) => f.entity));
    const named = [...d.heldOutText.matchAll(/\b[A-Z][a-z]{5,}\b/g)]
      .map((m) => m[0])
      .filter((w) => !['People', 'Builders', 'The'].includes(w));
    expect(named.length).toBeGreaterThan(8);
    const entities = new Set(named.filter((w) => d.heldOutText.split(w).length - 1 >= 12)); // each held-out entity: 4 facts × 3 templates
    expect(entities.size).toBeGreaterThanOrEqual(2);
    for (const e of entities) {
      expect(trained.has(e)).toBe(false);
      expect(d.trainText).not.toContain(e);
    }
    // the training data does not depend on the held-out facts
    expect(generateFacts({ count: 40, seed: 5, filler, fillerRatio: 0 }).trainText).toBe(d.trainText);
  });

  it('fillerRatio filler sentences follow every statement', () => {
    const count = (t: string) => filler.reduce((n, s) => n + t.split(s).length - 1, 0);
    const none = generateFacts({ count: 8, seed: 2, filler, fillerRatio: 0 });
    const two = generateFacts({ count: 8, seed: 2, filler, fillerRatio: 2 });
    expect(count(none.trainText)).toBe(0);
    expect(count(two.trainText)).toBe(2 * 8 * 3); // 8 facts × 3 statements × 2
  });

  it('sentences() splits prose into filler sentences', () => {
    const s = sentences('Call me Ishmael, some years ago.  Never mind how long\nprecisely! Short. Having little or no money in my purse?');
    expect(s).toEqual(['Call me Ishmael, some years ago.', 'Never mind how long precisely!', 'Having little or no money in my purse?']);
  });
});
