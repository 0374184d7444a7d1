/**
 * What /v1/completions and /v1/chat/completions share: request checks that need the model
 * (model id, max_tokens, prompt length, logit_bias ids), submitting one scheduler job per choice
 * (`n` choices per prompt, each its own KV cache, batched by the scheduler like any other
 * requests), waiting for them, and the server-sent-events writer.
 *
 * Choice i of a request with `seed` s samples with seed s + i, so choice 0 is what the same
 * request with n = 1 returns. A client that disconnects cancels every choice.
 */
import { randomInt } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { Engine } from '../engine';
import { ApiError, invalidRequest } from '../errors';
import type { TokenLogprob } from '../logits';
import type { ServerOptions } from '../options';
import { type Job, type JobRequest, type JobResult, type Scheduler, shuttingDown, timedOut } from '../scheduler';

/** OpenAI's default when max_tokens is absent. */
export const DEFAULT_MAX_TOKENS = 16;

export function checkModel(engine: Engine, model: string | undefined): void {
  const id = engine.info.id;
  if (model != null && model !== id) {
    throw new ApiError(
      404,
      `The model '${model}' does not exist; this server serves '${id}'.`,
      'invalid_request_error',
      'model',
      'model_not_found',
    );
  }
}

export function maxTokensOf(o: ServerOptions, asked: number | null | undefined, param = 'max_tokens'): number {
  const maxTokens = asked ?? Math.min(DEFAULT_MAX_TOKENS, o.maxTokens);
  if (maxTokens > o.maxTokens) {
    throw invalidRequest(
      param,
      `${param} is ${maxTokens}; this server allows at most ${o.maxTokens} (--max-tokens).`,
      'max_tokens_too_large',
    );
  }
  return maxTokens;
}

/** The prompt limit in tokens and which setting imposes it. */
export function promptLimit(o: ServerOptions, engine: Engine): { limit: number; why: string } {
  const limit = Math.min(o.maxPromptTokens, engine.info.maxSeqLen);
  return { limit, why: o.maxPromptTokens < engine.info.maxSeqLen ? '--max-prompt-tokens' : "the model's context length" };
}

/** Encode a text prompt with the work bounded by the limit; an empty one starts from BOS. */
export function encodePrompt(o: ServerOptions, engine: Engine, text: string, param: string): number[] {
  const { limit, why } = promptLimit(o, engine);
  const ids = engine.encodeUpTo(text, limit);
  if (ids === null) {
    throw invalidRequest(
      param,
      `The ${param === 'messages' ? 'conversation' : 'prompt'} is more than ${limit} tokens, the limit (${why}). Shorten it.`,
      'context_length_exceeded',
    );
  }
  // an empty prompt starts from the beginning-of-sequence token, as the library's generate does
  return ids.length === 0 ? [engine.bosId] : ids;
}

/** A token-array prompt: every id below the vocabulary, within the prompt limit. */
export function checkTokenPrompt(o: ServerOptions, engine: Engine, ids: number[], param: string): number[] {
  const { limit, why } = promptLimit(o, engine);
  if (ids.length > limit)
    throw invalidRequest(
      param,
      `The prompt is ${ids.length} tokens; the limit is ${limit} (${why}). Shorten it.`,
      'context_length_exceeded',
    );
  const V = engine.info.vocabSize;
  const bad = ids.findIndex((t) => t >= V);
  if (bad >= 0)
    throw invalidRequest(`${param}.${bad}`, `token id ${ids[bad]} is not in the vocabulary (ids are 0..${V - 1}).`, 'invalid_token_id');
  return ids;
}

/** logit_bias {"<token id>": bias} → a map; a key that is not a token id of the model is refused by name. */
export function logitBiasOf(engine: Engine, bias: Record<string, number> | null | undefined): Map<number, number> | undefined {
  if (!bias) return undefined;
  const V = engine.info.vocabSize;
  const out = new Map<number, number>();
  for (const [key, b] of Object.entries(bias)) {
    const id = /^(0|[1-9]\d{0,9})$/.test(key) ? Number(key) : Number.NaN;
    if (!(id < V)) {
      throw invalidRequest(
        `logit_bias.${key.slice(0, 40)}`,
        `logit_bias key '${key.slice(0, 40)}' is not a token id of this model (give decimal ids 0..${V - 1}).`,
        'invalid_token_id',
      );
    }
    out.set(id, b);
  }
  return out;
}

export function stopsOf(stop: string | string[] | null | undefined): string[] {
  return stop == null ? [] : typeof stop === 'string' ? [stop] : stop;
}

/** One choice to generate: its prompt and its index in the response. */
export interface ChoicePlan {
  promptIds: number[];
  index: number;
}

export type ChoiceParams = Omit<JobRequest, 'promptIds' | 'seed' | 'deadline'>;

/**
 * Submit one job per choice. `onDelta(i, text, logprobs)` gets the final text of choice i as it
 * grows, with the logprobs of the tokens sampled since the previous call (when asked for).
 * A 429 for one choice cancels those already queued.
 */
