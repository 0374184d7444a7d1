/**
 * MnemoServer: the Fastify app, its routes, and the life cycle around one Engine.
 *
 *   new MnemoServer(options) ── listen() ── setEngine(engine) ── ... ── shutdown()
 *
 * The server listens before the model is loaded: /healthz answers 200 at once, /readyz and
 * /v1/* answer 503 until setEngine(). Every error leaves in the OpenAI error shape (errors.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Engine } from './engine';
import { ApiError } from './errors';
import { ServerMetrics } from './metrics';
import { type ServerOptions, type ServerOptionsInput, parseServerOptions } from './options';
import { registerCompletions } from './routes/completions';
import { registerLookup } from './routes/lookup';
import { registerOps } from './routes/ops';
import { Scheduler } from './scheduler';

export interface MnemoServerInit {
  /** fastify/pino logger options; default off */
  logger?: boolean | { level: string };
}

/** What the routes share. */
export interface ServerContext {
  readonly options: ServerOptions;
  readonly metrics: ServerMetrics;
  readonly ready: boolean;
  readonly closing: boolean;
  /** the engine and scheduler, or a 503 ApiError while the model is loading */
  model(): { engine: Engine; scheduler: Scheduler };
}

export class MnemoServer implements ServerContext {
  readonly app: FastifyInstance;
  readonly options: ServerOptions;
  readonly metrics = new ServerMetrics();
  engine: Engine | null = null;
  scheduler: Scheduler | null = null;
  closing = false;
  private closed: Promise<void> | null = null;
  /** HTTP responses not yet closed */
  private inFlight = 0;
  private readonly apiKeyDigest: Buffer | null;

  constructor(options: ServerOptionsInput = {}, init: MnemoServerInit = {}) {
    this.options = parseServerOptions(options);
    this.apiKeyDigest = this.options.apiKey ? sha256(this.options.apiKey) : null;
    this.app = Fastify({
      logger: init.logger ?? false,
      bodyLimit: this.options.bodyLimit,
      return503OnClosing: false, // our own 503 in the OpenAI shape (onRequest below)
    });
    this.metrics.bind({
      queue: () => this.scheduler?.queueDepth ?? 0,
      active: () => this.scheduler?.activeCount ?? 0,
      tensors: () => this.engine?.numTensors() ?? 0,
    });
    this.install();
  }

  get ready(): boolean {
    return this.engine !== null && !this.closing;
  }

  /** Attach the loaded model: /readyz turns 200 and /v1/* start serving. */
  setEngine(engine: Engine): void {
    if (this.engine) throw new Error('MnemoServer.setEngine: an engine is already attached');
    this.engine = engine;
    const o = this.options;
    this.scheduler = new Scheduler(
      engine,
      { maxBatch: o.maxBatch, maxQueue: o.maxQueue, batching: o.batching },
      {
        tokens: (n) => this.metrics.tokensGenerated.inc(n),
        prefill: (n) => this.metrics.promptTokens.inc(n),
        batch: (n) => this.metrics.decodeBatchSize.observe(n),
        finished: (r) =>
          this.metrics.completions.inc(1, { outcome: r.outcome, finish_reason: r.finishReason ?? 'none' }),
      },
    );
  }

  model(): { engine: Engine; scheduler: Scheduler } {
    if (!this.engine || !this.scheduler) {
      throw new ApiError(503, 'The model is still loading; retry shortly (GET /readyz turns 200 when ready).', 'service_unavailable', null, 'model_loading', { 'retry-after': '1' });
    }
    return { engine: this.engine, scheduler: this.scheduler };
  }

  /** Listen; returns the bound address, e.g. http://127.0.0.1:8080. */
  async listen(): Promise<string> {
    return this.app.listen({ host: this.options.host, port: this.options.port });
  }

