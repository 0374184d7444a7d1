#!/usr/bin/env node
/**
 * mnemo-memory build --checkpoint DIR --refs FILE.jsonl --store DIR: write the Memory³ memories
 * of reference texts with a checkpoint's model into a store that `mnemo-serve --memory-store`
 * reads (docs/design.md §4).
 *
 * FILE.jsonl: one JSON object per line with a non-empty "text" (other fields are ignored); every
 * line is checked before anything is written, and a bad one is named by its line number. Texts
 * longer than one reference (127 tokens) are split. Writes are durable batch by batch: an
 * interrupted build keeps what it acknowledged, and running it again skips the texts already
 * stored (exact text match), so nothing is written twice.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, MnemoError, Progress, defineFlags, parseArgvOrExit } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { type CodecSpec, KnowledgeBase, type MemoryEntry, trainKvQuantizer } from '@mnemo/memory3';
import { loadCheckpoint } from '@mnemo/model';
import { openKnowledgeStore, readRefs } from './knowledge-store';

const FLAGS = defineFlags({
  checkpoint: { type: 'string', placeholder: 'DIR', description: 'trainer checkpoint whose model writes the memories (required)' },
  refs: { type: 'string', placeholder: 'FILE', description: 'references, JSON lines with a "text" field (required)' },
  store: { type: 'string', placeholder: 'DIR', description: 'the store to create or add to (required)' },
  codec: {
    type: 'string',
    placeholder: 'KIND',
    choices: ['bf16', 'f16', 'f32', 'pq'],
    description: "a new store's K/V codec",
    default: 'bf16',
  },
  'pq-subspaces': { type: 'int', min: 1, description: 'pq: bytes per head vector (subspaces of d_h)', defaultText: 'd_h / 4' },
  'pq-sample': { type: 'int', min: 1, description: 'pq: references the quantiser is trained on', default: 512 },
  batch: { type: 'int', min: 1, description: 'texts written per durable batch', default: 16 },
});

const SYNOPSIS = 'mnemo-memory build --checkpoint DIR --refs FILE.jsonl --store DIR [--codec bf16|f16|f32|pq]';

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv[0] !== 'build' && argv[0] !== '--help' && argv[0] !== '-h') {
    process.stderr.write(`mnemo-memory: unknown command '${argv[0] ?? ''}'\n${SYNOPSIS}\n`);
    return 2;
  }
  const { values: v } = parseArgvOrExit(FLAGS, {
    name: 'mnemo-memory build',
    synopsis: SYNOPSIS,
    argv: argv[0] === 'build' ? argv.slice(1) : argv,
  });
  for (const f of ['checkpoint', 'refs', 'store'] as const) if (!v[f]) throw new ConfigError(`--${f}`, 'is required');
  const say = (m: string) => process.stderr.write(`mnemo-memory: ${m}\n`);
  const texts = readRefs(v.refs!, readFileSync(v.refs!, 'utf8'));
  await initBackend();
  const { model, tokenizer, extraTensors } = loadCheckpoint(v.checkpoint!);
  for (const t of Object.values(extraTensors)) t.dispose();

  let codec: CodecSpec = v.codec as CodecSpec;
  /** per text index: entries already written (the pq sample), stored below without writing them again */
  const written0 = new Map<number, MemoryEntry[]>();
  if (v.codec === 'pq') {
    const sample = texts.slice(0, v['pq-sample']);
    say(`training the pq quantiser on the memories of ${sample.length} texts`);
    const scratch = KnowledgeBase.inMemory(model, tokenizer);
    sample.forEach((t, i) => written0.set(i, scratch.write([t])));
    const dh = model.config.dim / model.config.heads;
    const memories = [...written0.values()].flat().map((e) => e.memory);
    codec = {
      kind: 'pq',
      quantizer: trainKvQuantizer(memories, { subspaces: v['pq-subspaces'] ?? Math.max(1, Math.floor(dh / 4)), seed: 0 }),
    };
  }
  const { knowledge, bank, created } = await openKnowledgeStore(v.store!, { checkpoint: v.checkpoint!, model, tokenizer, codec });
  try {
    const stored = new Set(bank.list().map((m) => m.text));
    say(`${created ? 'created' : 'opened'} ${v.store} (${bank.size} references stored)`);
    const progress = new Progress(texts.length, 'writing', 'texts');
    let written = 0;
    let skipped = 0;
    for (let i = 0; i < texts.length; i += v.batch) {
      const batch = texts.slice(i, i + v.batch);
      const entries = batch.flatMap((t, j) => written0.get(i + j) ?? knowledge.write([t]));
      const todo = entries.filter((e) => !stored.has(e.text));
      skipped += entries.length - todo.length;
      if (todo.length > 0) await bank.add(todo);
      for (const e of todo) stored.add(e.text);
      written += todo.length;
      progress.tick(batch.length, `${written} references`);
    }
    say(
      `wrote ${written} references from ${texts.length} texts into ${v.store} (${bank.size} stored)` +
        (skipped > 0 ? `; skipped ${skipped} already stored` : ''),
    );
  } finally {
    await bank.close();
    model.dispose();
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`mnemo-memory: ${e instanceof MnemoError ? e.message : ((e as Error).stack ?? String(e))}\n`);
    process.exit(1);
  },
);
