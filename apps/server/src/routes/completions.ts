/**
 * POST /v1/completions, OpenAI-compatible, plain or streamed (server-sent events).
 *
 * Stream: one `data: {chunk}` event per piece of final text, then a chunk with the
 * finish_reason (and, with stream_options.include_usage, a chunk with usage), then
 * `data: [DONE]`. Headers go out when the request gets a decoding slot, so a request that
 * is refused or times out while queued still gets a proper status code.
 *
 * Timeouts (--timeout-ms, counted from arrival): before any text was sent the answer is
 * 408 with an error object; a stream already under way gets a final
 * `data: {"error": {..., "code": "timeout"}}` event and then `data: [DONE]`.
 * A client that disconnects cancels its generation; its KV cache is freed at the next step.
 *
 * With a Memory³ knowledge base (--memory-store) the response, and the stream's finish chunk,
 * carry `references`: the ids of the stored references the completion read.
 */
import { randomInt } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiError, invalidRequest, zodToApiError } from '../errors';
import { type JobResult, shuttingDown, timedOut } from '../scheduler';
import { type CompletionRequest, completionRequestSchema } from '../schemas';
import type { ServerContext } from '../server';

/** OpenAI's default when max_tokens is absent. */
export const DEFAULT_MAX_TOKENS = 16;

export function registerCompletions(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/completions', async (req, reply) => {
    const parsed = completionRequestSchema.safeParse(req.body);
    if (!parsed.success) throw zodToApiError(parsed.error);
    const body = parsed.data;
    const { engine, scheduler } = ctx.model();
    const o = ctx.options;
    const modelId = engine.info.id;
    if (body.model != null && body.model !== modelId) {
      throw new ApiError(
        404,
        `The model '${body.model}' does not exist; this server serves '${modelId}'.`,
        'invalid_request_error',
        'model',
        'model_not_found',
      );
    }
    const maxTokens = body.max_tokens ?? Math.min(DEFAULT_MAX_TOKENS, o.maxTokens);
    if (maxTokens > o.maxTokens) {
      throw invalidRequest(
        'max_tokens',
        `max_tokens is ${maxTokens}; this server allows at most ${o.maxTokens} (--max-tokens).`,
        'max_tokens_too_large',
      );
    }
    const prompt = typeof body.prompt === 'string' ? body.prompt : body.prompt[0]!;
    const promptLimit = Math.min(o.maxPromptTokens, engine.info.maxSeqLen);
    // bounded: a prompt over the limit is refused without tokenizing all of it
    let promptIds = engine.encodeUpTo(prompt, promptLimit);
    if (promptIds === null) {
      throw invalidRequest(
        'prompt',
        `The prompt is more than ${promptLimit} tokens, the limit (${o.maxPromptTokens < engine.info.maxSeqLen ? '--max-prompt-tokens' : "the model's context length"}). Shorten it.`,
        'context_length_exceeded',
      );
    }
    // an empty prompt starts from the beginning-of-sequence token, as the library's generate does
    if (promptIds.length === 0) promptIds = [engine.bosId];

    const id = `cmpl-${randomId()}`;
    const created = Math.floor(Date.now() / 1000);
    const stream = body.stream === true;
    const sse = stream ? new SseWriter() : null;
    const job = scheduler.submit(
      {
        promptIds,
        maxTokens,
        sampling: { temperature: body.temperature ?? 1, topP: body.top_p ?? 1 },
        stop: body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop,
        seed: body.seed ?? randomInt(2 ** 31),
        deadline: Date.now() + o.timeoutMs,
      },
      (delta) => sse?.event(chunk(id, created, modelId, delta, null)),
    );
    // a client that goes away cancels its generation
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) job.cancel();
    });

    if (!sse) {
      const r = await job.result;
      if (r.outcome !== 'finished') throw failure(r);
      return {
        id,
        object: 'text_completion',
        created,
        model: modelId,
        choices: [{ text: r.text, index: 0, logprobs: null, finish_reason: r.finishReason }],
        usage: usage(r),
        // Memory³: the stored references the completion read (ids of GET /v1/memories)
        ...(engine.memories ? { references: r.references } : {}),
      };
    }

    // stream: wait until the job has a slot (or ended while queued)
    await Promise.race([job.admitted, job.result]);
    if (!job.started) {
      const r = await job.result;
      throw failure(r);
    }
    job.result.then((r) => {
      if (r.outcome === 'finished') {
        sse.event({ ...chunk(id, created, modelId, '', r.finishReason), ...(engine.memories ? { references: r.references } : {}) });
        if (body.stream_options?.include_usage) sse.event({ ...chunk(id, created, modelId, '', null), choices: [], usage: usage(r) });
      } else if (r.outcome !== 'cancelled') {
        sse.event(failure(r).toJSON());
      }
      sse.done();
    });
    return sendSse(reply, sse);
  });
}

function chunk(id: string, created: number, model: string, text: string, finish: string | null) {
  return {
    id,
    object: 'text_completion',
    created,
    model,
    choices: [{ text, index: 0, logprobs: null, finish_reason: finish }],
  };
}

function usage(r: JobResult) {
  return { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens };
}

/** A job that did not finish normally, as an API error. */
function failure(r: JobResult): ApiError {
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

function randomId(): string {
  return randomInt(2 ** 47).toString(36) + randomInt(2 ** 47).toString(36);
}

/** Server-sent events over a PassThrough that Fastify pipes to the socket. */
class SseWriter {
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

function sendSse(reply: FastifyReply, sse: SseWriter): FastifyReply {
  reply.raw.on('close', () => sse.done());
  return reply
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache')
    .header('x-accel-buffering', 'no')
    .send(sse.stream);
}
