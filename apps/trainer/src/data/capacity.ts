/**
 * Facts with a known information content, for the knowledge-capacity experiment (issue 16;
 * Allen-Zhu & Li, "Physics of Language Models 3.3": ~2 bits per parameter once each fact has
 * been seen ~1,000 times).
 *
 *   entities    made-up unique names (3 syllables), one per person-like record
 *   attributes  each with a FIXED set of V values; every entity's value is drawn uniformly from it,
 *               so one attribute of one entity carries exactly log2 V bits
 *   statements  every (entity, attribute) stated in each of the attribute's templates
 *   qa          one prompt per (entity, attribute): its first template cut before the value
 *               (with the leading space statements have in the training text)
 *
 * Stored knowledge (storedBits): a model that knows a fraction f of an attribute's facts and
 * guesses uniformly on the rest answers right a share acc = f + (1 − f)/V of them, so
 *   f = (acc − 1/V) / (1 − 1/V),   bits = f · n · log2 V
 * (0 at chance, n·log2 V when every answer is right; clipped at 0 below chance).
 */
import { mulberry32 } from '@mnemo/core';
import { ONSETS, VOWELS, shuffle } from './facts';
import type { QaPair } from './qa';

export interface Attribute {
  name: string;
  /** the V values a fact's value is drawn from, uniformly */
  values: readonly string[];
  /** statement templates, {e} entity and {o} value; the FIRST is the evaluation one */
  templates: readonly string[];
}

export interface CapacityFact {
  entity: string;
  attribute: string;
  value: string;
}

export interface CapacityQa extends QaPair {
  attribute: string;
}

export interface CapacityFacts {
  facts: CapacityFact[];
  /** every fact in every template of its attribute, shuffled, joined by spaces (leading space) */
  trainText: string;
  qa: CapacityQa[];
  /** each fact stated on its own in its attribute's second template (the first if it has one), leading space: the fact-text loss */
  factStatements: string[];
  /** bits of one fact of each attribute: log2 V */
  bitsPerFact: Record<string, number>;
  /** Σ over facts of log2 V: what a model that answers everything right stores */
  totalBits: number;
}

/** `count` distinct made-up words of `syllables` syllables, deterministic in `seed`. */
export function wordSet(count: number, syllables: number, seed: number): string[] {
  const r = mulberry32(seed);
  const out = new Set<string>();
  const space = (ONSETS.length * VOWELS.length) ** syllables;
  if (count > space / 2) throw new Error(`wordSet: ${count} words of ${syllables} syllables do not fit (space ${space})`);
  while (out.size < count) {
    let w = '';
    for (let i = 0; i < syllables; i++) w += ONSETS[Math.floor(r() * ONSETS.length)]! + VOWELS[Math.floor(r() * VOWELS.length)]!;
    out.add(w[0]!.toUpperCase() + w.slice(1));
  }
  return [...out];
}

/** The default attributes: 64 cities, 64 employers, 16 colours, 128 years → 6 + 6 + 4 + 7 = 23 bits per entity. */
export const DEFAULT_ATTRIBUTES: readonly Attribute[] = [
  {
    name: 'city',
    values: wordSet(64, 2, 101),
    templates: ['{e} was born in {o}.', '{e} came into the world in {o}.', 'The birthplace of {e} is {o}.'],
  },
  {
    name: 'employer',
    values: wordSet(64, 2, 202).map((w) => `${w} Works`),
    templates: ['{e} works for {o}.', '{e} is employed by {o}.', 'The employer of {e} is {o}.'],
  },
  {
    name: 'colour',
    values: [
      'red',
      'blue',
      'green',
      'amber',
      'violet',
      'white',
      'black',
      'silver',
      'golden',
      'grey',
      'pink',
      'brown',
      'teal',
      'olive',
      'navy',
      'ivory',
    ],
    templates: ['The favourite colour of {e} is {o}.', '{e} likes the colour {o}.', '{e} always wears {o}.'],
  },
  {
    name: 'year',
    values: Array.from({ length: 128 }, (_, i) => String(1900 + i)),
    templates: ['{e} was born in the year {o}.', 'The birth year of {e} is {o}.', '{e} has been alive since {o}.'],
  },
];

