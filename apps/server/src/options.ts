/**
 * Server options: validated once at the edge with zod (CLI flags and programmatic use alike);
 * a bad value throws ConfigError naming the option. The CLI's flags are parsed by @mnemo/core's
 * parseFlags (`--port 80` or `--port=80`; an unknown flag names the closest known one).
 */
import { readFileSync } from 'node:fs';
import { ConfigError, type ParsedArgs, UsageError, defineFlags, parseFlags, usage } from '@mnemo/core';
import { z } from 'zod';

const positiveInt = z.number().int().positive();

export const serverOptionsSchema = z
  .object({
    /** interface to bind; loopback by default so nothing is exposed by accident */
    host: z.string().min(1).default('127.0.0.1'),
    /** TCP port; 0 picks a free one */
    port: z.number().int().min(0).max(65535).default(8080),
    /** bearer token required on every route but /healthz, /readyz, /metrics when set */
    apiKey: z.string().min(1).optional(),
    /**
     * Host header names accepted (case-insensitive, port ignored; '*' accepts any). Default: when
     * bound to a loopback address without an API key, only loopback names (localhost, *.localhost,
     * 127.x.x.x, ::1), so a web page cannot reach the server through DNS rebinding; else any.
     */
    allowedHosts: z.array(z.string().min(1)).optional(),
    /** the whole request (headers and body) must arrive within this, ms; else 408 and the connection is closed */
    requestTimeoutMs: positiveInt.default(30_000),
    /** open connections at most; more are closed at once */
    maxConnections: positiveInt.default(256),
    /** requests waiting for a decoding slot before 429 */
    maxQueue: z.number().int().min(0).default(64),
    /** sequences decoded together in one step */
    maxBatch: positiveInt.max(1024).default(16),
    /** false: one sequence at a time (first come, first served) */
    batching: z.boolean().default(true),
    /** per-request wall-clock limit from arrival, ms */
    timeoutMs: positiveInt.default(60_000),
    /** largest max_tokens a request may ask for */
    maxTokens: positiveInt.default(256),
    /** largest prompt, in tokens */
    maxPromptTokens: positiveInt.default(1024),
    /** largest request body, bytes */
    bodyLimit: positiveInt.default(1 << 20),
    /** in-flight requests get this long to finish after SIGTERM before they are cut off, ms */
    shutdownGraceMs: positiveInt.default(30_000),
    /** the model id shown by /v1/models; default: the checkpoint folder's name */
    modelName: z.string().min(1).optional(),
  })
  .strict();

export type ServerOptionsInput = z.input<typeof serverOptionsSchema>;
export type ServerOptions = z.output<typeof serverOptionsSchema>;

export function parseServerOptions(input: unknown): ServerOptions {
  const r = serverOptionsSchema.safeParse(input ?? {});
  if (!r.success) {
    const i = r.error.issues[0]!;
    const field = i.code === 'unrecognized_keys' ? (i as { keys: string[] }).keys[0]! : i.path.map(String).join('.') || 'options';
    throw new ConfigError(field, i.message);
  }
  return r.data;
}

export interface CliOptions extends ServerOptions {
  checkpoint: string;
  /** Memory³ knowledge base folder (created when missing); undefined: none */
  memoryStore?: string;
  /** read a store another checkpoint wrote */
  memoryStoreAnyWriter: boolean;
  /** the value pool held by this many worker threads (sharded-engine.ts); undefined: in this process */
  memoryParallel?: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'silent';
  help: boolean;
  /** things the operator should hear about (a key given on the command line) */
  warnings: string[];
}

/** the schema's defaults, shown by --help and passed on as given */
const DEFAULTS = serverOptionsSchema.parse({});

