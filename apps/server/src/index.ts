/**
 * mnemo-serve as a library: an OpenAI-compatible completion and chat server with memory introspection.
 *
 *   const server = new MnemoServer({ port: 0 });
 *   await server.listen();
 *   server.setEngine(ModelEngine.load('./runs/demo'));
 */
export { type ChatMessage, type ChatTemplate, DEFAULT_CHAT_TEMPLATE, parseChatTemplate, renderChat } from '@mnemo/model';
export { Completion, type FinishReason } from './completion';
export type { Engine, EngineCache, EngineInfo, MemoryReads, SamplingParams } from './engine';
export { ApiError, type ApiErrorBody, type ApiErrorType } from './errors';
export { Counter, Gauge, Histogram, ServerMetrics } from './metrics';
export { ModelEngine } from './model-engine';
export {
  type CliOptions,
  type ServerOptions,
  type ServerOptionsInput,
  USAGE,
  parseCli,
  parseServerOptions,
  serverOptionsSchema,
} from './options';
export { Job, type JobOutcome, type JobRequest, type JobResult, Scheduler, type SchedulerOptions } from './scheduler';
export { type LogitAdjustments, type TokenLogprob, adjustLogits, logSumExp, tokenLogprob } from './logits';
export {
  type ChatRequest,
  type CompletionRequest,
  chatRequestSchema,
  completionRequestSchema,
  type LookupRequest,
  lookupRequestSchema,
} from './schemas';
export { MnemoServer, type MnemoServerInit, type ServerContext } from './server';
