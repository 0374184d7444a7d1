/**
 * Request bodies, validated strictly with zod: wrong types, out-of-range values and unknown
 * fields are 400s naming the field. OpenAI fields this server does not implement are accepted
 * only with their neutral value (n = 1, echo = false, penalties = 0, ...), so stock clients
 * that send the defaults keep working and anything else is refused by name.
 */
import { z } from 'zod';

const neutral = <T extends z.ZodType>(schema: T) => schema.nullable().optional();

export const completionRequestSchema = z
  .object({
    model: z.string().optional(),
    prompt: z.union([z.string(), z.array(z.string()).length(1)], {
      error: 'must be a string, or an array of exactly one string (required)',
    }),
    max_tokens: z.number().int().min(1).nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    top_p: z.number().gt(0).max(1).nullable().optional(),
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
    user: z.string().optional(),
    // accepted only as their neutral values
    n: neutral(z.literal(1, 'only n = 1 is supported')),
    best_of: neutral(z.literal(1, 'only best_of = 1 is supported')),
    echo: neutral(z.literal(false, 'echo is not supported')),
    logprobs: neutral(z.literal(0, 'logprobs are not supported')),
    presence_penalty: neutral(z.literal(0, 'presence_penalty is not supported (only 0)')),
    frequency_penalty: neutral(z.literal(0, 'frequency_penalty is not supported (only 0)')),
    suffix: neutral(z.literal('', 'suffix is not supported')),
    logit_bias: neutral(z.object({}).strict()),
  })
  .strict();

export type CompletionRequest = z.output<typeof completionRequestSchema>;

export const lookupRequestSchema = z
  .object({
    model: z.string().optional(),
    text: z.string().min(1, 'must not be empty'),
    /** keep the k best slots per head (default: all the model reads) */
    top_k: z.number().int().min(1).optional(),
  })
  .strict();

export type LookupRequest = z.output<typeof lookupRequestSchema>;

/** POST /v1/memories: one text or several; each is split into references of ≤ 128 tokens. */
export const memoryCreateSchema = z
  .object({
    model: z.string().optional(),
    text: z.union([
      z.string().min(1, 'must not be empty'),
      z.array(z.string().min(1, 'texts must not be empty')).min(1, 'must hold at least one text').max(64, 'at most 64 texts per request'),
    ]),
  })
  .strict();

export const memoryListSchema = z
  .object({
    offset: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(100, 'at most 100 per page').optional(),
  })
  .strict();
