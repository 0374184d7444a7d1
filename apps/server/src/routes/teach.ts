/**
 * Teaching a served model new facts (sparse memory finetuning, Lin et al. 2025):
 *
 *   POST /v1/memory/teach {text: string | string[], steps?, top_t?}
 *        → {object: 'memory.teach', data: [{index, tokens, slots_written, slots: [row, …],
 *           loss_before, loss_after}], unsaved, usage: {prompt_tokens}}
 *   POST /v1/memory/save → {object: 'memory.save', path, bytes, saved}
 *
 * Each text is written into the top-t memory slots most specific to it (other values and every
 * dense weight stay as they are); the next completion reads the new values. Teaching is model
 * compute, so it waits in the scheduler's queue with the completions (429 when full, 408 past
 * --timeout-ms) and runs between decoding steps: no request ever reads a half-written row. Taught
 * values live in memory until POST /v1/memory/save or shutdown writes the checkpoint atomically.
 * Like every route but the health checks, these need the API key when the server has one.
 */
import type { FastifyInstance } from 'fastify';
import type { EngineTeacher } from '../engine';
import { invalidRequest, zodToApiError } from '../errors';
import { teachSchema } from '../schemas';
import type { ServerContext } from '../server';
import { checkModel } from './generate';

/** tokens one POST may teach (bounds the model compute of one request) */
export const MAX_TEACH_TOKENS = 2048;

export function registerTeach(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/memory/teach', async (req) => {
    const parsed = teachSchema.safeParse(req.body);
    if (!parsed.success) throw zodToApiError(parsed.error);
    const { engine, scheduler } = ctx.model();
    checkModel(engine, parsed.data.model);
    const teacher = teacherOf(engine.teacher, engine.info.id);
    const single = typeof parsed.data.text === 'string';
    const texts = typeof parsed.data.text === 'string' ? [parsed.data.text] : parsed.data.text;
    let total = 0;
    const ids = texts.map((t, i) => {
      const field = single ? 'text' : `text[${i}]`;
      const tokens = engine.encodeUpTo(t, Math.min(MAX_TEACH_TOKENS - total, engine.info.maxSeqLen));
      if (tokens === null) {
        throw invalidRequest(
          field,
          `The texts hold more than ${MAX_TEACH_TOKENS} tokens in all (or one holds more than the model's ${engine.info.maxSeqLen}), the limit per request. Send shorter texts, or several requests.`,
          'too_many_tokens',
        );
      }
      if (tokens.length < 2)
        throw invalidRequest(
          field,
          'A text to teach needs at least 2 tokens (the model learns to predict each next one).',
          'text_too_short',
        );
      total += tokens.length;
      return tokens;
    });
    const opts = { steps: parsed.data.steps, topT: parsed.data.top_t };
    const task = scheduler.submitTask(() => ids.map((t) => teacher.teach(t, opts)), Date.now() + ctx.options.timeoutMs);
    const taught = await task.result;
    ctx.metrics.teachTexts.inc(taught.length);
    ctx.metrics.teachRows.inc(taught.reduce((n, t) => n + t.slots.length, 0));
    return {
      object: 'memory.teach',
      data: taught.map((t, index) => ({
        index,
        tokens: t.tokens,
        slots_written: t.slots.length,
        slots: t.slots,
        loss_before: t.lossBefore,
        loss_after: t.lossAfter,
      })),
      unsaved: teacher.unsaved,
      usage: { prompt_tokens: total },
    };
  });

  app.post('/v1/memory/save', async () => {
    const { engine, scheduler } = ctx.model();
    const teacher = teacherOf(engine.teacher, engine.info.id);
    const saved = teacher.unsaved;
    // a task: the checkpoint is written between decoding steps, never beside a teach
    const out = await scheduler.submitTask(() => teacher.save(), Date.now() + ctx.options.timeoutMs).result;
    return { object: 'memory.save', path: out.path, bytes: out.bytes, saved };
  });
}

function teacherOf(t: EngineTeacher | undefined, modelId: string): EngineTeacher {
  if (!t) {
    throw invalidRequest(
      null,
      `The model '${modelId}' cannot be taught here: it needs memory layers and a checkpoint folder it was loaded from (not a sharded pool).`,
      'not_teachable',
    );
  }
  return t;
}
