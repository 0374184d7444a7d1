/**
 * Scheduler: shares one model between concurrent requests (continuous batching).
 *
 *   submit ──► queue (bounded: 429 when full) ──► active set (≤ maxBatch sequences)
 *
 * One tick, run from setImmediate so HTTP I/O interleaves between ticks:
 *   1. drop sequences that were cancelled (client gone) or ran out of time, freeing caches;
 *   2. admit queued requests into free slots: prefill each prompt on its own cache and
 *      sample its first token;
 *   3. one decoding step for every other active sequence at once (engine.decodeBatch over
 *      their last tokens), then sample each with its own seeded RNG.
 * With batching off the active set holds one sequence: requests run one after another.
 * Tasks (submitTask: memory lookups) share the queue — the same bound (429 when full), the same
 * first-come order and deadline — and run in the tick that reaches them, without a decoding slot.
 * Sampling per sequence uses only that sequence's logits and RNG, so a request's output does
 * not depend on who else is being served.
 */
import { Completion, type FinishReason } from './completion';
import type { Engine, EngineCache, SamplingParams } from './engine';
import { ApiError } from './errors';
import { type LogitAdjustments, type TokenLogprob, adjustLogits, tokenLogprob } from './logits';

export interface JobRequest extends LogitAdjustments {
  promptIds: number[];
  /** 0: score the prompt only (echo), nothing is sampled */
  maxTokens: number;
  sampling: SamplingParams;
  stop: string[];
  seed: number;
  /** epoch ms after which the job is dropped with outcome 'timeout' */
  deadline: number;
  /** record each sampled token's logprob and this many alternatives (undefined: none) */
  logprobs?: number;
  /** also the prompt's logprobs (prefilled one token at a time; its first token has none) */
  promptLogprobs?: boolean;
  /** drop the completion's leading whitespace (chat replies) */
  trimStart?: boolean;
}

/** 'shutdown': cut off when the shutdown grace period ran out */
export type JobOutcome = 'finished' | 'timeout' | 'cancelled' | 'error' | 'shutdown';

export interface JobResult {
  outcome: JobOutcome;
  finishReason: FinishReason | null;
  text: string;
  tokens: number[];
  promptTokens: number;
  completionTokens: number;
  /** Memory³: ids of the references the sequence read (empty without a knowledge base) */
  references: number[];
  /** per completion token (request.logprobs set): its logprob and the top alternatives */
  logprobs: TokenLogprob[];
  /** per prompt token (request.promptLogprobs): null for the first */
  promptLogprobs: Array<TokenLogprob | null>;
  error?: Error;
}

export interface SchedulerOptions {
  maxBatch: number;
  maxQueue: number;
  batching: boolean;
}

/** What the scheduler reports (metrics). */
export interface SchedulerObserver {
  tokens?(n: number): void;
  prefill?(promptTokens: number): void;
  batch?(size: number): void;
  finished?(result: JobResult): void;
  /** seconds from the job's creation to its first sampled token */
  firstToken?(seconds: number): void;
  /** completion tokens per second of the job's life (creation to end), for jobs that sampled any */
  rate?(tokensPerSecond: number): void;
}

let nextJobId = 1;

export class Job {
  readonly id = nextJobId++;
  /** performance.now() at creation, and when the first token was sampled (time to first token) */
  readonly createdAt = performance.now();
  firstTokenAt: number | null = null;
  readonly result: Promise<JobResult>;
  /** resolves when the job gets a decoding slot and its prompt was prefilled (or it ended) */
  readonly admitted: Promise<void>;
  /** set once the prompt was prefilled (the first token may follow in the same tick) */
  started = false;
  completion: Completion;
  cache: EngineCache | null = null;
  rng: () => number;
  /** the newest sampled token, fed to the model at the next decoding step */
  last = -1;
  /** per sampled token (the end-of-sequence one included), when logprobs are asked for */
  readonly logprobs: TokenLogprob[] = [];
  readonly promptLogprobs: Array<TokenLogprob | null> = [];
  /** how often each token was sampled (presence / frequency penalties) */
  readonly counts = new Map<number, number>();
  private resolve!: (r: JobResult) => void;
  private admit!: () => void;
  private cancelled = false;
  private ended = false;

  constructor(
    readonly request: JobRequest,
    engine: Engine,
    private readonly onDelta: (text: string) => void,
  ) {
    this.completion = new Completion((ids) => engine.decode(ids), request.stop, engine.eosId, request.maxTokens, request.trimStart);
    this.rng = engine.rng(request.seed);
    this.result = new Promise((r) => {
      this.resolve = r;
    });
    this.admitted = new Promise((r) => {
      this.admit = r;
    });
  }

  markStarted(): void {
    this.started = true;
    this.admit();
  }

  /** why a cancelled job stopped */
  cancelReason: 'cancelled' | 'shutdown' = 'cancelled';

