/**
 * Server options: validated once at the edge with zod (CLI flags and programmatic use alike);
 * a bad value throws ConfigError naming the option. The CLI's flags are parsed by @mnemo/core's
 * parseFlags (`--port 80` or `--port=80`; an unknown flag names the closest known one).
 */
import { ConfigError, type ParsedArgs, UsageError, defineFlags, parseFlags, usage } from '@mnemo/core';
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

/** the schema's defaults, shown by --help and passed on as given */
const DEFAULTS = serverOptionsSchema.parse({});

/** mnemo-serve's flags → the server option each one sets */
const OPTION_OF = {
  host: 'host',
  port: 'port',
  'api-key': 'apiKey',
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
  'api-key': { type: 'string', placeholder: 'KEY', description: 'require "Authorization: Bearer KEY" on /v1/* (or env MNEMO_API_KEY)' },
  'max-queue': { type: 'int', min: 0, description: 'waiting requests before 429', default: DEFAULTS.maxQueue },
  'max-batch': { type: 'int', min: 0, description: 'sequences decoded together per step', default: DEFAULTS.maxBatch },
  'no-batching': { type: 'boolean', description: 'decode one request at a time' },
  'timeout-ms': { type: 'int', min: 0, description: 'per-request time limit', default: DEFAULTS.timeoutMs },
  'max-tokens': { type: 'int', min: 0, description: 'largest max_tokens accepted', default: DEFAULTS.maxTokens },
  'max-prompt-tokens': { type: 'int', min: 0, description: 'largest prompt in tokens', default: DEFAULTS.maxPromptTokens },
  'body-limit': { type: 'int', min: 0, placeholder: 'BYTES', description: 'largest request body', default: DEFAULTS.bodyLimit },
  'shutdown-grace-ms': { type: 'int', min: 0, description: 'time in-flight requests get after SIGTERM', default: DEFAULTS.shutdownGraceMs },
  'model-name': { type: 'string', placeholder: 'NAME', description: 'model id in responses', defaultText: 'checkpoint folder name' },
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
export function parseCli(argv: string[], env: NodeJS.ProcessEnv = process.env): CliOptions {
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
  };
  const apiKey = v['api-key'] ?? env.MNEMO_API_KEY;
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
  return { ...opts, checkpoint: v.checkpoint ?? '', logLevel: v['log-level'], help };
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
