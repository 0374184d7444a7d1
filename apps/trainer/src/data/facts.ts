/**
 * Synthetic facts: made-up entities × relations → objects, each fact stated in several templates
 * inside filler text, plus evaluation prompts.
 *
 *   train text:  every fact in its training templates, shuffled, between filler sentences
 *   qa:          one prompt per fact: an evaluation template cut right before the object
 *                (with the leading space statements have in the training text)
 *   factStatements: each fact stated once more, in a training template (the loss on fact text:
 *                each statement scored on its own, so the order statements had in training
 *                does not enter)
 *   heldOutText: statements of other facts, never trained on (validation loss on unseen facts:
 *                the format transfers, the entities and objects cannot be known)
 *
 * "Held out" (default `mode: 'seen'`): the qa prompts are generated separately from the training
 * stream, never cut out of it; the template they use is one of the fact's training templates,
 * so recall measures memorised facts. `mode: 'unseen'`: the evaluation template is never used for
 * any fact in training (recall then also needs the model to transfer across phrasings).
 */
import { mulberry32 } from '@mnemo/core';
import type { QaPair } from './qa';

export interface FactsOptions {
  count: number;
  seed: number;
  mode?: 'seen' | 'unseen';
  /** filler sentences between facts (from the default corpus) */
  filler?: string[];
  /** filler sentences per fact statement */
  fillerRatio?: number;
}

export interface Fact {
  entity: string;
  relation: string;
  object: string;
}

export interface FactsData {
  facts: Fact[];
  trainText: string;
  qa: QaPair[];
  factStatements: string[];
  heldOutText: string;
}

/** syllable parts of made-up names (also data/capacity.ts) */
export const ONSETS = ['b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'kr', 'tr', 'st', 'qu', 'th'];
export const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ou', 'y'];
const COLOURS = ['red', 'blue', 'green', 'amber', 'violet', 'white', 'black', 'silver', 'golden', 'grey'];

/** relation → templates ({e} entity, {o} object); the FIRST template is the evaluation one */
const RELATIONS: Record<string, { objects: (r: () => number) => string; templates: string[] }> = {
  capital: {
    objects: (r) => word(r, 2),
    templates: ['The capital of {e} is {o}.', "{e}'s capital city is {o}.", 'In {e}, the seat of power is {o}.'],
  },
  founder: {
    objects: (r) => word(r, 2),
    templates: ['{e} was founded by {o}.', 'The founder of {e} was {o}.', '{o} founded {e} long ago.'],
  },
  colour: {
    objects: (r) => COLOURS[Math.floor(r() * COLOURS.length)]!,
    templates: ['The flag of {e} is {o}.', "{e}'s flag is {o}.", 'People of {e} fly a {o} flag.'],
  },
  year: {
    objects: (r) => String(1000 + Math.floor(r() * 1000)),
    templates: ['{e} was built in the year {o}.', 'The year {e} was built is {o}.', 'Builders finished {e} in {o}.'],
  },
};

function word(r: () => number, syllables: number): string {
  let w = '';
  for (let i = 0; i < syllables; i++) w += ONSETS[Math.floor(r() * ONSETS.length)]! + VOWELS[Math.floor(r() * VOWELS.length)]!;
  w += ONSETS[Math.floor(r() * 10)]!;
  return w[0]!.toUpperCase() + w.slice(1);
}

/** Fisher–Yates in place with the generator `r` (also data/capacity.ts). */
export function shuffle<T>(a: T[], r: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

const fill = (t: string, f: Fact) => t.replaceAll('{e}', f.entity).replaceAll('{o}', f.object);

/** The relations' names, in template order. */
export const RELATION_NAMES = Object.keys(RELATIONS);

/** A fresh fact: a made-up 3-syllable entity, the given relation, a random object. */
export function randomFact(r: () => number, relation: string): Fact {
  const rel = RELATIONS[relation];
  if (!rel) throw new Error(`unknown relation ${relation}`);
  return { entity: word(r, 3), relation, object: rel.objects(r) };
}

/** Fact `f` in its relation's template `template` (0 = the evaluation one), without a leading space. */
export function statementOf(f: Fact, template: number): string {
  const t = RELATIONS[f.relation]!.templates[template];
  if (t === undefined) throw new Error(`relation ${f.relation} has no template ${template}`);
  return fill(t, f);
}

export function generateFacts(opts: FactsOptions): FactsData {
  const r = mulberry32(opts.seed);
  const relations = Object.keys(RELATIONS);
  const facts: Fact[] = [];
  const used = new Set<string>();
  while (facts.length < opts.count) {
    const entity = word(r, 3);
    if (used.has(entity)) continue;
    used.add(entity);
    for (const relation of relations) {
      if (facts.length >= opts.count) break;
      facts.push({ entity, relation, object: RELATIONS[relation]!.objects(r) });
    }
  }
  const mode = opts.mode ?? 'seen';
  const statements: string[] = [];
  for (const f of facts) {
    const templates = RELATIONS[f.relation]!.templates;
    for (const [i, t] of templates.entries()) if (mode === 'seen' || i > 0) statements.push(fill(t, f));
  }
  shuffle(statements, r);
  const filler = opts.filler ?? [];
  const ratio = opts.fillerRatio ?? 1;
  const parts: string[] = [];
  let fi = Math.floor(r() * Math.max(1, filler.length));
  for (const s of statements) {
    parts.push(s);
    for (let j = 0; j < ratio && filler.length; j++) parts.push(filler[fi++ % filler.length]!);
  }
  // Prompts and statements start with the space that precedes every statement in the training
  // text, so they tokenize as trained (byte-level BPE: ' The' and 'The' are different tokens).
  const qa = facts.map((f) => {
    const t = RELATIONS[f.relation]!.templates[0]!;
    const cut = t.indexOf('{o}');
    return { prompt: ` ${fill(t.slice(0, cut), f).trimEnd()}`, answer: f.object };
  });
  const factStatements = facts.map((f) => ` ${fill(RELATIONS[f.relation]!.templates[1]!, f)}`);
  // held-out facts: their own generator, so the training data does not depend on how many
  const h = mulberry32(opts.seed ^ 0x68e1d0);
  const heldOut: string[] = [];
  for (let n = 0; n < Math.max(8, Math.ceil(opts.count / 10)); ) {
    const entity = word(h, 3);
    if (used.has(entity)) continue;
    used.add(entity);
    for (const relation of relations) {
      const f = { entity, relation, object: RELATIONS[relation]!.objects(h) };
      for (const t of RELATIONS[relation]!.templates) heldOut.push(fill(t, f));
      n++;
    }
  }
  return { facts, trainText: ` ${parts.join(' ')}`, qa, factStatements, heldOutText: shuffle(heldOut, h).join(' ') };
}

/** Sentences of a text (for filler). */
export function sentences(text: string, max = 20000): string[] {
  const out: string[] = [];
  for (const m of text.replace(/\s+/g, ' ').matchAll(/[^.!?]{20,200}[.!?]/g)) {
    out.push(m[0].trim());
    if (out.length >= max) break;
  }
  return out;
}
