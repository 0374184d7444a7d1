/**
 * Memory³ stage-2 "reading" episodes: rows in which some tokens can ONLY be predicted from an
 * explicit memory. Every row states `factsPerRow` brand-new facts (fresh random entity and object,
 * never seen before nor again) in the evaluation template, then filler; each fact's reference
 * (the same fact in ANOTHER template) is returned to be written into the memory bank. Parameters
 * cannot know a fresh object, so the loss on the object's tokens falls only by reading the memory.
 *
 *   row b:   " <fact 1, template 0> … <fact k, template 0> <filler> …"   cut to `width` tokens
 *   refs:    " <fact i, template `referenceTemplate`>"                    one per fact of the batch
 */
import { mulberry32 } from '@mnemo/core';
import { type Fact, RELATION_NAMES, randomFact, shuffle, statementOf } from './facts';

export interface EpisodeOptions {
  rows: number;
  /** tokens per row (the loss window + 1) */
  width: number;
  factsPerRow: number;
  filler: string[];
  seed: number;
  /** entities never to use (the facts that must stay out of all training text) */
  exclude?: Set<string>;
  /** the template references are written in (1: differs from the row's template 0) */
  referenceTemplate?: number;
  /**
   * Fraction of the facts (0-1, default 0) whose reference is ALSO written earlier in the row's own
   * text ("in-context" facts, RAG-style): the row then copies the object from its own context, where
   * every weight on the path gets gradient, which memory keys (written without gradient) never do.
   */
  inContext?: number;
}

export interface EpisodeBatch {
  /** [rows, width] token ids */
  ids: Int32Array;
  /** one reference per fact, row-major */
  references: string[];
  /** the facts of each row */
  facts: Fact[][];
}

/** A batch of reading episodes; the same options give the same batch. */
export function episodeBatch(o: EpisodeOptions, encode: (text: string) => number[]): EpisodeBatch {
  if (o.inContext !== undefined && !(o.inContext >= 0 && o.inContext <= 1))
    throw new RangeError(`episodeBatch: inContext must be a fraction in [0, 1], got ${o.inContext}`);
  const r = mulberry32(o.seed);
  const ids = new Int32Array(o.rows * o.width);
  const references: string[] = [];
  const facts: Fact[][] = [];
  for (let b = 0; b < o.rows; b++) {
    const row: Fact[] = [];
    while (row.length < o.factsPerRow) {
      const f = randomFact(r, RELATION_NAMES[Math.floor(r() * RELATION_NAMES.length)]!);
      if (o.exclude?.has(f.entity) || row.some((g) => g.entity === f.entity)) continue;
      row.push(f);
    }
    // in-context references first, then the statements; both orders shuffled, so that only matching
    // the entity finds a statement's reference (a fixed offset or order would not)
    const shown = o.inContext
      ? shuffle(
          row.filter(() => r() < o.inContext!),
          r,
        )
      : [];
    const stated = o.inContext ? shuffle([...row], r) : row;
    const parts = [...shown.map((f) => statementOf(f, o.referenceTemplate ?? 1)), ...stated.map((f) => statementOf(f, 0))];
    let tokens = encode(` ${parts.join(' ')}`);
    let fi = Math.floor(r() * Math.max(1, o.filler.length));
    while (tokens.length < o.width) {
      if (o.filler.length === 0) throw new Error('episodeBatch: rows too short and no filler to pad them');
      parts.push(o.filler[fi++ % o.filler.length]!);
      tokens = encode(` ${parts.join(' ')}`);
    }
    ids.set(tokens.slice(0, o.width), b * o.width);
    for (const f of row) references.push(` ${statementOf(f, o.referenceTemplate ?? 1)}`);
    facts.push(row);
  }
  return { ids, references, facts };
}
