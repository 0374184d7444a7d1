/**
 * The official `openai` npm client against the server on an ephemeral port (FakeEngine: its
 * logits are known, so logprobs, penalties and logit_bias are checked against numbers computed
 * here): chat and completions, streamed and not, n, echo, token prompts, and errors surfacing as
 * the SDK's typed errors.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CHAT_TEMPLATE, renderChat } from '@mnemo/model';
import { logSumExp } from './logits';
import type { MnemoServer } from './server';
import { FakeEngine } from './testing/fake-engine';
import { startServer } from './testing/http';

const engine = new FakeEngine({ maxSeqLen: 512 });
let server: MnemoServer;
let client: OpenAI;
let url: string;

beforeAll(async () => {
  ({ server, url } = await startServer(engine, { maxTokens: 64 }));
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server.shutdown();
});

/** The fake's greedy continuation of `prompt`, computed on the engine directly. */
function greedy(prompt: string, tokens: number): string {
  const cache = engine.newCache();
  let logits = engine.prefill(engine.encode(prompt), cache);
  const out: number[] = [];
  for (let i = 0; i < tokens; i++) {
    const id = engine.sample(logits, { temperature: 0, topP: 1 }, () => 0);
    out.push(id);
    logits = engine.decodeBatch([id], [cache])[0]!;
  }
  cache.dispose();
  return engine.decode(out);
}

const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Where is Paris?' },
];

