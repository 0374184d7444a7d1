/**
 * Memory3Engine over the real (tiny, random) model and a RAM knowledge base: the server's chunked
 * retrieval gives the same text and references as the library's generate({ memory }), writes and
 * deletes race streamed completions without an error, and nothing leaks.
 */
import { initBackend } from '@mnemo/kernels';
import { KnowledgeBase } from '@mnemo/memory3';
import { BpeTokenizer, LanguageModel, generate } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Memory3Engine } from './memory3-engine';
import type { MnemoServer } from './server';
import { tinyCorpus } from './testing/checkpoint';
import { post, readSse, startServer } from './testing/http';
import { tinyConfig } from './testing/tiny-model';

let model: LanguageModel;
let tokenizer: BpeTokenizer;
let server: MnemoServer;
let url: string;
let engine: Memory3Engine;

const facts = [
  'Quendle is the capital of Zorbia, a country of red hills.',
  'The river Tamsk flows north through the silver city of Orvel.',
  'Brakka the smith forged a golden key for the queen of Lum.',
];

beforeAll(async () => {
  await initBackend();
  tokenizer = BpeTokenizer.train([...tinyCorpus, ...facts], { vocabSize: 300 });
  model = new LanguageModel({ ...tinyConfig, vocabSize: tokenizer.vocabSize, maxSeqLen: 192 });
  engine = new Memory3Engine(model, tokenizer, 'tiny-m3', KnowledgeBase.inMemory(model, tokenizer));
  ({ server, url } = await startServer(engine, { maxTokens: 150 }));
});
afterAll(async () => {
  await server.shutdown();
});

describe('Memory3Engine', () => {
  it('reads what the library generate({ memory }) reads, token for token, across 64-token chunks', async () => {
    const added = (await (await post(`${url}/v1/memories`, { text: facts })).json()) as { data: { id: number }[] };
    expect(added.data).toHaveLength(3);
    const prompt = `${tinyCorpus[0]} ${tinyCorpus[1]} Zorbia`; // > 64 tokens: the prompt itself spans two chunks
    expect(tokenizer.encode(prompt).length).toBeGreaterThan(64);
    const r = (await (await post(`${url}/v1/completions`, { prompt, max_tokens: 90, temperature: 0 })).json()) as {
      choices: { text: string }[];
      references: number[];
    };
    const session = engine.reader.session();
    const lib = generate(model, tokenizer, prompt, { maxTokens: 90, temperature: 0, memory: session });
    expect(r.choices[0]!.text).toBe(lib.text);
    expect(r.references).toEqual(session.references);
    expect(session.chunks.length).toBeGreaterThanOrEqual(3); // two prompt chunks and one generated one
    expect(r.references.length).toBeGreaterThan(0);
    // and the memories matter: the same model without them writes another continuation
    const plain = generate(model, tokenizer, prompt, { maxTokens: 90, temperature: 0 });
    expect(plain.text).not.toBe(lib.text);
  });

  it('lists, looks up and deletes through the real knowledge base', async () => {
    const list = (await (await fetch(`${url}/v1/memories`)).json()) as {
      data: { id: number; text: string; bytes: number }[];
      total: number;
    };
    expect(list.total).toBe(engine.memories.size);
    expect(list.data[0]!.text).toBe(facts[0]);
    expect(list.data[0]!.bytes).toBeGreaterThan(0);
    const l = (await (await post(`${url}/v1/memory/lookup`, { text: 'Zorbia and Quendle' })).json()) as {
      references: { ids: number[] }[];
    };
    expect(l.references[0]!.ids.length).toBeGreaterThan(0);
  });

  it('writes and deletes race streamed completions: 0 errors, no leaked tensors', async () => {
    const race = async () => {
      const work: Promise<string>[] = [];
      for (let i = 0; i < 6; i++) {
        work.push(
          post(`${url}/v1/completions`, { prompt: `Zorbia ${i}`, max_tokens: 80, stream: true }).then(async (res) => {
            const s = await readSse(res);
            const err = s.events.find((e) => (e as { error?: unknown }).error);
            return res.status === 200 && s.done && !err ? 'ok' : `stream ${res.status} ${JSON.stringify(err)}`;
          }),
        );
        work.push(
          post(`${url}/v1/memories`, { text: `Fact ${i}: Zorbia trades ${i} golden keys.` }).then((r) =>
            r.status === 201 ? 'ok' : `add ${r.status}`,
          ),
        );
        const victim = engine.memories.list(0, 100)[i]?.id;
        if (victim !== undefined) {
          work.push(
            fetch(`${url}/v1/memories/${victim}`, { method: 'DELETE' }).then((r) =>
              r.status === 200 || r.status === 404 ? 'ok' : `delete ${r.status}`,
            ),
          );
        }
      }
      const results = await Promise.all(work);
      await server.scheduler!.idle();
      return results.filter((r) => r !== 'ok');
    };
    // round 1 also fills the model's small per-length mask cache; round 2 repeats its lengths
    expect(await race()).toEqual([]);
    engine.reader.dispose(); // the RAM cache of decoded memories may hold tensors: count without it
    const before = tf.memory().numTensors;
    expect(await race()).toEqual([]);
    expect(engine.reader.cached).toBeGreaterThan(0);
    engine.reader.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
