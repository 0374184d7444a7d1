/**
 * MnemoServer: the Fastify app, its routes, and the life cycle around one Engine.
 *
 *   new MnemoServer(options) ── listen() ── setEngine(engine) ── ... ── shutdown()
 *
 * The server listens before the model is loaded: /healthz answers 200 at once, /readyz and
 * /v1/* answer 503 until setEngine(). Every error leaves in the OpenAI error shape (errors.ts),
 * those of the HTTP parser (431, 408, malformed requests) and the router (bad URL, 414) included.
 *
 * Access control is decided on the MATCHED route, never on the raw URL (which may be
 * percent-encoded, `/%761/completions`, or absolute-form, `http://host/v1/completions`): routes
 * registered with `config: { public: true }` (/healthz, /readyz, /metrics, the page at /) are open; every other
 * route, unknown URLs and wrong methods included, needs the API key when one is set, and is
 * refused with 503 during shutdown. docs/security.md has the threat model and every limit.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Engine } from './engine';
import { ApiError } from './errors';
import { ServerMetrics } from './metrics';
import { type ServerOptions, type ServerOptionsInput, parseServerOptions } from './options';
import { registerChat } from './routes/chat';
import { registerCompletions } from './routes/completions';
import { registerLookup } from './routes/lookup';
import { registerMemories } from './routes/memories';
import { registerTeach } from './routes/teach';
import { registerOps } from './routes/ops';
import { registerPage } from './routes/page';
import { Scheduler, shuttingDown } from './scheduler';

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
  /** Host names accepted, lower case; null: any */
  private readonly allowedHosts: Set<string> | 'loopback' | null;
  /** every route's pattern and methods (405 with Allow for a known path with another method) */
  private readonly routes: Array<{ re: RegExp; methods: Set<string> }> = [];

  constructor(options: ServerOptionsInput = {}, init: MnemoServerInit = {}) {
    this.options = parseServerOptions(options);
    const o = this.options;
    this.apiKeyDigest = o.apiKey ? sha256(o.apiKey) : null;
    this.allowedHosts = o.allowedHosts
      ? o.allowedHosts.includes('*')
        ? null
        : new Set(o.allowedHosts.map((h) => h.toLowerCase().replace(/^\[|\]$/g, '')))
      : isLoopback(o.host) && !o.apiKey
        ? 'loopback'
        : null;
    // the HTTP parser checks the timeouts every `interval` ms (Node's default is 30 s)
    const headersTimeout = Math.min(o.requestTimeoutMs, 10_000);
    const interval = Math.max(25, Math.min(1000, Math.floor(headersTimeout / 4)));
    this.app = Fastify({
      logger: init.logger ?? false,
      bodyLimit: o.bodyLimit,
      return503OnClosing: false, // our own 503 in the OpenAI shape (onRequest below)
      requestTimeout: o.requestTimeoutMs,
      http: { requestTimeout: o.requestTimeoutMs, headersTimeout, connectionsCheckingInterval: interval },
      clientErrorHandler: clientErrorHandler,
      frameworkErrors: (err, _req, reply) => this.send(reply, toApiError(err)),
    });
    this.app.server.maxConnections = o.maxConnections;
    this.metrics.bind({
      queue: () => this.scheduler?.queueDepth ?? 0,
      active: () => this.scheduler?.activeCount ?? 0,
      tensors: () => this.engine?.numTensors() ?? 0,
      references: () => this.engine?.memories?.size ?? 0,
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
        finished: (r) => this.metrics.completions.inc(1, { outcome: r.outcome, finish_reason: r.finishReason ?? 'none' }),
        firstToken: (s) => this.metrics.timeToFirstToken.observe(s),
        rate: (r) => this.metrics.tokensPerSecond.observe(r),
      },
    );
  }

  model(): { engine: Engine; scheduler: Scheduler } {
    if (!this.engine || !this.scheduler) {
      throw new ApiError(
        503,
        'The model is still loading; retry shortly (GET /readyz turns 200 when ready).',
        'service_unavailable',
        null,
        'model_loading',
        { 'retry-after': '1' },
      );
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
      let cutAt = 0;
      const grace = setTimeout(() => {
        // cut off: streams end with an error event and [DONE], queued and running requests 503
        cutAt = Date.now();
        this.scheduler?.cancelAll('shutdown');
      }, this.options.shutdownGraceMs);
      grace.unref();
      const closing = this.app.close(); // no new connections; idle keep-alive ones are closed
      await this.scheduler?.idle();
      // every response written: what is left are sockets without a request (a client's
      // spare keep-alive connection), which would otherwise hold the exit up. After the cut-off
      // the 503s and final stream events get a second to go out.
      while (this.inFlight > 0 && !(cutAt && Date.now() - cutAt > 1000)) await new Promise((r) => setTimeout(r, 10));
      this.app.server.closeAllConnections();
      await closing;
      clearTimeout(grace);
      this.saveTaught();
      await this.engine?.dispose(); // a Memory³ engine also closes its store
    })();
    return this.closed;
  }

  /** Shutdown: write what POST /v1/memory/teach taught and no one saved (never lose a fact). */
  private saveTaught(): void {
    const teacher = this.engine?.teacher;
    if (!teacher || teacher.unsaved === 0) return;
    const n = teacher.unsaved;
    try {
      const out = teacher.save();
      this.app.log.info({ path: out.path, bytes: out.bytes, texts: n }, 'saved the taught memory values at shutdown');
    } catch (e) {
      // the process is going away: say loudly what is lost
      this.app.log.error(e, `could not save ${n} taught text(s) at shutdown; they are lost`);
      console.error(`[mnemo-server] could not save ${n} taught text(s) at shutdown: ${(e as Error).message}`);
    }
  }

  private install(): void {
    const app = this.app;

    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const re = new RegExp(`^${route.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]\w*/g, '[^/]+')}$`);
      const known = this.routes.find((r) => r.re.source === re.source);
      if (known) for (const m of methods) known.methods.add(m);
      else this.routes.push({ re, methods: new Set(methods) });
    });

    app.addHook('onRequest', async (req, reply) => {
      this.inFlight++;
      reply.raw.once('close', () => this.inFlight--);
      this.checkHost(req);
      // the matched route decides (not req.url: escapes and absolute-form targets route alike)
      const open = (req.routeOptions.config as { public?: boolean } | undefined)?.public === true;
      if (open) return;
      if (this.closing) throw shuttingDown();
      if (this.apiKeyDigest) this.authenticate(req);
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
      const p = routedPath(req.url);
      const route = this.routes.find((r) => r.re.test(p));
      const shown = p.length > 200 ? `${p.slice(0, 200)}…` : p;
      if (route && !route.methods.has(req.method)) {
        const allow = [...route.methods].sort().join(', ');
        this.send(
          reply,
          new ApiError(
            405,
            `${req.method} is not allowed on ${shown}; use ${allow}.`,
            'invalid_request_error',
            null,
            'method_not_allowed',
            { allow },
          ),
        );
        return;
      }
      this.send(
        reply,
        new ApiError(
          404,
          `Unknown route ${req.method} ${shown}. Routes: GET / (the inspector page), POST /v1/completions, POST /v1/chat/completions, GET /v1/models, POST /v1/memory/lookup, GET /healthz, GET /readyz, GET /metrics.`,
          'invalid_request_error',
          null,
          'unknown_url',
        ),
      );
    });

    // JSON only: a text/plain body is 415, not a string that fails validation
    app.removeContentTypeParser('text/plain');

    registerOps(app, this);
    registerPage(app);
    registerCompletions(app, this);
    registerChat(app, this);
    registerLookup(app, this);
    registerMemories(app, this);
    registerTeach(app, this);
  }

  private send(reply: FastifyReply, err: ApiError): void {
    for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
    reply.status(err.status).type('application/json').send(err.toJSON());
  }

  /** DNS rebinding: a loopback server without a key answers only to loopback Host names. */
  private checkHost(req: FastifyRequest): void {
    const allowed = this.allowedHosts;
    if (allowed === null) return;
    const names: string[] = [];
    const h = req.headers.host;
    if (typeof h === 'string') names.push(hostnameOf(h));
    const abs = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(req.url);
    if (abs) names.push(hostnameOf(abs[1]!.replace(/^.*@/, '')));
    for (const n of names) {
      const ok = allowed === 'loopback' ? isLoopbackName(n) : allowed.has(n);
      if (!ok) {
        throw new ApiError(
          403,
          `Host '${n.slice(0, 100)}' is not accepted (this server answers only to ${allowed === 'loopback' ? 'loopback names while it has no API key' : '--allowed-hosts'}; see docs/security.md).`,
          'invalid_request_error',
          null,
          'invalid_host',
        );
      }
    }
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

/** The path the router matches: absolute-form authority and the query dropped, escapes decoded. */
function routedPath(url: string): string {
  let p = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split('?')[0]!;
  try {
    p = decodeURIComponent(p);
  } catch {
    // keep it encoded
  }
  return p || '/';
}

/** `Host: name:port`, `[::1]:port` → lower-case name without brackets. */
function hostnameOf(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') < 0 ? undefined : h.indexOf(']'));
  const i = h.lastIndexOf(':');
  return i >= 0 && h.indexOf(':') === i ? h.slice(0, i) : h;
}

