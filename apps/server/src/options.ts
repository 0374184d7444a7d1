/**
 * Server options: validated once at the edge with zod (CLI flags and programmatic use alike);
 * a bad value throws ConfigError naming the option.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '@mnemo/core';
import { z } from 'zod';

const positiveInt = z.number().int().positive();

export const serverOptionsSchema = z
  .object({
    /** interface to bind; loopback by default so nothing is exposed by accident */
    host: z.string().min(1).default('127.0.0.1'),
    /** TCP port; 0 picks a free one */
    port: z.number().int().min(0).max(65535).default(8080),
    /** bearer token required on /v1/* when set */
    apiKey: z.string().min(1).optional(),
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
    const field =
      i.code === 'unrecognized_keys' ? (i as { keys: string[] }).keys[0]! : i.path.map(String).join('.') || 'options';
    throw new ConfigError(field, i.message);
  }
  return r.data;
}

export interface CliOptions extends ServerOptions {
  checkpoint: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'silent';
  help: boolean;
}

export const USAGE = `mnemo-serve --checkpoint DIR [options]

  --checkpoint DIR         trainer checkpoint to serve (required)
  --host HOST              interface to bind (default 127.0.0.1)
  --port N                 TCP port, 0 = any free port (default 8080)
  --api-key KEY            require "Authorization: Bearer KEY" on /v1/* (or env MNEMO_API_KEY)
  --max-queue N            waiting requests before 429 (default 64)
  --max-batch N            sequences decoded together per step (default 16)
  --no-batching            decode one request at a time
  --timeout-ms N           per-request time limit (default 60000)
  --max-tokens N           largest max_tokens accepted (default 256)
  --max-prompt-tokens N    largest prompt in tokens (default 1024)
  --body-limit BYTES       largest request body (default 1048576)
  --shutdown-grace-ms N    time in-flight requests get after SIGTERM (default 30000)
  --model-name NAME        model id in responses (default: checkpoint folder name)
  --log-level LEVEL        fatal|error|warn|info|debug|silent (default warn; info logs every request)
  -h, --help               this text
`;

const INT_FLAGS = {
  port: 'port',
  'max-queue': 'maxQueue',
  'max-batch': 'maxBatch',
  'timeout-ms': 'timeoutMs',
  'max-tokens': 'maxTokens',
  'max-prompt-tokens': 'maxPromptTokens',
  'body-limit': 'bodyLimit',
  'shutdown-grace-ms': 'shutdownGraceMs',
} as const;

/** Parse `mnemo-serve` arguments; throws ConfigError naming the flag. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv = process.env): CliOptions {
  let parsed: ReturnType<typeof parseCliRaw>;
  try {
    parsed = parseCliRaw(argv);
  } catch (e) {
    throw new ConfigError('arguments', `${(e as Error).message}. Run mnemo-serve --help.`);
  }
  const v = parsed.values;
  const help = v.help === true;
  if (!help && !v.checkpoint) throw new ConfigError('--checkpoint', 'is required: the folder a trainer checkpoint was saved to');
  const raw: Record<string, unknown> = {};
  if (v.host !== undefined) raw.host = v.host;
  const apiKey = v['api-key'] ?? env.MNEMO_API_KEY;
  if (apiKey !== undefined && apiKey !== '') raw.apiKey = apiKey;
  if (v['no-batching']) raw.batching = false;
  if (v['model-name'] !== undefined) raw.modelName = v['model-name'];
  for (const [flag, key] of Object.entries(INT_FLAGS)) {
    const s = v[flag as keyof typeof v];
    if (s === undefined) continue;
    const n = Number(s);
    if (typeof s !== 'string' || !/^\d+$/.test(s) || !Number.isSafeInteger(n)) {
      throw new ConfigError(`--${flag}`, `must be a non-negative integer, got '${String(s)}'`);
    }
    raw[key] = n;
  }
  let opts: ServerOptions;
  try {
    opts = parseServerOptions(raw);
  } catch (e) {
    if (e instanceof ConfigError) {
      const flag = Object.entries(INT_FLAGS).find(([, k]) => k === e.field)?.[0] ?? kebab(e.field);
      throw new ConfigError(`--${flag}`, e.message.slice(e.field.length + 2));
    }
    throw e;
  }
  const logLevel = (v['log-level'] ?? 'warn') as CliOptions['logLevel'];
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'silent'].includes(logLevel)) {
    throw new ConfigError('--log-level', `must be one of fatal|error|warn|info|debug|silent, got '${logLevel}'`);
  }
  return { ...opts, checkpoint: v.checkpoint ?? '', logLevel, help };
}

function parseCliRaw(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      checkpoint: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'api-key': { type: 'string' },
      'max-queue': { type: 'string' },
      'max-batch': { type: 'string' },
      'no-batching': { type: 'boolean' },
      'timeout-ms': { type: 'string' },
      'max-tokens': { type: 'string' },
      'max-prompt-tokens': { type: 'string' },
      'body-limit': { type: 'string' },
      'shutdown-grace-ms': { type: 'string' },
      'model-name': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