  get port(): number {
    const a = this.app.server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  /**
   * Graceful stop: refuse new requests (503), let in-flight ones finish (streams included),
   * cut off what is still running after `shutdownGraceMs`, free the model.
   */
  shutdown(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    this.closed = (async () => {
      let cutOff = false;
      const grace = setTimeout(() => {
        cutOff = true;
        this.scheduler?.cancelAll();
      }, this.options.shutdownGraceMs);
      grace.unref();
      const closing = this.app.close(); // no new connections; idle keep-alive ones are closed
      await this.scheduler?.idle();
      // every response written: what is left are sockets without a request (a client's
      // spare keep-alive connection), which would otherwise hold the exit up
      while (this.inFlight > 0 && !cutOff) await new Promise((r) => setTimeout(r, 10));
      this.app.server.closeAllConnections();
      await closing;
      clearTimeout(grace);
      this.engine?.dispose();
    })();
    return this.closed;
  }

  private install(): void {
    const app = this.app;

    app.addHook('onRequest', async (req, reply) => {
      this.inFlight++;
      reply.raw.once('close', () => this.inFlight--);
      if (this.closing && req.url.startsWith('/v1/')) {
        reply.header('connection', 'close');
        throw new ApiError(503, 'The server is shutting down; retry against another instance.', 'service_unavailable', null, 'shutting_down');
      }
      if (this.apiKeyDigest && req.url.startsWith('/v1/')) this.authenticate(req);
    });

    app.addHook('onResponse', async (req, reply) => {
      if (reply.statusCode === 429) this.metrics.queueRejections.inc();
      this.metrics.requestDuration.observe(reply.elapsedTime / 1000, {
        method: req.method,
        route: req.routeOptions.url ?? 'unmatched',
        status: String(reply.statusCode),
      });
    });

    app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
      const api = toApiError(err);
      if (api.status >= 500 && api.code === 'internal_error') req.log.error(err);
      this.send(reply, api);
    });

    app.setNotFoundHandler((req, reply) => {
      this.send(
        reply,
        new ApiError(404, `Unknown route ${req.method} ${req.url.split('?')[0]}. Routes: POST /v1/completions, GET /v1/models, POST /v1/memory/lookup, GET /healthz, GET /readyz, GET /metrics.`, 'invalid_request_error', null, 'unknown_url'),
      );
    });

    // JSON only: a text/plain body is 415, not a string that fails validation
    app.removeContentTypeParser('text/plain');

    registerOps(app, this);
    registerCompletions(app, this);
    registerLookup(app, this);
  }

  private send(reply: FastifyReply, err: ApiError): void {
    for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
    reply.status(err.status).type('application/json').send(err.toJSON());
  }

  private authenticate(req: FastifyRequest): void {
    const h = req.headers.authorization;
    const m = typeof h === 'string' ? /^Bearer\s+(.+)$/i.exec(h.trim()) : null;
    const unauthorized = (msg: string) =>
      new ApiError(401, msg, 'invalid_request_error', null, 'invalid_api_key', { 'www-authenticate': 'Bearer' });
    if (!m) throw unauthorized('Missing API key: send "Authorization: Bearer <key>" (the key given by --api-key or MNEMO_API_KEY).');
    if (!timingSafeEqual(sha256(m[1]!), this.apiKeyDigest!)) throw unauthorized('Incorrect API key provided.');
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Fastify's own errors (body parsing, limits) → the OpenAI shape. */
export function toApiError(err: FastifyError | ApiError | Error): ApiError {
  if (err instanceof ApiError) return err;
  const code = (err as FastifyError).code;
  const status = (err as FastifyError).statusCode;
  switch (code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(400, `The body is not valid JSON (${err.message}). Send a JSON object.`, 'invalid_request_error', null, 'invalid_json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'The body is empty; send a JSON object.', 'invalid_request_error', null, 'invalid_json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, `The request body is larger than the limit (--body-limit). Send a shorter prompt.`, 'invalid_request_error', null, 'request_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'Unsupported Content-Type; send "Content-Type: application/json".', 'invalid_request_error', null, 'unsupported_media_type');
  }
  if (err instanceof SyntaxError && status === 400) {
    return new ApiError(400, `The body is not valid JSON (${err.message}).`, 'invalid_request_error', null, 'invalid_json');
  }
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new ApiError(status, err.message, 'invalid_request_error', null, code ?? null);
  }
  return new ApiError(500, 'Internal server error; the request failed but the server is still up.', 'server_error', null, 'internal_error');
}
