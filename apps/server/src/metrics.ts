/**
 * Prometheus metrics. Each metric keeps its own values (read synchronously by code and tests through
 * `get`/`count`/`render`) and, when given a prom-client `Registry`, mirrors every update into a
 * prom-client metric there. `ServerMetrics` owns one Registry per server (never the global one, so
 * several servers in one process do not clash) with prom-client's default process metrics (CPU,
 * resident memory, heap, event-loop lag, GC, handles) next to ours; GET /metrics renders that registry.
 */
import * as prom from 'prom-client';

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',')}}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function num(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  private readonly mirror: prom.Counter | null;
  constructor(
    readonly name: string,
    readonly help: string,
    registry?: prom.Registry,
    labelNames: string[] = [],
  ) {
    this.mirror = registry ? new prom.Counter({ name, help, labelNames, registers: [registry] }) : null;
  }

  inc(by = 1, labels: Labels = {}): void {
    if (by < 0) throw new RangeError(`${this.name}: counters only go up`);
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
    this.mirror?.inc(labels, by);
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(`${this.name}${k} ${num(v)}`);
    return lines.join('\n');
  }
}

export class Gauge implements Metric {
  private value = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    /** when given, read at every scrape */
    private readonly collect?: () => number,
    registry?: prom.Registry,
  ) {
    if (registry) {
      const self = this;
      new prom.Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(self.get());
        },
      });
    }
  }

  set(v: number): void {
    this.value = v;
  }

  get(): number {
    return this.collect ? this.collect() : this.value;
  }

  render(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${num(this.get())}`].join('\n');
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  private readonly mirror: prom.Histogram | null;
  constructor(
    readonly name: string,
    readonly help: string,
    /** upper bounds, ascending; +Inf is implied */
    readonly buckets: number[],
    registry?: prom.Registry,
    labelNames: string[] = [],
  ) {
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]! > buckets[i - 1]!)) throw new RangeError(`${name}: buckets must ascend`);
    }
    this.mirror = registry ? new prom.Histogram({ name, help, buckets, labelNames, registers: [registry] }) : null;
  }

  observe(v: number, labels: Labels = {}): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { labels, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) s.counts[i]!++;
    s.sum += v;
    s.count++;
    this.mirror?.observe(labels, v);
  }

  count(labels: Labels = {}): number {
    return this.series.get(labelKey(labels))?.count ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => {
        lines.push(`${this.name}_bucket${labelKey({ ...s.labels, le: num(b) })} ${s.counts[i]}`);
      });
      lines.push(`${this.name}_bucket${labelKey({ ...s.labels, le: '+Inf' })} ${s.count}`);
      lines.push(`${this.name}_sum${labelKey(s.labels)} ${num(s.sum)}`);
      lines.push(`${this.name}_count${labelKey(s.labels)} ${s.count}`);
    }
    return lines.join('\n');
  }
}

/** The server's metrics. Gauges that read live state get their source via `bind`. */
export class ServerMetrics {
  /** this server's own registry (never prom-client's global one) */
  readonly registry = new prom.Registry();
  readonly requestDuration: Histogram;
  readonly tokensGenerated: Counter;
  readonly promptTokens: Counter;
  readonly completions: Counter;
  readonly queueRejections: Counter;
  readonly memoryLookups: Counter;
  readonly memoryWrites: Counter;
  readonly memoryDeletes: Counter;
  readonly teachTexts: Counter;
  readonly teachRows: Counter;
  readonly referencesStored: Gauge;
  readonly decodeBatchSize: Histogram;
  readonly queueDepth: Gauge;
  readonly activeSequences: Gauge;
  readonly tensors: Gauge;
  readonly timeToFirstToken: Histogram;
  readonly tokensPerSecond: Histogram;
  private referenceSource = () => 0;
  private queueSource = () => 0;
  private activeSource = () => 0;
  private tensorSource = () => 0;

  constructor() {
    const r = this.registry;
    prom.collectDefaultMetrics({ register: r });
    this.requestDuration = new Histogram(
      'mnemo_http_request_duration_seconds',
      'HTTP request latency, from the request arriving to the last byte of the response.',
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      r,
      ['method', 'route', 'status'],
    );
    this.tokensGenerated = new Counter('mnemo_tokens_generated_total', 'Tokens sampled by completions.', r);
    this.promptTokens = new Counter('mnemo_prompt_tokens_total', 'Prompt tokens prefilled.', r);
    this.completions = new Counter(
      'mnemo_completions_total',
      'Completions by outcome (finished, timeout, cancelled, error) and finish reason.',
      r,
      ['outcome', 'finish_reason'],
    );
    this.queueRejections = new Counter('mnemo_queue_rejections_total', 'Requests answered 429 because the queue was full.', r);
    this.memoryLookups = new Counter('mnemo_memory_lookups_total', 'POST /v1/memory/lookup requests served.', r);
    this.memoryWrites = new Counter('mnemo_memory_references_written_total', 'References written into the Memory³ store.', r);
    this.memoryDeletes = new Counter('mnemo_memory_references_deleted_total', 'References deleted from the Memory³ store.', r);
    this.teachTexts = new Counter('mnemo_teach_texts_total', 'Texts taught by POST /v1/memory/teach.', r);
    this.teachRows = new Counter('mnemo_teach_rows_written_total', 'Value rows written by POST /v1/memory/teach.', r);
    this.referencesStored = new Gauge('mnemo_memory_references', 'References in the Memory³ store.', () => this.referenceSource(), r);
    this.decodeBatchSize = new Histogram(
      'mnemo_decode_batch_size',
      'Sequences decoded together per step.',
      [1, 2, 4, 8, 16, 32, 64, 128],
      r,
    );
    this.queueDepth = new Gauge('mnemo_queue_depth', 'Requests waiting for a decoding slot.', () => this.queueSource(), r);
    this.activeSequences = new Gauge('mnemo_active_sequences', 'Sequences being decoded.', () => this.activeSource(), r);
    this.tensors = new Gauge('mnemo_tfjs_tensors', 'Live tfjs tensors (tf.memory().numTensors).', () => this.tensorSource(), r);
    this.timeToFirstToken = new Histogram(
      'mnemo_time_to_first_token_seconds',
      'Seconds from a completion request being queued to its first sampled token.',
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      r,
    );
    this.tokensPerSecond = new Histogram(
      'mnemo_request_tokens_per_second',
      'Completion tokens per second over each request, from queued to finished.',
      [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      r,
    );
  }

  bind(sources: { queue?: () => number; active?: () => number; tensors?: () => number; references?: () => number }): void {
    if (sources.references) this.referenceSource = sources.references;
    if (sources.queue) this.queueSource = sources.queue;
    if (sources.active) this.activeSource = sources.active;
    if (sources.tensors) this.tensorSource = sources.tensors;
  }

  /** the Content-Type of `render`'s text */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** every metric of this server's registry, default process metrics included, in the text format */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
