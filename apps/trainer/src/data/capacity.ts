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
 *
 * A facts file (readCapacityFactsFile) has no known generator: an attribute's bits per fact are
 * the entropy H of its values' empirical distribution, and chance is the share of its most common
 * value (what a model that learnt only the marginal answers right); for uniform draws these are
 * log2 V and 1/V again.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, mulberry32 } from '@mnemo/core';
import { ONSETS, VOWELS, shuffle } from './facts';
import type { QaPair } from './qa';

export interface Attribute {
  name: string;
  /** the V values a fact's value is drawn from, uniformly */
  values: readonly string[];
  /** statement templates, {e} entity and {o} value; the FIRST is the evaluation one */
  templates: readonly string[];
}

/** What one fact of an attribute is worth: `bits` of information, `chance` the share a guess gets right. */
export interface AttributeStats {
  name: string;
  bits: number;
  chance: number;
}

/** Values drawn uniformly from V: log2 V bits, chance 1/V. */
export function uniformStats(attributes: readonly Attribute[]): AttributeStats[] {
  return attributes.map((a) => ({ name: a.name, bits: Math.log2(a.values.length), chance: 1 / a.values.length }));
}

/** From the facts themselves: the entropy of each attribute's values, chance = its most common value's share. */
export function empiricalStats(facts: readonly CapacityFact[], attributes: readonly Attribute[]): AttributeStats[] {
  return attributes.map((a) => {
    const counts = new Map<string, number>();
    for (const f of facts) if (f.attribute === a.name) counts.set(f.value, (counts.get(f.value) ?? 0) + 1);
    const n = [...counts.values()].reduce((x, y) => x + y, 0);
    const ps = [...counts.values()].map((c) => c / n);
    return { name: a.name, bits: ps.reduce((h, p) => h - p * Math.log2(p), 0), chance: n ? Math.max(...ps) : 0 };
  });
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
  /** per attribute: bits per fact and chance (uniformStats, or empiricalStats for a facts file) */
  stats: AttributeStats[];
  /** facts of each attribute */
  factsPer: Record<string, number>;
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
    // not 'was born in {o}': the year's question would be a prefix of the city's
    templates: ['{e} lives in {o}.', '{e} has a home in {o}.', 'The home town of {e} is {o}.'],
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

function checkAttributes(attributes: readonly Attribute[]): void {
  for (const a of attributes) {
    if (a.values.length < 2) throw new Error(`attribute ${a.name}: needs at least 2 values`);
    if (new Set(a.values).size !== a.values.length) throw new Error(`attribute ${a.name}: values must be distinct`);
    if (!a.templates.length || a.templates.some((t) => !t.includes('{e}') || !t.includes('{o}'))) {
      throw new Error(`attribute ${a.name}: every template needs {e} and {o}`);
    }
  }
}

export function generateCapacityFacts(opts: { entities: number; seed: number; attributes?: readonly Attribute[] }): CapacityFacts {
  const attributes = opts.attributes ?? DEFAULT_ATTRIBUTES;
  if (!Number.isInteger(opts.entities) || opts.entities < 1) throw new Error(`entities must be a whole number ≥ 1, got ${opts.entities}`);
  checkAttributes(attributes);
  const r = mulberry32(opts.seed);
  const names = wordSet(opts.entities, 3, opts.seed ^ 0x5eed);
  const facts: CapacityFact[] = [];
  for (const entity of names) {
    for (const a of attributes) facts.push({ entity, attribute: a.name, value: a.values[Math.floor(r() * a.values.length)]! });
  }
  return capacityTexts(facts, attributes, uniformStats(attributes), r);
}

/** The training text, questions and fact statements of `facts` (shuffled by `r`). */
export function capacityTexts(
  facts: CapacityFact[],
  attributes: readonly Attribute[],
  stats: AttributeStats[],
  r: () => number,
): CapacityFacts {
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
  const bitsPerFact = Object.fromEntries(stats.map((a) => [a.name, a.bits]));
  const factsPer = Object.fromEntries(attributes.map((a) => [a.name, 0]));
  for (const f of facts) factsPer[f.attribute]!++;
  const totalBits = facts.reduce((s, f) => s + bitsPerFact[f.attribute]!, 0);
  return { facts, trainText: ` ${shuffle(statements, r).join(' ')}`, qa, factStatements, bitsPerFact, totalBits, stats, factsPer };
}

/**
 * `--facts-file` / data.capacity.factsFile: JSONL, one fact a line, `{"entity", "attribute",
 * "value"}` (strings); a line `{"attribute", "templates": [...]}` gives that attribute's statement
 * templates ({e} entity, {o} value; the first asks the question), otherwise
 * `The <attribute> of {e} is {o}.` Errors name the line and the field.
 */
export function readCapacityFactsFile(file: string, seed = 1): CapacityFacts {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('data.capacity.factsFile', `cannot read ${file}: ${(e as Error).message}`);
  }
  const facts: CapacityFact[] = [];
  const templates = new Map<string, string[]>();
  const str = (v: unknown) => typeof v === 'string' && v.trim().length > 0;
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const at = `${file}:${i + 1}`;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new ConfigError('data.capacity.factsFile', `${at}: not JSON`);
    }
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw new ConfigError('data.capacity.factsFile', `${at}: expected an object`);
    if (!str(o.attribute)) throw new ConfigError('data.capacity.factsFile', `${at}: "attribute" must be a non-empty string`);
    if ('templates' in o) {
      const t = o.templates;
      if (!Array.isArray(t) || !t.length || t.some((x) => typeof x !== 'string' || !x.includes('{e}') || !x.includes('{o}'))) {
        throw new ConfigError('data.capacity.factsFile', `${at}: "templates" must be a list of strings with {e} and {o}`);
      }
      templates.set(o.attribute as string, t as string[]);
      return;
    }
    for (const k of ['entity', 'value'] as const) {
      if (!str(o[k])) throw new ConfigError('data.capacity.factsFile', `${at}: "${k}" must be a non-empty string`);
    }
    facts.push({ entity: (o.entity as string).trim(), attribute: o.attribute as string, value: (o.value as string).trim() });
  });
  if (!facts.length) throw new ConfigError('data.capacity.factsFile', `${file} holds no facts`);
  const names = [...new Set(facts.map((f) => f.attribute))];
  const stray = [...templates.keys()].find((a) => !names.includes(a));
  if (stray) throw new ConfigError('data.capacity.factsFile', `templates for attribute '${stray}', which no fact has`);
  const attributes: Attribute[] = names.map((name) => ({
    name,
    values: [...new Set(facts.filter((f) => f.attribute === name).map((f) => f.value))].sort(),
    templates: templates.get(name) ?? [`The ${name} of {e} is {o}.`],
  }));
  const one = attributes.find((a) => a.values.length < 2);
  if (one) throw new ConfigError('data.capacity.factsFile', `attribute '${one.name}' has one value only: it carries no information`);
  return capacityTexts(facts, attributes, empiricalStats(facts, attributes), mulberry32(seed));
}