const fill = (t: string, e: string, o: string) => t.replaceAll('{e}', e).replaceAll('{o}', o);

export function generateCapacityFacts(opts: { entities: number; seed: number; attributes?: readonly Attribute[] }): CapacityFacts {
  const attributes = opts.attributes ?? DEFAULT_ATTRIBUTES;
  if (!Number.isInteger(opts.entities) || opts.entities < 1) throw new Error(`entities must be a whole number ≥ 1, got ${opts.entities}`);
  for (const a of attributes) {
    if (a.values.length < 2) throw new Error(`attribute ${a.name}: needs at least 2 values`);
    if (new Set(a.values).size !== a.values.length) throw new Error(`attribute ${a.name}: values must be distinct`);
    if (!a.templates.length || a.templates.some((t) => !t.includes('{e}') || !t.includes('{o}'))) {
      throw new Error(`attribute ${a.name}: every template needs {e} and {o}`);
    }
  }
  const r = mulberry32(opts.seed);
  const names = wordSet(opts.entities, 3, opts.seed ^ 0x5eed);
  const facts: CapacityFact[] = [];
  for (const entity of names) {
    for (const a of attributes) facts.push({ entity, attribute: a.name, value: a.values[Math.floor(r() * a.values.length)]! });
  }
  const byName = new Map(attributes.map((a) => [a.name, a]));
  const statements: string[] = [];
  for (const f of facts) for (const t of byName.get(f.attribute)!.templates) statements.push(fill(t, f.entity, f.value));
  const qa = facts.map((f) => {
    const t = byName.get(f.attribute)!.templates[0]!;
    return { prompt: ` ${fill(t.slice(0, t.indexOf('{o}')), f.entity, '').trimEnd()}`, answer: f.value, attribute: f.attribute };
  });
  const factStatements = facts.map((f) => {
    const ts = byName.get(f.attribute)!.templates;
    return ` ${fill(ts[1] ?? ts[0]!, f.entity, f.value)}`;
  });
  const bitsPerFact = Object.fromEntries(attributes.map((a) => [a.name, Math.log2(a.values.length)]));
  const totalBits = facts.reduce((s, f) => s + bitsPerFact[f.attribute]!, 0);
  return { facts, trainText: ` ${shuffle(statements, r).join(' ')}`, qa, factStatements, bitsPerFact, totalBits };
}

export interface AttributeBits {
  attribute: string;
  /** facts asked */
  n: number;
  /** share answered right */
  accuracy: number;
  /** 1/V: the share a uniform guess gets right */
  chance: number;
  /** f·n·log2 V, f = (accuracy − chance)/(1 − chance) clipped at 0 */
  bits: number;
}

/** Stored knowledge in bits from per-question correctness (see the file header). */
export function storedBits(
  answers: readonly { attribute: string; correct: boolean }[],
  attributes: readonly Attribute[] = DEFAULT_ATTRIBUTES,
): { bits: number; perAttribute: AttributeBits[] } {
  const perAttribute = attributes.map((a) => {
    const mine = answers.filter((x) => x.attribute === a.name);
    const n = mine.length;
    const accuracy = n ? mine.filter((x) => x.correct).length / n : 0;
    const chance = 1 / a.values.length;
    const f = Math.max(0, (accuracy - chance) / (1 - chance));
    return { attribute: a.name, n, accuracy, chance, bits: f * n * Math.log2(a.values.length) };
  });
  const unknown = answers.find((x) => !attributes.some((a) => a.name === x.attribute));
  if (unknown) throw new Error(`storedBits: answer for unknown attribute ${unknown.attribute}`);
  return { bits: perAttribute.reduce((s, a) => s + a.bits, 0), perAttribute };
}

/**
 * Training steps for `exposures` statements of every fact: one pass over the train text states
 * each fact once per template of its attribute, so passes = exposures / templates, and a step
 * reads batch × seqLen tokens (the trainer samples windows at random: each fact is seen that
 * many times in expectation).
 */
export function stepsForExposures(o: { textTokens: number; exposures: number; templates: number; batch: number; seqLen: number }): number {
  return Math.max(1, Math.ceil((o.textTokens * o.exposures) / o.templates / (o.batch * o.seqLen)));
}