export function submitChoices(
  scheduler: Scheduler,
  reply: FastifyReply,
  timeoutMs: number,
  plans: ChoicePlan[],
  params: ChoiceParams,
  seed: number | null | undefined,
  onDelta?: (i: number, text: string, logprobs: TokenLogprob[]) => void,
): Job[] {
  const jobs: Job[] = [];
  const deadline = Date.now() + timeoutMs;
  const base = seed ?? randomInt(2 ** 31);
  try {
    for (let i = 0; i < plans.length; i++) {
      const job: Job = scheduler.submit(
        { ...params, promptIds: plans[i]!.promptIds, seed: base + i, deadline },
        onDelta ? (text) => onDelta(i, text, pendingLogprobs(job)) : undefined,
      );
      jobs.push(job);
    }
  } catch (e) {
    for (const j of jobs) j.cancel();
    throw e;
  }
  // a client that goes away cancels its generations
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) for (const j of jobs) j.cancel();
  });
  // one choice failing (timeout, error) stops the others: the request fails as a whole
  for (const j of jobs) {
    j.result.then((r) => {
      if (r.outcome !== 'finished') for (const o of jobs) o.cancel();
    });
  }
  return jobs;
}

const sent = new WeakMap<Job, number>();

/** The logprobs of `job`'s tokens not yet handed out (streaming); the token list so far. */
export function pendingLogprobs(job: Job): TokenLogprob[] {
  const from = sent.get(job) ?? 0;
  const to = Math.min(job.completion.tokens.length, job.logprobs.length);
  sent.set(job, to);
  return job.logprobs.slice(from, to);
}

/** Every choice's result; the first failure (a timeout rather than the cancellations it caused) as an ApiError. */
export async function resultsOf(jobs: Job[]): Promise<JobResult[]> {
  const rs = await Promise.all(jobs.map((j) => j.result));
  const bad = rs.find((r) => r.outcome !== 'finished' && r.outcome !== 'cancelled') ?? rs.find((r) => r.outcome !== 'finished');
  if (bad) throw failure(bad);
  return rs;
}

/** Stream: wait until every choice has a slot (or one ended while queued: then its error, as a status code). */
export async function awaitAdmission(jobs: Job[]): Promise<void> {
  await Promise.all(jobs.map((j) => Promise.race([j.admitted, j.result])));
  if (jobs.every((j) => j.started)) return;
  for (const j of jobs) j.cancel();
  const rs = await Promise.all(jobs.map((j) => j.result));
  throw failure(
    rs.find((r) => r.outcome !== 'cancelled' && r.outcome !== 'finished') ?? rs.find((r) => r.outcome !== 'finished') ?? rs[0]!,
  );
}

/** usage over choices; each prompt counts once however many choices it has (`n`). */
export function usage(rs: JobResult[], n: number) {
  let prompt = 0;
  let completion = 0;
  rs.forEach((r, i) => {
    if (i % n === 0) prompt += r.promptTokens;
    completion += r.completionTokens;
  });
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** A job that did not finish normally, as an API error. */
export function failure(r: JobResult): ApiError {
  switch (r.outcome) {
    case 'timeout':
      return timedOut();
    case 'shutdown':
      return shuttingDown();
    case 'cancelled':
      return new ApiError(499, 'The request was cancelled.', 'invalid_request_error', null, 'cancelled');
    default:
      return new ApiError(
        500,
        `Generation failed: ${r.error?.message ?? 'unknown error'}. The server is still up; retry.`,
        'server_error',
        null,
        'generation_failed',
      );
  }
}

export function randomId(): string {
  return randomInt(2 ** 47).toString(36) + randomInt(2 ** 47).toString(36);
}

/** Memory³: the stored references any choice read, in first-read order. */
export function referencesOf(rs: JobResult[]): number[] {
  return [...new Set(rs.flatMap((r) => r.references))];
}

/** Server-sent events over a PassThrough that Fastify pipes to the socket. */
export class SseWriter {
  readonly stream = new PassThrough();
  private ended = false;

  event(data: unknown): void {
    if (this.ended) return;
    this.stream.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  done(): void {
    if (this.ended) return;
    this.stream.end('data: [DONE]\n\n');
    this.ended = true;
  }
}

/**
 * Stream the choices: `finish(i, r)` once choice i ends, then `last(rs)` (usage) when all did,
 * or an error event when one failed; `data: [DONE]` always closes the stream.
 */
export function streamChoices(
  reply: FastifyReply,
  sse: SseWriter,
  jobs: Job[],
  finish: (i: number, r: JobResult) => void,
  last: (rs: JobResult[]) => void,
): FastifyReply {
  jobs.forEach((j, i) =>
    j.result.then((r) => {
      if (r.outcome === 'finished') finish(i, r);
    }),
  );
  Promise.all(jobs.map((j) => j.result)).then((rs) => {
    const bad = rs.find((r) => r.outcome !== 'finished' && r.outcome !== 'cancelled');
    if (bad) sse.event(failure(bad).toJSON());
    else if (rs.every((r) => r.outcome === 'finished')) last(rs);
    sse.done();
  });
  reply.raw.on('close', () => sse.done());
  return reply
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache')
    .header('x-accel-buffering', 'no')
    .send(sse.stream);
}