/** mnemo-serve's flags → the server option each one sets */
const OPTION_OF = {
  host: 'host',
  port: 'port',
  'api-key': 'apiKey',
  'allowed-hosts': 'allowedHosts',
  'request-timeout-ms': 'requestTimeoutMs',
  'max-connections': 'maxConnections',
  'max-queue': 'maxQueue',
  'max-batch': 'maxBatch',
  'no-batching': 'batching',
  'timeout-ms': 'timeoutMs',
  'max-tokens': 'maxTokens',
  'max-prompt-tokens': 'maxPromptTokens',
  'body-limit': 'bodyLimit',
  'shutdown-grace-ms': 'shutdownGraceMs',
  'model-name': 'modelName',
} as const satisfies Record<string, keyof ServerOptions>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'silent'] as const;

/** the flags; ranges beyond "an integer ≥ 0" are the schema's (errors still name the flag) */
const CLI_FLAGS = defineFlags({
  checkpoint: { type: 'string', placeholder: 'DIR', description: 'trainer checkpoint to serve (required)' },
  host: { type: 'string', placeholder: 'HOST', description: 'interface to bind', default: DEFAULTS.host },
  port: { type: 'int', min: 0, description: 'TCP port, 0 = any free port', default: DEFAULTS.port },
  'api-key-file': {
    type: 'string',
    placeholder: 'FILE',
    description: 'require "Authorization: Bearer KEY" on all but /healthz /readyz /metrics; KEY read from FILE (or env MNEMO_API_KEY)',
  },
  'api-key': {
    type: 'string',
    placeholder: 'KEY',
    description: 'the key on the command line (visible in ps: prefer --api-key-file or MNEMO_API_KEY)',
  },
  'allowed-hosts': {
    type: 'list',
    placeholder: 'H1,H2',
    description: "Host header names accepted, '*' = any",
    defaultText: 'loopback names when bound to loopback without a key, else any',
  },
  'request-timeout-ms': {
    type: 'int',
    min: 0,
    description: 'time to receive a whole request (headers and body)',
    default: DEFAULTS.requestTimeoutMs,
  },
  'max-connections': { type: 'int', min: 0, description: 'open connections at most', default: DEFAULTS.maxConnections },
  'max-queue': { type: 'int', min: 0, description: 'waiting requests before 429', default: DEFAULTS.maxQueue },
  'max-batch': { type: 'int', min: 0, description: 'sequences decoded together per step', default: DEFAULTS.maxBatch },
  'no-batching': { type: 'boolean', description: 'decode one request at a time' },
  'timeout-ms': { type: 'int', min: 0, description: 'per-request time limit', default: DEFAULTS.timeoutMs },
  'max-tokens': { type: 'int', min: 0, description: 'largest max_tokens accepted', default: DEFAULTS.maxTokens },
  'max-prompt-tokens': { type: 'int', min: 0, description: 'largest prompt in tokens', default: DEFAULTS.maxPromptTokens },
  'body-limit': { type: 'int', min: 0, placeholder: 'BYTES', description: 'largest request body', default: DEFAULTS.bodyLimit },
  'shutdown-grace-ms': { type: 'int', min: 0, description: 'time in-flight requests get after SIGTERM', default: DEFAULTS.shutdownGraceMs },
  'model-name': { type: 'string', placeholder: 'NAME', description: 'model id in responses', defaultText: 'checkpoint folder name' },
  'memory-store': {
    type: 'string',
    placeholder: 'DIR',
    description:
      'Memory³ knowledge base completions read every 64 tokens (created when missing; fill it with POST /v1/memories or mnemo-memory build)',
  },
  'memory-parallel': {
    type: 'int',
    min: 2,
    placeholder: 'P',
    description: "the checkpoint's value pool split over P worker threads (each holds 1/P of the table)",
    defaultText: 'off',
  },
  'memory-store-any-writer': {
    type: 'boolean',
    description: "read a --memory-store written by another checkpoint (its memories are another model's K/V)",
  },
  'log-level': {
    type: 'string',
    placeholder: 'LEVEL',
    choices: LOG_LEVELS,
    description: `${LOG_LEVELS.join('|')}; info logs every request`,
    default: 'warn',
  },
});

