/**
 * Memory³ knowledge base: texts the model reads from a store, added without retraining.
 *
 *   POST   /v1/memories {text: string | string[]}   split into references (≤ 128 tokens each),
 *                                                    written by the model, stored → 201 {data: [memory]}
 *   GET    /v1/memories?offset=&limit=               a page of stored references, oldest first
 *   GET    /v1/memories/{id}                         one reference
 *   DELETE /v1/memories/{id}                         {id, object: 'memory.deleted', deleted: true}
 *
 * A memory object: {id, object: 'memory', text, tokens, created_at (s), bytes}. Writing is model
 * compute, so it waits in the scheduler's queue with the completions (429 when full, 408 past
 * --timeout-ms); the 201 is sent only once the store has made the references durable. A server
 * whose model reads no knowledge base answers 400 `no_memory_store`.
 */
import type { FastifyInstance } from 'fastify';
import type { EngineMemories, ReferenceInfo } from '../engine';
import { ApiError, invalidRequest, zodToApiError } from '../errors';
import { memoryCreateSchema, memoryListSchema } from '../schemas';
import { checkModel } from './generate';
import type { ServerContext } from '../server';

/** tokens one POST may write (each text is split into references; bounds the model compute) */
export const MAX_WRITE_TOKENS = 16_384;

export function registerMemories(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/memories', async (req, reply) => {
    const parsed = memoryCreateSchema.safeParse(req.body);
    if (!parsed.success) throw zodToApiError(parsed.error);
    const { engine, scheduler } = ctx.model();
    checkModel(engine, parsed.data.model);
    const memories = storeOf(engine.memories, engine.info.id);
    const texts = typeof parsed.data.text === 'string' ? [parsed.data.text] : parsed.data.text;
    // bounded work: refuse before the model runs (counted the way the writer will split them)
    let total = 0;
    texts.forEach((t, i) => {
      const ids = engine.encodeUpTo(t, MAX_WRITE_TOKENS - total);
      const field = texts.length === 1 && typeof parsed.data.text === 'string' ? 'text' : `text[${i}]`;
      if (ids === null) {
        throw invalidRequest(
          field,
          `The texts hold more than ${MAX_WRITE_TOKENS} tokens in all, the limit per request. Send them in several requests.`,
          'too_many_tokens',
        );
      }
      total += ids.length;
    });
    const task = scheduler.submitTask(() => texts.map((t) => memories.write(t)), Date.now() + ctx.options.timeoutMs);
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) task.cancel();
    });
    const written = await task.result;
    const stored: ReferenceInfo[] = [];
    for (const w of written) stored.push(...(await memories.store(w)));
    ctx.metrics.memoryWrites.inc(stored.length);
    reply.status(201);
    return { object: 'list', data: stored.map(memoryObject), usage: { prompt_tokens: total } };
  });

  app.get('/v1/memories', async (req) => {
    const parsed = memoryListSchema.safeParse(req.query);
    if (!parsed.success) throw zodToApiError(parsed.error);
    const { engine } = ctx.model();
    const memories = storeOf(engine.memories, engine.info.id);
    const offset = parsed.data.offset ?? 0;
    const limit = parsed.data.limit ?? 20;
    const page = memories.list(offset, limit);
    return {
      object: 'list',
      data: page.map(memoryObject),
      total: memories.size,
      offset,
      limit,
      has_more: offset + page.length < memories.size,
    };
  });

  app.get<{ Params: { id: string } }>('/v1/memories/:id', async (req) => {
    const { engine } = ctx.model();
    const memories = storeOf(engine.memories, engine.info.id);
    const id = parseId(req.params.id);
    const info = memories.get(id);
    if (!info) throw notFound(id);
    return memoryObject(info);
  });

  app.delete<{ Params: { id: string } }>('/v1/memories/:id', async (req) => {
    const { engine } = ctx.model();
    const memories = storeOf(engine.memories, engine.info.id);
    const id = parseId(req.params.id);
    if (!(await memories.delete(id))) throw notFound(id);
    ctx.metrics.memoryDeletes.inc();
    return { id, object: 'memory.deleted', deleted: true };
  });
}

export function memoryObject(r: ReferenceInfo) {
  return {
    id: r.id,
    object: 'memory' as const,
    text: r.text,
    tokens: r.tokens,
    created_at: Math.floor(r.createdAt / 1000),
    bytes: r.bytes,
  };
}

function storeOf(m: EngineMemories | undefined, modelId: string): EngineMemories {
  if (!m) {
    throw invalidRequest(
      null,
      `The model '${modelId}' reads no knowledge base; start the server with --memory-store DIR to add texts it can read.`,
      'no_memory_store',
    );
  }
  return m;
}

function parseId(raw: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw invalidRequest('id', `The memory id must be a positive integer, got '${raw.slice(0, 40)}'.`, 'invalid_id');
  }
  return Number(raw);
}

function notFound(id: number): ApiError {
  return new ApiError(404, `No memory has the id ${id}; GET /v1/memories lists them.`, 'invalid_request_error', 'id', 'memory_not_found');
}