describe('openai client: chat', () => {
  it('renders messages with the chat template and generates the reply, with usage', async () => {
    const r = await client.chat.completions.create({ model: 'fake', messages, max_tokens: 10, temperature: 0 });
    const prompt = renderChat(DEFAULT_CHAT_TEMPLATE, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Where is Paris?' },
    ]);
    expect(prompt).toBe('Be brief.\n\nUser: Where is Paris?\nAssistant:');
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0]!.message.role).toBe('assistant');
    expect(r.choices[0]!.message.content).toBe(greedy(prompt, 10).trimStart());
    expect(r.choices[0]!.finish_reason).toBe('length');
    expect(r.usage).toEqual({ prompt_tokens: prompt.length, completion_tokens: 10, total_tokens: prompt.length + 10 });
  });

  it('streams chunks in the usual shape that add up to the same reply', async () => {
    const whole = await client.chat.completions.create({ messages, model: 'fake', max_tokens: 12, temperature: 0 });
    const stream = await client.chat.completions.create({
      messages,
      model: 'fake',
      max_tokens: 12,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThan(3); // really streamed
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('length');
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toEqual(whole.usage);
  });

  it('stop sequences, seed and n: choice 0 is the n = 1 answer, all choices sampled on their own', async () => {
    const one = await client.chat.completions.create({ messages, model: 'fake', max_tokens: 16, temperature: 1, seed: 5 });
    const three = await client.chat.completions.create({ messages, model: 'fake', max_tokens: 16, temperature: 1, seed: 5, n: 3 });
    expect(three.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    // the three choices decode together, each on its own cache (freed afterwards)
    expect(engine.batchSizes).toContain(3);
    expect(engine.liveCaches).toBe(0);
    expect(three.choices[0]!.message.content).toBe(one.choices[0]!.message.content);
    expect(new Set(three.choices.map((c) => c.message.content)).size).toBeGreaterThan(1);
    expect(three.usage!.completion_tokens).toBe(48);
    expect(three.usage!.prompt_tokens).toBe(one.usage!.prompt_tokens); // the prompt counts once
    const text = one.choices[0]!.message.content!;
    const stop = text.slice(3, 5);
    const cut = await client.chat.completions.create({ messages, model: 'fake', max_tokens: 16, temperature: 1, seed: 5, stop: [stop] });
    expect(cut.choices[0]!.message.content).toBe(text.slice(0, text.indexOf(stop)));
    expect(cut.choices[0]!.finish_reason).toBe('stop');
  });

  it('logprobs and top_logprobs are log-softmax of the logits', async () => {
    const r = await client.chat.completions.create({
      messages: [{ role: 'user', content: 'x' }],
      model: 'fake',
      max_tokens: 3,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2,
    });
    const content = r.choices[0]!.logprobs!.content!;
    expect(content.length).toBe(3);
    // the first token: from the prompt's logits
    const logits = engine.prefill(engine.encode('User: x\nAssistant:'), engine.newCache());
    const lse = logSumExp(logits);
    const best = logits.indexOf(Math.max(...logits));
    expect(content[0]!.token).toBe(String.fromCharCode(best));
    expect(content[0]!.logprob).toBeCloseTo(logits[best]! - lse, 5);
    expect(content[0]!.bytes).toEqual([best]);
    expect(content[0]!.top_logprobs.length).toBe(2);
    expect(content[0]!.top_logprobs[0]!.logprob).toBeCloseTo(content[0]!.logprob, 6);
    expect(content[0]!.top_logprobs[1]!.logprob).toBeLessThan(content[0]!.top_logprobs[0]!.logprob);
  });
});

describe('openai client: completions', () => {
  it('plain and streamed agree; token-array prompts equal their text', async () => {
    const plain = await client.completions.create({ model: 'fake', prompt: 'The memory', max_tokens: 20, temperature: 0.7, seed: 3 });
    expect(plain.choices[0]!.text).toHaveLength(20);
    const stream = await client.completions.create({
      model: 'fake',
      prompt: 'The memory',
      max_tokens: 20,
      temperature: 0.7,
      seed: 3,
      stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(plain.choices[0]!.text);
    expect(finish).toBe('length');
    const ids = await client.completions.create({
      model: 'fake',
      prompt: engine.encode('The memory'),
      max_tokens: 20,
      temperature: 0.7,
      seed: 3,
    });
    expect(ids.choices[0]!.text).toBe(plain.choices[0]!.text);
    const two = await client.completions.create({ model: 'fake', prompt: ['ab', 'cd'], max_tokens: 5, temperature: 0, n: 2 });
    expect(two.choices.map((c) => c.text)).toEqual([greedy('ab', 5), greedy('ab', 5), greedy('cd', 5), greedy('cd', 5)]);
    expect(two.usage!.prompt_tokens).toBe(4);
  });

  it('logprobs: k alternatives per token; echo scores the prompt too', async () => {
    const r = await client.completions.create({ model: 'fake', prompt: 'ab', max_tokens: 4, temperature: 0, logprobs: 3, echo: true });
    const c = r.choices[0]!;
    expect(c.text).toBe(`ab${greedy('ab', 4)}`);
    const lp = c.logprobs!;
    expect(lp.tokens).toEqual([...c.text]);
    expect(lp.token_logprobs![0]).toBeNull();
    expect(lp.text_offset).toEqual([0, 1, 2, 3, 4, 5]);
    // 'b' after 'a': log-softmax of the logits after the first prompt token
    const logits = engine.prefill([97], engine.newCache());
    expect(lp.token_logprobs![1]).toBeCloseTo(logits[98]! - logSumExp(logits), 5);
    for (const top of lp.top_logprobs!.slice(1)) expect(Object.keys(top!).length).toBe(3);
    // echo with max_tokens 0 scores the prompt only
    const score = await client.completions.create({ model: 'fake', prompt: 'ab', max_tokens: 0, logprobs: 0, echo: true });
    expect(score.choices[0]!.text).toBe('ab');
    expect(score.choices[0]!.logprobs!.token_logprobs).toEqual([null, lp.token_logprobs![1]]);
    // streamed logprobs cover the same tokens
    const stream = await client.completions.create({
      model: 'fake',
      prompt: 'ab',
      max_tokens: 4,
      temperature: 0,
      logprobs: 1,
      stream: true,
    });
    const streamed: number[] = [];
    for await (const ch of stream) streamed.push(...((ch.choices[0]?.logprobs?.token_logprobs ?? []) as number[]));
    expect(streamed).toHaveLength(4);
    expect(streamed[0]).toBeCloseTo(lp.token_logprobs![2]!, 6);
    // streamed echo: the prompt is the first chunk
    const echoed = await client.completions.create({
      model: 'fake',
      prompt: 'ab',
      max_tokens: 4,
      temperature: 0,
      echo: true,
      stream: true,
    });
    const texts: string[] = [];
    for await (const ch of echoed) texts.push(ch.choices[0]?.text ?? '');
    expect(texts[0]).toBe('ab');
    expect(texts.join('')).toBe(c.text);
  });

  it('logit_bias and penalties change what is sampled', async () => {
    const base = greedy('q', 20);
    const banned = base.charCodeAt(0);
    const r = await client.completions.create({
      model: 'fake',
      prompt: 'q',
      max_tokens: 1,
      temperature: 0,
      logit_bias: { [banned]: -100 },
    });
    expect(r.choices[0]!.text).not.toBe(base[0]);
    const forced = await client.completions.create({
      model: 'fake',
      prompt: 'q',
      max_tokens: 6,
      temperature: 0,
      logit_bias: { '122': 100 },
    });
    expect(forced.choices[0]!.text).toBe('zzzzzz');
    // without penalties the fake repeats letters within 20 tokens; with them every letter is new
    expect(new Set(base).size).toBeLessThan(20);
    const p = await client.completions.create({
      model: 'fake',
      prompt: 'q',
      max_tokens: 20,
      temperature: 0,
      presence_penalty: 2,
      frequency_penalty: 2,
    });
    expect(new Set(p.choices[0]!.text).size).toBe(20);
  });
});

describe('openai client: errors are the SDK typed errors', () => {
  it('400 BadRequestError names the parameter; unsupported features say so by name', async () => {
    const cases: Array<[() => Promise<unknown>, string, string]> = [
      [() => client.completions.create({ model: 'fake', prompt: 'a', n: 17 }), 'n', 'invalid_value'],
      [() => client.completions.create({ model: 'fake', prompt: 'a', suffix: 'b' }), 'suffix', 'unsupported_parameter'],
      [() => client.completions.create({ model: 'fake', prompt: [1, 999] }), 'prompt.1', 'invalid_token_id'],
      [() => client.completions.create({ model: 'fake', prompt: 'a', logit_bias: { '5x': 1 } }), 'logit_bias.5x', 'invalid_token_id'],
      [
        () =>
          client.chat.completions.create({
            model: 'fake',
            messages,
            tools: [{ type: 'function', function: { name: 'f', parameters: {} } }],
          }),
        'tools',
        'unsupported_parameter',
      ],
      [
        () => client.chat.completions.create({ model: 'fake', messages, response_format: { type: 'json_object' } }),
        'response_format',
        'unsupported_parameter',
      ],
      [
        () =>
          client.chat.completions.create({
            model: 'fake',
            messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/y.png' } }] }],
          }),
        'messages.0.content.0.type',
        'unsupported_parameter',
      ],
      [
        () => client.chat.completions.create({ model: 'fake', messages: [{ role: 'tool', content: 'x', tool_call_id: '1' }] }),
        'messages.0.role',
        'invalid_value',
      ],
      [() => client.chat.completions.create({ model: 'fake', messages, top_logprobs: 2 }), 'top_logprobs', 'invalid_value'],
      [() => client.chat.completions.create({ model: 'fake', messages: [] }), 'messages', 'invalid_value'],
    ];
    for (const [call, param, code] of cases) {
      const e = await call().then(
        () => null,
        (x: unknown) => x,
      );
      expect(e, param).toBeInstanceOf(OpenAI.BadRequestError);
      const err = e as InstanceType<typeof OpenAI.BadRequestError>;
      expect(err.status).toBe(400);
      expect(err.param).toBe(param);
      expect(err.code).toBe(code);
    }
  });

  it('404 NotFoundError for another model, 401 AuthenticationError without the key, an error event ends a stream', async () => {
    await expect(client.chat.completions.create({ model: 'gpt-4o', messages })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const locked = await startServer(new FakeEngine({ stepMs: 15 }), { apiKey: 'sesame', timeoutMs: 400 });
    try {
      const wrong = new OpenAI({ baseURL: `${locked.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
      await expect(wrong.completions.create({ model: 'fake', prompt: 'a' })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      const right = new OpenAI({ baseURL: `${locked.url}/v1`, apiKey: 'sesame', maxRetries: 0 });
      const ok = await right.chat.completions.create({ model: 'fake', messages, max_tokens: 2 });
      expect(ok.choices[0]!.message.content!.length).toBeGreaterThan(0);
      // a stream that runs past --timeout-ms: the SDK throws the server's error event
      // (greedy: at the default temperature 1 the fake engine samples its end-of-text token ~0.3% a step)
      const stream = await right.chat.completions.create({ model: 'fake', messages, max_tokens: 200, stream: true, temperature: 0 });
      let got = '';
      const seen: unknown[] = [];
      const e = await (async () => {
        for await (const c of stream) {
          seen.push(c);
          got += c.choices[0]?.delta.content ?? '';
        }
      })().then(
        () => null,
        (x: unknown) => x,
      );
      expect(e, `the stream ended without an error event: ${JSON.stringify(seen.slice(-2))}`).toBeInstanceOf(OpenAI.APIError);
      expect((e as InstanceType<typeof OpenAI.APIError>).code).toBe('timeout');
      expect(got.length).toBeGreaterThan(0);
    } finally {
      await locked.server.shutdown();
    }
  });
});