export const USAGE = `mnemo-serve --checkpoint DIR [options]

${usage(CLI_FLAGS)}
`;

/** Parse `mnemo-serve` arguments; throws ConfigError naming the flag (`arguments` for an unknown flag). */
export function parseCli(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  readFile: (file: string) => string = (f) => readFileSync(f, 'utf8'),
): CliOptions {
  let parsed: ParsedArgs<typeof CLI_FLAGS>;
  try {
    parsed = parseFlags(CLI_FLAGS, argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (e.flag === undefined) throw new ConfigError('arguments', `${e.message} (mnemo-serve --help lists the flags)`);
    // `--port: expected …` / `--port needs a value` → ConfigError('--port', …)
    throw new ConfigError(e.flag, e.message.slice(e.flag.length).replace(/^:?\s*/, ''));
  }
  const v = parsed.values;
  const help = parsed.help;
  if (!help && !v.checkpoint) throw new ConfigError('--checkpoint', 'is required: the folder a trainer checkpoint was saved to');
  const raw: Record<string, unknown> = {
    host: v.host,
    port: v.port,
    maxQueue: v['max-queue'],
    maxBatch: v['max-batch'],
    batching: !v['no-batching'],
    timeoutMs: v['timeout-ms'],
    maxTokens: v['max-tokens'],
    maxPromptTokens: v['max-prompt-tokens'],
    bodyLimit: v['body-limit'],
    shutdownGraceMs: v['shutdown-grace-ms'],
    requestTimeoutMs: v['request-timeout-ms'],
    maxConnections: v['max-connections'],
  };
  if (v['allowed-hosts']?.length) raw.allowedHosts = v['allowed-hosts'];
  const warnings: string[] = [];
  if (v['api-key'] !== undefined && v['api-key-file'] !== undefined) {
    throw new ConfigError('--api-key', 'give --api-key or --api-key-file, not both');
  }
  let apiKey: string | undefined = env.MNEMO_API_KEY;
  if (v['api-key-file'] !== undefined) {
    const file = v['api-key-file'];
    try {
      apiKey = readFile(file).replace(/\r?\n$/, '');
    } catch (e) {
      throw new ConfigError('--api-key-file', `cannot read ${file}: ${(e as Error).message}`);
    }
    if (apiKey === '') throw new ConfigError('--api-key-file', `${file} is empty`);
  }
  if (v['api-key'] !== undefined) {
    apiKey = v['api-key'];
    warnings.push(
      '--api-key puts the key on the command line, where other local users can read it (ps, /proc); prefer --api-key-file FILE or env MNEMO_API_KEY',
    );
  }
  if (apiKey !== undefined && apiKey !== '') raw.apiKey = apiKey;
  if (v['model-name'] !== undefined) raw.modelName = v['model-name'];
  let opts: ServerOptions;
  try {
    opts = parseServerOptions(raw);
  } catch (e) {
    if (e instanceof ConfigError) {
      const flag = Object.entries(OPTION_OF).find(([, k]) => k === e.field)?.[0] ?? kebab(e.field);
      throw new ConfigError(`--${flag}`, e.message.slice(e.field.length + 2));
    }
    throw e;
  }
  if (v['memory-store-any-writer'] && !v['memory-store']) throw new ConfigError('--memory-store-any-writer', 'needs --memory-store DIR');
  if (v['memory-parallel'] !== undefined && v['memory-store'] !== undefined)
    throw new ConfigError('--memory-parallel', 'does not run with --memory-store yet; serve one or the other');
  return {
    ...opts,
    checkpoint: v.checkpoint ?? '',
    memoryStore: v['memory-store'],
    memoryStoreAnyWriter: v['memory-store-any-writer'],
    memoryParallel: v['memory-parallel'],
    logLevel: v['log-level'],
    help,
    warnings,
  };
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
