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
 * Sampling per sequence uses only that sequence's logits and RNG, so a request's output does
 * not depend on who else is being served.
 */
import { Completion, type FinishReason } from './completion';
import type { Engine, EngineCache, SamplingParams } from './engine';
import { ApiError } from './errors';

export interface JobRequest {
  promptIds: number[];
  maxTokens: number;
  sampling: SamplingParams;
  stop: string[];
  seed: number;
  /** epoch ms after which the job is dropped with outcome 'timeout' */
  deadline: number;
}

export type JobOutcome = 'finished' | 'timeout' | 'cancelled' | 'error';

export interface JobResult {
  outcome: JobOutcome;
  finishReason: FinishReason | null;
  text: string;
  tokens: number[];
  promptTokens: number;
  completionTokens: number;
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
}

let nextJobId = 1;

export class Job {
  readonly id = nextJobId++;
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
  private resolve!: (r: JobResult) => void;
  private admit!: () => void;
  private cancelled = false;
  private ended = false;

  constructor(
    readonly request: JobRequest,
    engine: Engine,
    private readonly onDelta: (text: string) => void,
  ) {
    this.completion = new Completion((ids) => engine.decode(ids), request.stop, engine.eosId, request.maxTokens);
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

  /** Stop generating (client disconnected); the cache is freed at the next tick. */
  cancel(): void {
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
      error,
    };
    this.resolve(r);
    this.admit();
    return r;
  }
}

export class Scheduler {
  private readonly queue: Job[] = [];
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
    const job = new Job(request, this.engine, onDelta);
    this.queue.push(job);
    this.wake();
    return job;
  }

  /** Resolves when nothing is queued or generating. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.active.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Cancel every queued and active job (shutdown deadline). */
  cancelAll(): void {
    for (const j of [...this.queue, ...this.active]) j.cancel();
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

    // 2. admit: prefill new prompts one by one into free slots
    const fresh = new Set<Job>();
    while (this.active.length < this.capacity && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.active.push(job);
      fresh.add(job);
      this.prefill(job);
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

  private reap(list: Job[], now: number): void {
    for (const job of list) {
      if (job.isEnded) continue;
      if (job.isCancelled) this.finish(job, 'cancelled');
      else if (now > job.request.deadline) this.finish(job, 'timeout');
    }
  }

  private compact(): void {
    for (const list of [this.queue, this.active]) {
      let w = 0;
      for (const j of list) if (!j.isEnded) list[w++] = j;
      list.length = w;
    }
  }

  private prefill(job: Job): void {
    if (job.isEnded) return;
    try {
      job.cache = this.engine.newCache();
      const logits = this.engine.prefill(job.request.promptIds, job.cache);
      job.markStarted();
      this.observer.prefill?.(job.request.promptIds.length);
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
  private take(job: Job, logits: Float32Array): void {
    const id = this.engine.sample(logits, job.request.sampling, job.rng);
    this.observer.tokens?.(1);
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
  }
}