  /** Stop generating (client disconnected); the cache is freed at the next tick. */
  cancel(reason: 'cancelled' | 'shutdown' = 'cancelled'): void {
    if (!this.cancelled) this.cancelReason = reason;
    this.cancelled = true;
  }

  get isCancelled(): boolean {
    return this.cancelled;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  emit(delta: string): void {
    if (delta && !this.cancelled) this.onDelta(delta);
  }

  end(outcome: JobOutcome, error?: Error): JobResult {
    const references = [...(this.cache?.references ?? [])];
    this.cache?.dispose();
    this.cache = null;
    this.ended = true;
    const c = this.completion;
    const r: JobResult = {
      outcome,
      finishReason: c.finishReason,
      text: c.text,
      tokens: [...c.tokens],
      promptTokens: this.request.promptIds.length,
      completionTokens: c.tokens.length,
      references,
      logprobs: this.logprobs.slice(0, c.tokens.length),
      promptLogprobs: this.promptLogprobs,
      error,
    };
    this.resolve(r);
    this.admit();
    return r;
  }
}

/**
 * A unit of synchronous work (a memory lookup) queued with the generations: it waits its turn,
 * and is refused with 429 when the queue is full, with 408 when its deadline passes while it
 * waits, with 503 when shutdown cuts it off.
 */
export class Task<T = unknown> {
  readonly result: Promise<T>;
  private resolve!: (v: T) => void;
  private reject!: (e: Error) => void;
  private cancelled = false;
  private ended = false;
  reason: 'cancelled' | 'shutdown' = 'cancelled';

  constructor(
    private readonly work: () => T,
    readonly deadline: number,
  ) {
    this.result = new Promise<T>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.result.catch(() => {}); // the caller awaits it; a cancelled task nobody awaits is not an unhandled rejection
  }

  cancel(reason: 'cancelled' | 'shutdown' = 'cancelled'): void {
    if (!this.cancelled) this.reason = reason;
    this.cancelled = true;
  }

  get isCancelled(): boolean {
    return this.cancelled;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  run(): void {
    if (this.ended) return;
    this.ended = true;
    try {
      this.resolve(this.work());
    } catch (e) {
      this.reject(e as Error);
    }
  }

  fail(e: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.reject(e);
  }
}

export class Scheduler {
  private readonly queue: Array<Job | Task> = [];
  private readonly active: Job[] = [];
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];
  readonly capacity: number;

  constructor(
    readonly engine: Engine,
    readonly opts: SchedulerOptions,
    private readonly observer: SchedulerObserver = {},
  ) {
    this.capacity = opts.batching ? opts.maxBatch : 1;
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  get activeCount(): number {
    return this.active.length;
  }

  /** Queue a generation; throws ApiError 429 (with Retry-After) when the queue is full. */
  submit(request: JobRequest, onDelta: (text: string) => void = () => {}): Job {
    this.checkRoom();
    const job = new Job(request, this.engine, onDelta);
    this.queue.push(job);
    this.wake();
    return job;
  }

  /**
   * Queue synchronous work behind what is already waiting (same bound: 429 when full); it runs in
   * the tick that reaches it. The task's result rejects with 408 when `deadline` (epoch ms) passes
   * while it waits, 503 when shutdown cuts it off, 499 when cancelled.
   */
  submitTask<T>(work: () => T, deadline: number): Task<T> {
    this.checkRoom();
    const task = new Task(work, deadline);
    this.queue.push(task as Task);
    this.wake();
    return task;
  }

  private checkRoom(): void {
    const freeSlots = Math.max(0, this.capacity - this.active.length);
    if (this.queue.length >= this.opts.maxQueue + freeSlots) {
      throw new ApiError(
        429,
        `The server is busy: ${this.active.length} requests are generating and ${this.queue.length} are waiting (--max-queue ${this.opts.maxQueue}). Retry after a moment.`,
        'rate_limit_error',
        null,
        'queue_full',
        { 'retry-after': String(this.retryAfterSeconds()) },
      );
    }
  }

  /** Resolves when nothing is queued or generating. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.active.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Cancel every queued and active job and task (shutdown deadline: outcome 'shutdown'). */
  cancelAll(reason: 'cancelled' | 'shutdown' = 'shutdown'): void {
    for (const j of [...this.queue, ...this.active]) j.cancel(reason);
    this.wake();
  }

  /** A rough wait: the queue ahead, one batch's worth at a time, ~1 s each. */
  private retryAfterSeconds(): number {
    return Math.max(1, Math.min(60, Math.ceil((this.queue.length + 1) / this.capacity)));
  }

  private wake(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.tick();
    });
  }

  /** One scheduling round; public for tests that drive it by hand. */
  tick(): void {
    const now = Date.now();
    this.reap(this.queue, now);
    this.reap(this.active, now);
    this.compact(); // ended jobs leave the queue before admission (else they would be prefilled)

    // 2. admit, first come first served: prefill new prompts one by one into free slots; a task
    //    at the head runs now (at most `capacity` per tick, so decoding steps go on between them)
    const fresh = new Set<Job>();
    let tasks = 0;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (head instanceof Task) {
        if (tasks >= this.capacity) break;
        this.queue.shift();
        tasks++;
        head.run();
        continue;
      }
      if (this.active.length >= this.capacity) break;
      this.queue.shift();
      this.active.push(head);
      fresh.add(head);
      this.prefill(head);
    }