export interface AttributeBits {
  attribute: string;
  /** facts asked */
  n: number;
  /** share answered right */
  accuracy: number;
  /** the share a guess gets right (1/V for uniform values) */
  chance: number;
  /** f · facts · bits per fact, f = (accuracy − chance)/(1 − chance) clipped at 0 */
  bits: number;
}

/** Right answers of an attribute's questions. */
export interface AnswerCounts {
  n: number;
  correct: number;
}

/**
 * Stored knowledge in bits (see the file header) from per-attribute answer counts. `totals`
 * (facts of each attribute) scales a sample of questions to all facts: f is estimated on the
 * questions asked, bits = f · total · bits per fact.
 */
export function bitsFromCounts(
  counts: Readonly<Record<string, AnswerCounts>>,
  stats: readonly AttributeStats[],
  totals?: Readonly<Record<string, number>>,
): { bits: number; perAttribute: AttributeBits[] } {
  const unknown = Object.keys(counts).find((k) => !stats.some((a) => a.name === k));
  if (unknown) throw new Error(`storedBits: answer for unknown attribute ${unknown}`);
  const perAttribute = stats.map((a) => {
    const { n, correct } = counts[a.name] ?? { n: 0, correct: 0 };
    const accuracy = n ? correct / n : 0;
    const f = a.chance < 1 ? Math.max(0, (accuracy - a.chance) / (1 - a.chance)) : 0;
    return { attribute: a.name, n, accuracy, chance: a.chance, bits: f * (totals?.[a.name] ?? n) * a.bits };
  });
  return { bits: perAttribute.reduce((s, a) => s + a.bits, 0), perAttribute };
}

/** Right answers per attribute from per-question correctness. */
export function answerCounts(answers: readonly { attribute: string; correct: boolean }[]): Record<string, AnswerCounts> {
  const out: Record<string, AnswerCounts> = {};
  for (const x of answers) {
    out[x.attribute] ??= { n: 0, correct: 0 };
    const c = out[x.attribute]!;
    c.n++;
    if (x.correct) c.correct++;
  }
  return out;
}

/** Stored knowledge in bits from per-question correctness (attributes drawn uniformly unless `stats` are given). */
export function storedBits(
  answers: readonly { attribute: string; correct: boolean }[],
  attributes: readonly Attribute[] | readonly AttributeStats[] = DEFAULT_ATTRIBUTES,
): { bits: number; perAttribute: AttributeBits[] } {
  const stats = attributes.map((a) => ('values' in a ? uniformStats([a])[0]! : a));
  return bitsFromCounts(answerCounts(answers), stats);
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
