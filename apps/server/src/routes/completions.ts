/**
 * POST /v1/completions, OpenAI-compatible, plain or streamed (server-sent events).
 *
 * `prompt`: a string, up to 16 strings, an array of token ids, or up to 16 such arrays; `n`
 * choices per prompt (choice index = prompt · n + j). `logprobs: k` reports each token's logprob
 * and its k most likely alternatives (the legacy `{tokens, token_logprobs, top_logprobs,
 * text_offset}` shape); `echo` puts the prompt in front of the text (with `logprobs`, the prompt
 * tokens are scored too: its first token has null; `max_tokens: 0` with echo scores the prompt
 * only). Penalties and logit_bias adjust the logits before sampling (logits.ts).
 *
 * Stream: one `data: {chunk}` event per piece of final text and choice, then a chunk with each
 * choice's finish_reason (and, with stream_options.include_usage, a chunk with usage), then
 * `data: [DONE]`. Headers go out when every choice has a decoding slot, so a request that is
 * refused or times out while queued still gets a proper status code.
 *
 * Timeouts (--timeout-ms, counted from arrival): before any text was sent the answer is
 * 408 with an error object; a stream already under way gets a final
 * `data: {"error": {..., "code": "timeout"}}` event and then `data: [DONE]`.
 * A client that disconnects cancels its generation; its KV cache is freed at the next step.
 *
 * With a Memory³ knowledge base (--memory-store) the response, and the stream's finish chunk,
 * carry `references`: the ids of the stored references the completion read.
 */
