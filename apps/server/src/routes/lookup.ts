/**
 * POST /v1/memory/lookup {text, top_k?}: which memory slots each token reads.
 *
 * Response: the tokens (id + decoded piece) and, per memory block, per token, per head, the
 * slots read and their pooling weights, best first:
 *
 *   {object: 'memory.lookup', model, tokens: [{position, id, text}],
 *    layers: [{block, heads, top_k, reads}],   reads[t][h] = {slots: [k], weights: [k]}
 *    references: [{start, end, ids}],          with a Memory³ knowledge base: what each 64-token chunk reads
 *    usage: {prompt_tokens}}
 *
 * A lookup is model compute like a prefill, so it waits in the scheduler's queue with the
 * completions: 429 when the queue is full, 408 past --timeout-ms while it waits, and the text is
 * tokenized with the work bounded by the prompt limit before it is queued.
 */
import type { FastifyInstance } from 'fastify';
import type { Engine } from '../engine';
import { ApiError, invalidRequest, zodToApiError } from '../errors';
import { lookupRequestSchema } from '../schemas';
import type { ServerContext } from '../server';

export function registerLookup(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/memory/lookup', async (req, reply) => {
    const parsed = lookupRequestSchema.safeParse(req.body);
    if (!parsed.success) throw zodToApiError(parsed.error);
    const body = parsed.data;
    const { engine, scheduler } = ctx.model();
    const info = engine.info;
    if (body.model != null && body.model !== info.id) {
      throw new ApiError(
        404,
        `The model '${body.model}' does not exist; this server serves '${info.id}'.`,
        'invalid_request_error',
        'model',
        'model_not_found',
      );
    }
    if (info.memoryBlocks.length === 0 && !engine.memories) {
      throw invalidRequest(
        null,
        `The model '${info.id}' has no memory layers (all its FFN blocks are dense or MoE) and reads no knowledge base; there is nothing to look up.`,
        'no_memory_layers',
      );
    }
    const limit = Math.min(ctx.options.maxPromptTokens, info.maxSeqLen);
    const ids = engine.encodeUpTo(body.text, limit);
    if (ids === null) {
      throw invalidRequest('text', `The text is more than ${limit} tokens, the limit. Shorten it.`, 'context_length_exceeded');
    }
    const task = scheduler.submitTask(() => respond(engine, ids, body.top_k), Date.now() + ctx.options.timeoutMs);
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) task.cancel();
    });
    const out = await task.result;
    ctx.metrics.memoryLookups.inc();
    return out;
  });
}

function respond(engine: Engine, ids: number[], topK: number | undefined) {
  const info = engine.info;
  const reads = engine.lookup(ids);
  const T = ids.length;
  return {
    object: 'memory.lookup',
    model: info.id,
    tokens: ids.map((id, position) => ({ position, id, text: engine.decode([id]) })),
    layers: reads.map((r) => {
      const k = Math.min(topK ?? r.topK, r.topK);
      const perToken = [];
      for (let t = 0; t < T; t++) {
        const heads = [];
        for (let h = 0; h < r.heads; h++) {
          const off = (t * r.heads + h) * r.topK;
          const order = Array.from({ length: r.topK }, (_, j) => j).sort((a, b) => r.weights[off + b]! - r.weights[off + a]!);
          const best = order.slice(0, k);
          heads.push({ slots: best.map((j) => r.ids[off + j]!), weights: best.map((j) => r.weights[off + j]!) });
        }
        perToken.push(heads);
      }
      return { block: r.block, heads: r.heads, top_k: k, reads: perToken };
    }),
    // Memory³: per 64-token chunk, the stored references it reads
    ...(engine.memories ? { references: engine.memories.references(ids).map((c) => ({ start: c.start, end: c.end, ids: c.ids })) } : {}),
    usage: { prompt_tokens: T },
  };
}