function isLoopback(host: string): boolean {
  return isLoopbackName(host.toLowerCase().replace(/^\[|\]$/g, ''));
}

function isLoopbackName(n: string): boolean {
  if (n === 'localhost' || n.endsWith('.localhost')) return true;
  if (isIP(n) === 4) return n.startsWith('127.');
  if (isIP(n) === 6) return n === '::1' || n === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(n);
  return false;
}

/**
 * Errors of the HTTP parser (before any route): a request that did not arrive in time (408),
 * headers over Node's limit (431: the URL counts), malformed HTTP (400) — answered in the OpenAI
 * shape unless a response already started, then the connection is closed.
 */
function clientErrorHandler(
  this: { log?: { trace?: (o: object, m: string) => void } },
  err: Error & { code?: string },
  socket: Socket,
): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let e: ApiError;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    e = new ApiError(
      408,
      'The request did not arrive in time (--request-timeout-ms); the connection is closed.',
      'timeout_error',
      null,
      'request_timeout',
    );
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    e = new ApiError(
      431,
      'The request line and headers are larger than the server accepts (16 KiB); send a shorter URL and fewer headers.',
      'invalid_request_error',
      null,
      'headers_too_large',
    );
  } else {
    e = new ApiError(400, `Malformed HTTP request (${err.code ?? 'parse error'}).`, 'invalid_request_error', null, 'bad_request');
  }
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const body = JSON.stringify(e.toJSON());
    socket.write(
      `HTTP/1.1 ${e.status} ${STATUS_TEXT[e.status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Fastify's own errors (body parsing, limits) → the OpenAI shape. */
export function toApiError(err: FastifyError | ApiError | Error): ApiError {
  if (err instanceof ApiError) return err;
  const code = (err as FastifyError).code;
  const status = (err as FastifyError).statusCode;
  switch (code) {
    case 'FST_ERR_BAD_URL':
      return new ApiError(
        400,
        'The URL is malformed (a bad percent-escape); encode it properly.',
        'invalid_request_error',
        null,
        'invalid_url',
      );
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new ApiError(414, 'A path segment of the URL is too long.', 'invalid_request_error', null, 'uri_too_long');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(
        400,
        `The body is not valid JSON (${err.message}). Send a JSON object.`,
        'invalid_request_error',
        null,
        'invalid_json',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'The body is empty; send a JSON object.', 'invalid_request_error', null, 'invalid_json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(
        413,
        `The request body is larger than the limit (--body-limit). Send a shorter prompt.`,
        'invalid_request_error',
        null,
        'request_too_large',
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(
        415,
        'Unsupported Content-Type; send "Content-Type: application/json".',
        'invalid_request_error',
        null,
        'unsupported_media_type',
      );
  }
  if (err instanceof SyntaxError && status === 400) {
    return new ApiError(400, `The body is not valid JSON (${err.message}).`, 'invalid_request_error', null, 'invalid_json');
  }
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new ApiError(status, err.message, 'invalid_request_error', null, code ?? null);
  }
  return new ApiError(500, 'Internal server error; the request failed but the server is still up.', 'server_error', null, 'internal_error');
}