import type { FastifyInstance } from 'fastify';
import type { Engine } from '../engine';
import { invalidRequest, zodToApiError } from '../errors';
import type { TokenLogprob } from '../logits';
import type { JobResult } from '../scheduler';
import { completionRequestSchema } from '../schemas';
import type { ServerContext } from '../server';
import {
  type ChoicePlan,
  SseWriter,
  awaitAdmission,
  checkModel,
  checkTokenPrompt,
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

export { DEFAULT_MAX_TOKENS } from './generate';

export function registerCompletions(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/completions', async (req, reply) => {
    const parsed = completionRequestSchema.safeParse(req.body);
    if (!parsed.success) throw zodToApiError(parsed.error);
    const body = parsed.data;
    const { engine, scheduler } = ctx.model();
    const o = ctx.options;
    checkModel(engine, body.model);
    const maxTokens = maxTokensOf(o, body.max_tokens);
    const echo = body.echo === true;
    if (maxTokens === 0 && !echo) {
      throw invalidRequest('max_tokens', 'max_tokens 0 generates nothing; ask for at least 1 (0 is only for echo: scoring the prompt).');
    }
    const k = body.logprobs ?? undefined;
    const n = body.n ?? 1;

    // the prompts, as token ids (a text prompt is tokenized with the work bounded by the limit)
    const p = body.prompt;
    const prompts: Array<{ ids: number[]; text: string }> =
      typeof p === 'string'
        ? [{ ids: encodePrompt(o, engine, p, 'prompt'), text: p }]
        : p.every((x) => typeof x === 'string')
          ? (p as string[]).map((s, i) => ({ ids: encodePrompt(o, engine, s, p.length > 1 ? `prompt.${i}` : 'prompt'), text: s }))
          : p.every((x) => typeof x === 'number')
            ? [tokenPrompt(ctx, engine, p as number[], 'prompt')]
            : (p as number[][]).map((ids, i) => tokenPrompt(ctx, engine, ids, `prompt.${i}`));
    const plans: ChoicePlan[] = prompts.flatMap((pr, i) => Array.from({ length: n }, (_, j) => ({ promptIds: pr.ids, index: i * n + j })));
    const promptOf = (choice: number) => prompts[Math.floor(choice / n)]!;

    const id = `cmpl-${randomId()}`;
    const created = Math.floor(Date.now() / 1000);
    const modelId = engine.info.id;
    const sse = body.stream === true ? new SseWriter() : null;
    // per choice: characters of text sent so far (text_offset of streamed logprobs)
    const offsets = plans.map(() => 0);
    const chunk = (index: number, text: string, lps: Array<TokenLogprob | null> | null, ids: number[], finish: string | null) => ({
      id,
      object: 'text_completion',
      created,
      model: modelId,
      choices: [{ text, index, logprobs: lps ? legacyLogprobs(engine, ids, lps, offsets[index]!) : null, finish_reason: finish }],
    });
    // echo: the prompt goes first (with its scores, computed when it was prefilled), then the completion
    const echoed = plans.map(() => !echo);
    const sendEcho = (i: number) => {
      if (echoed[i] || !sse) return;
      echoed[i] = true;
      const pr = promptOf(i);
      sse.event(chunk(i, pr.text, k === undefined ? null : jobs[i]!.promptLogprobs, pr.ids, null));
      offsets[i] = pr.text.length;
    };
    const emit = (index: number, text: string, lps: TokenLogprob[] | null) => {
      sendEcho(index);
      sse?.event(chunk(index, text, lps, lps?.map((l) => l.id) ?? [], null));
      offsets[index] = offsets[index]! + text.length;
    };

    const jobs = submitChoices(
      scheduler,
      reply,
      o.timeoutMs,
      plans,
      {
        maxTokens,
        sampling: { temperature: body.temperature ?? 1, topP: body.top_p ?? 1 },
        stop: stopsOf(body.stop),
        logprobs: k,
        promptLogprobs: echo && k !== undefined,
        logitBias: logitBiasOf(engine, body.logit_bias),
        presencePenalty: body.presence_penalty ?? 0,
        frequencyPenalty: body.frequency_penalty ?? 0,
      },
      body.seed,
      sse ? (i, text, lps) => emit(i, text, k !== undefined ? lps : null) : undefined,
    );

    if (!sse) {
      const rs = await resultsOf(jobs);
      return {
        id,
        object: 'text_completion',
        created,
        model: modelId,
        choices: rs.map((r, i) => {
          const pr = promptOf(i);
          const lps = k === undefined ? null : [...(echo ? r.promptLogprobs : []), ...r.logprobs];
          const ids = [...(echo ? pr.ids : []), ...r.tokens];
          return {
            text: (echo ? pr.text : '') + r.text,
            index: i,
            logprobs: lps ? legacyLogprobs(engine, ids, lps, 0) : null,
            finish_reason: r.finishReason,
          };
        }),
        usage: usage(rs, n),
        // Memory³: the stored references the completion read (ids of GET /v1/memories)
        ...(engine.memories ? { references: referencesOf(rs) } : {}),
      };
    }

    await awaitAdmission(jobs);
    return streamChoices(
      reply,
      sse,
      jobs,
      (i, r: JobResult) => {
        sendEcho(i);
        const rest = k !== undefined ? pendingLogprobs(jobs[i]!) : null;
        sse.event({
          ...chunk(i, '', rest, rest?.map((l) => l.id) ?? [], r.finishReason),
          ...(engine.memories ? { references: r.references } : {}),
        });
      },
      (rs) => {
        if (body.stream_options?.include_usage)
          sse.event({ id, object: 'text_completion', created, model: modelId, choices: [], usage: usage(rs, n) });
      },
    );
  });
}

function tokenPrompt(ctx: ServerContext, engine: Engine, ids: number[], param: string): { ids: number[]; text: string } {
  return { ids: checkTokenPrompt(ctx.options, engine, ids, param), text: engine.decode(ids) };
}

/** The legacy completions logprobs: token texts, their logprobs, top alternatives by text, character offsets. */
function legacyLogprobs(engine: Engine, ids: number[], lps: Array<TokenLogprob | null>, offset: number) {
  const tokens = ids.map((t) => engine.decode([t]));
  const text_offset: number[] = [];
  let at = offset;
  for (const t of tokens) {
    text_offset.push(at);
    at += t.length;
  }
  return {
    tokens,
    token_logprobs: lps.map((l) => l?.logprob ?? null),
    top_logprobs: lps.map((l) => (l ? Object.fromEntries(l.top.map((a) => [engine.decode([a.id]), a.logprob])) : null)),
    text_offset,
  };
}
