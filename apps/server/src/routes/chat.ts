/**
 * POST /v1/chat/completions, OpenAI-compatible: `messages` (system / developer / user /
 * assistant, text content) are rendered into one prompt by the checkpoint's chat template
 * (chat-template.ts; a checkpoint without one uses the documented default), then generated like
 * a completion: `n` choices, stop (the template's own stop sequences added), seed, penalties,
 * logit_bias, `logprobs` + `top_logprobs` (the chat shape: `{content: [{token, logprob, bytes,
 * top_logprobs}]}`), streamed or not, `usage`.
 *
 * Stream: per choice a first chunk `delta: {role: 'assistant', content: ''}`, then
 * `delta: {content}` chunks, a chunk with `delta: {}` and the finish_reason, a usage chunk with
 * `choices: []` when stream_options.include_usage, then `data: [DONE]`.
 */
import type { FastifyInstance } from 'fastify';
import { type ChatMessage, DEFAULT_CHAT_TEMPLATE, renderChat } from '@mnemo/model';
import type { Engine } from '../engine';
import { invalidRequest, zodToApiError } from '../errors';
import type { TokenLogprob } from '../logits';
import { type ChatRequest, chatRequestSchema } from '../schemas';
import type { ServerContext } from '../server';
import {
  SseWriter,
  awaitAdmission,
  checkModel,
  encodePrompt,
  logitBiasOf,
  maxTokensOf,
  pendingLogprobs,
  randomId,
  referencesOf,
  resultsOf,
  stopsOf,
  streamChoices,
  submitChoices,
  usage,
} from './generate';

export function registerChat(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/chat/completions', async (req, reply) => {
    const parsed = chatRequestSchema.safeParse(req.body);
    if (!parsed.success) throw zodToApiError(parsed.error);
    const body = parsed.data;
    const { engine, scheduler } = ctx.model();
    const o = ctx.options;
    checkModel(engine, body.model);
    const maxTokens =
      body.max_completion_tokens != null
        ? maxTokensOf(o, body.max_completion_tokens, 'max_completion_tokens')
        : maxTokensOf(o, body.max_tokens);
    if (body.top_logprobs != null && body.logprobs !== true) {
      throw invalidRequest('top_logprobs', 'top_logprobs needs logprobs: true.');
    }
    const k = body.logprobs === true ? (body.top_logprobs ?? 0) : undefined;
    const n = body.n ?? 1;
    const template = engine.chatTemplate ?? DEFAULT_CHAT_TEMPLATE;
    const promptIds = encodePrompt(o, engine, renderChat(template, messagesOf(body)), 'messages');
    const stop = [...new Set([...stopsOf(body.stop), ...template.stop])];

    const id = `chatcmpl-${randomId()}`;
    const created = Math.floor(Date.now() / 1000);
    const modelId = engine.info.id;
    const sse = body.stream === true ? new SseWriter() : null;
    const chunk = (index: number, delta: object, lps: TokenLogprob[] | null, finish: string | null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: modelId,
      choices: [{ index, delta, logprobs: lps ? chatLogprobs(engine, lps) : null, finish_reason: finish }],
    });

    // the role chunk goes first (buffered until the stream starts: a request refused while queued never sends it)
    if (sse) for (let i = 0; i < n; i++) sse.event(chunk(i, { role: 'assistant', content: '' }, null, null));
    const jobs = submitChoices(
      scheduler,
      reply,
      o.timeoutMs,
      Array.from({ length: n }, (_, index) => ({ promptIds, index })),
      {
        maxTokens,
        sampling: { temperature: body.temperature ?? 1, topP: body.top_p ?? 1 },
        stop,
        logprobs: k,
        logitBias: logitBiasOf(engine, body.logit_bias),
        presencePenalty: body.presence_penalty ?? 0,
        frequencyPenalty: body.frequency_penalty ?? 0,
        trimStart: true,
      },
      body.seed,
      sse ? (i, text, lps) => sse.event(chunk(i, { content: text }, k !== undefined ? lps : null, null)) : undefined,
    );

    if (!sse) {
      const rs = await resultsOf(jobs);
      return {
        id,
        object: 'chat.completion',
        created,
        model: modelId,
        choices: rs.map((r, index) => ({
          index,
          message: { role: 'assistant', content: r.text, refusal: null },
          logprobs: k !== undefined ? chatLogprobs(engine, r.logprobs) : null,
          finish_reason: r.finishReason,
        })),
        usage: usage(rs, n),
        ...(engine.memories ? { references: referencesOf(rs) } : {}),
      };
    }

    await awaitAdmission(jobs);
    return streamChoices(
      reply,
      sse,
      jobs,
      (i, r) => {
        const rest = k !== undefined ? pendingLogprobs(jobs[i]!) : null;
        sse.event({ ...chunk(i, {}, rest, r.finishReason), ...(engine.memories ? { references: r.references } : {}) });
      },
      (rs) => {
        if (body.stream_options?.include_usage)
          sse.event({ id, object: 'chat.completion.chunk', created, model: modelId, choices: [], usage: usage(rs, n) });
      },
    );
  });
}

/** Messages as template input: developer → system, text parts joined, null content → ''. */
function messagesOf(body: ChatRequest): ChatMessage[] {
  return body.messages.map((m) => ({
    role: m.role === 'developer' ? 'system' : m.role,
    content: m.content == null ? '' : typeof m.content === 'string' ? m.content : m.content.map((p) => p.text ?? '').join(''),
  }));
}

/** The chat logprobs shape: per token its text, logprob, UTF-8 bytes and top alternatives. */
function chatLogprobs(engine: Engine, lps: TokenLogprob[]) {
  const entry = (id: number, logprob: number) => {
    const token = engine.decode([id]);
    return { token, logprob, bytes: [...new TextEncoder().encode(token)] };
  };
  return {
    content: lps.map((l) => ({ ...entry(l.id, l.logprob), top_logprobs: l.top.map((a) => entry(a.id, a.logprob)) })),
    refusal: null,
  };
}
