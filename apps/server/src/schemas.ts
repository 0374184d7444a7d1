/**
 * Request bodies, validated strictly with zod: wrong types, out-of-range values and unknown
 * fields are 400s naming the field. OpenAI fields this server does not implement (`suffix`,
 * `tools`, `response_format` other than text, ...) are refused by name with code
 * `unsupported_parameter` unless they carry their neutral value (null, false, empty), so stock
 * clients that send the defaults keep working. Cross-field rules that need the model (token ids
 * below the vocabulary, limits) are checked by the routes.
 */
import { z } from 'zod';

/** A field this server does not implement: accepted only as `neutral` values, else refused by name. */
const unsupported = (what: string, neutral: (v: unknown) => boolean = (v) => v == null) =>
  z
    .unknown()
    .refine(neutral, { message: `${what} is not supported by this server`, params: { unsupported: true } })
    .optional();

const tokenId = z.number().int().min(0);
const tokenArray = z
  .array(tokenId)
  .min(1, 'a token array must hold at least one id')
  .max(1 << 16);

/** Sampling fields shared by /v1/completions and /v1/chat/completions. */
const sampling = {
  model: z.string().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  n: z.number().int().min(1).max(16, 'at most 16 choices per request').nullable().optional(),
  stop: z
    .union([z.string().min(1), z.array(z.string().min(1, 'stop sequences must not be empty')).max(4, 'at most 4 stop sequences')])
    .nullable()
    .optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).strict().nullable().optional(),
  seed: z
    .number()
    .int()
    .min(-(2 ** 53) + 1)
    .max(2 ** 53 - 1)
    .nullable()
    .optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  /** token id (as a string) → bias in [−100, 100]; the ids are checked against the vocabulary by the route */
  logit_bias: z.record(z.string(), z.number().min(-100).max(100)).nullable().optional(),
  user: z.string().optional(),
};

export const completionRequestSchema = z
  .object({
    ...sampling,
    prompt: z.union(
      [
        z.string(),
        z.array(z.string()).min(1).max(16, 'at most 16 prompts per request'),
        tokenArray,
        z.array(tokenArray).min(1).max(16, 'at most 16 prompts per request'),
      ],
      { error: 'must be a string, an array of strings, an array of token ids, or an array of token-id arrays (required)' },
    ),
    max_tokens: z.number().int().min(0).nullable().optional(),
    /** logprobs of the chosen token and this many alternatives */
    logprobs: z.number().int().min(0).max(20, 'at most 20 alternatives').nullable().optional(),
    echo: z.boolean().nullable().optional(),
    best_of: unsupported('best_of other than n (server-side ranking)', (v) => v == null || v === 1),
    suffix: unsupported('suffix (insertion)', (v) => v == null || v === ''),
  })
  .strict();

export type CompletionRequest = z.output<typeof completionRequestSchema>;

/** a content part: text only ({type: 'text', text}); images, audio, files are refused by name */
const contentPart = z
  .object({ type: z.string(), text: z.string().optional() })
  .loose()
  .superRefine((p, ctx) => {
    if (p.type !== 'text') {
      ctx.addIssue({
        code: 'custom',
        path: ['type'],
        message: `content parts of type '${p.type.slice(0, 40)}' are not supported by this server (text only)`,
        params: { unsupported: true },
      });
    } else if (typeof p.text !== 'string') ctx.addIssue({ code: 'custom', path: ['text'], message: 'a text part needs a string text' });
  });

const message = z
  .object({
    role: z.enum(['system', 'developer', 'user', 'assistant'], {
      error: "must be 'system', 'developer', 'user' or 'assistant' (tool messages are not supported by this server)",
    }),
    content: z.union([z.string(), z.array(contentPart)]).nullable(),
    name: z.string().optional(),
    refusal: z.string().nullable().optional(),
    tool_calls: unsupported('tool_calls (tool calling)', (v) => v == null || (Array.isArray(v) && v.length === 0)),
    function_call: unsupported('function_call (function calling)'),
  })
  .strict();

export const chatRequestSchema = z
  .object({
    ...sampling,
    messages: z.array(message).min(1, 'must hold at least one message'),
    max_tokens: z.number().int().min(1).nullable().optional(),
    max_completion_tokens: z.number().int().min(1).nullable().optional(),
    logprobs: z.boolean().nullable().optional(),
    top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
    response_format: unsupported(
      "response_format other than {type: 'text'} (structured output)",
      (v) => v == null || (typeof v === 'object' && (v as { type?: unknown }).type === 'text'),
    ),
    tools: unsupported('tools (tool calling)', (v) => v == null || (Array.isArray(v) && v.length === 0)),
    tool_choice: unsupported('tool_choice (tool calling)', (v) => v == null || v === 'none'),
    parallel_tool_calls: unsupported('parallel_tool_calls (tool calling)', (v) => v == null || v === false),
    functions: unsupported('functions (function calling)'),
    function_call: unsupported('function_call (function calling)', (v) => v == null || v === 'none'),
    audio: unsupported('audio output'),
    modalities: unsupported('modalities other than text', (v) => v == null || (Array.isArray(v) && v.every((m) => m === 'text'))),
    prediction: unsupported('prediction (predicted outputs)'),
    reasoning_effort: unsupported('reasoning_effort'),
    web_search_options: unsupported('web_search_options'),
    service_tier: unsupported('service_tier', (v) => v == null || v === 'auto' || v === 'default'),
    store: unsupported('store (stored completions)', (v) => v == null || v === false),
    metadata: unsupported('metadata (stored completions)'),
  })
  .strict();

export type ChatRequest = z.output<typeof chatRequestSchema>;

export const lookupRequestSchema = z
  .object({
    model: z.string().optional(),
    text: z.string().min(1, 'must not be empty'),
    /** keep the k best slots per head (default: all the model reads) */
    top_k: z.number().int().min(1).optional(),
  })
  .strict();

export type LookupRequest = z.output<typeof lookupRequestSchema>;

/** A non-empty text, or 1..max non-empty texts. */
const oneOrMoreTexts = (max: number) =>
  z.union([
    z.string().min(1, 'must not be empty'),
    z
      .array(z.string().min(1, 'texts must not be empty'))
      .min(1, 'must hold at least one text')
      .max(max, `at most ${max} texts per request`),
  ]);

/** POST /v1/memories: one text or several; each is split into references of ≤ 128 tokens. */
export const memoryCreateSchema = z
  .object({
    model: z.string().optional(),
    text: oneOrMoreTexts(64),
  })
  .strict();

/** POST /v1/memory/teach: texts to write into the memory values (sparse memory finetuning). */
export const teachSchema = z
  .object({
    model: z.string().optional(),
    text: oneOrMoreTexts(16),
    steps: z.number().int().min(1).max(200, 'at most 200 steps per text').optional(),
    top_t: z.number().int().min(1).max(65_536, 'at most 65536 slots per block').optional(),
  })
  .strict();

export const memoryListSchema = z
  .object({
    offset: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(100, 'at most 100 per page').optional(),
  })
  .strict();
