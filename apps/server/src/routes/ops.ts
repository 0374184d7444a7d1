/**
 * Operations routes: GET /healthz, /readyz, /metrics and the model list, GET /v1/models.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors';
import type { ServerContext } from '../server';

export function registerOps(app: FastifyInstance, ctx: ServerContext): void {
  // the process is up (liveness)
  // open routes: no API key, served during shutdown (everything else needs the key)
  const open = { config: { public: true } };
  app.get('/healthz', open, async () => ({ status: 'ok' }));

  // the model is loaded and the server takes requests (readiness)
  app.get('/readyz', open, async (_req, reply) => {
    if (ctx.ready) return { status: 'ready' };
    reply.status(503);
    return { status: ctx.closing ? 'shutting_down' : 'loading' };
  });

  app.get('/metrics', open, async (_req, reply) => {
    reply.type(ctx.metrics.contentType);
    return await ctx.metrics.render();
  });

  app.get('/v1/models', async () => ({ object: 'list', data: [modelCard(ctx)] }));

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    const card = modelCard(ctx);
    if (req.params.id !== card.id) {
      throw new ApiError(
        404,
        `The model '${req.params.id}' does not exist; this server serves '${card.id}'.`,
        'invalid_request_error',
        'model',
        'model_not_found',
      );
    }
    return card;
  });
}

const created = Math.floor(Date.now() / 1000);

export function modelCard(ctx: ServerContext) {
  const { engine } = ctx.model();
  const i = engine.info;
  return {
    id: i.id,
    object: 'model' as const,
    created,
    owned_by: 'mnemo',
    vocab_size: i.vocabSize,
    max_seq_len: i.maxSeqLen,
    memory_blocks: i.memoryBlocks,
    dense_params: i.denseParams,
    memory_params: i.memoryParams,
    flops_per_token: i.flopsPerToken,
  };
}