    // 3. one batched decoding step over the sequences that were already running
    const running = this.active.filter((j) => !fresh.has(j) && !j.isEnded);
    if (running.length > 0) this.decode(running);

    this.compact();
    if (this.queue.length > 0 || this.active.length > 0) this.wake();
    else {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    }
  }

  private reap(list: Array<Job | Task>, now: number): void {
    for (const job of list) {
      if (job.isEnded) continue;
      if (job instanceof Task) {
        if (job.isCancelled)
          job.fail(
            job.reason === 'shutdown'
              ? shuttingDown()
              : new ApiError(499, 'The request was cancelled.', 'invalid_request_error', null, 'cancelled'),
          );
        else if (now > job.deadline) job.fail(timedOut());
        continue;
      }
      if (job.isCancelled) this.finish(job, job.cancelReason);
      else if (now > job.request.deadline) this.finish(job, 'timeout');
    }
  }

  private compact(): void {
    for (const list of [this.queue, this.active] as Array<Array<Job | Task>>) {
      let w = 0;
      for (const j of list) if (!j.isEnded) list[w++] = j;
      list.length = w;
    }
  }

  private prefill(job: Job): void {
    if (job.isEnded) return;
    try {
      job.cache = this.engine.newCache();
      const req = job.request;
      let logits: Float32Array;
      if (req.promptLogprobs) {
        // one token at a time: the logits after token i score token i + 1
        const k = req.logprobs ?? 0;
        job.promptLogprobs.push(null);
        logits = this.engine.prefill([req.promptIds[0]!], job.cache);
        for (let i = 1; i < req.promptIds.length; i++) {
          job.promptLogprobs.push(tokenLogprob(logits, req.promptIds[i]!, k));
          logits = this.engine.prefill([req.promptIds[i]!], job.cache);
        }
      } else {
        logits = this.engine.prefill(req.promptIds, job.cache);
      }
      job.markStarted();
      this.observer.prefill?.(req.promptIds.length);
      if (req.maxTokens === 0) {
        job.completion.finishEmpty();
        this.finish(job, 'finished');
        return;
      }
      this.take(job, logits);
    } catch (e) {
      this.finish(job, 'error', e as Error);
    }
  }

  private decode(jobs: Job[]): void {
    let logits: Float32Array[];
    try {
      logits = this.engine.decodeBatch(
        jobs.map((j) => j.last),
        jobs.map((j) => j.cache!),
      );
    } catch (e) {
      for (const j of jobs) this.finish(j, 'error', e as Error);
      return;
    }
    this.observer.batch?.(jobs.length);
    for (let i = 0; i < jobs.length; i++) this.take(jobs[i]!, logits[i]!);
  }

  /** Sample the next token from `logits`, hand out the text that became final. */
  private take(job: Job, raw: Float32Array): void {
    const req = job.request;
    const logits = adjustLogits(raw, req, job.counts);
    const id = this.engine.sample(logits, req.sampling, job.rng);
    if (req.logprobs !== undefined) job.logprobs.push(tokenLogprob(logits, id, req.logprobs));
    job.counts.set(id, (job.counts.get(id) ?? 0) + 1);
    this.observer.tokens?.(1);
    if (job.firstTokenAt === null) {
      job.firstTokenAt = performance.now();
      this.observer.firstToken?.((job.firstTokenAt - job.createdAt) / 1000);
    }
    const c = job.completion;
    // the token can be fed next step only if the cache has room for it
    const contextFull = job.cache!.length + 1 > this.engine.info.maxSeqLen;
    const delta = c.push(id, contextFull);
    job.last = id;
    job.emit(delta);
    if (c.done) this.finish(job, 'finished');
  }

  private finish(job: Job, outcome: JobOutcome, error?: Error): void {
    const r = job.end(outcome, error);
    this.observer.finished?.(r);
    const seconds = (performance.now() - job.createdAt) / 1000;
    if (r.completionTokens > 0 && seconds > 0) this.observer.rate?.(r.completionTokens / seconds);
  }
}

/** 503: the shutdown grace period ran out. */
export function shuttingDown(): ApiError {
  return new ApiError(503, 'The server is shutting down; retry against another instance.', 'service_unavailable', null, 'shutting_down', {
    connection: 'close',
  });
}

/** 408: the request ran past --timeout-ms. */
export function timedOut(): ApiError {
  return new ApiError(
    408,
    'The request ran past the time limit (--timeout-ms) and was stopped. Ask for fewer max_tokens or retry when the server is less busy.',
    'timeout_error',
    null,
    'timeout',
  );
}
