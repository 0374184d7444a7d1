import { describe, expect, it } from 'vitest';
import { Counter, Gauge, Histogram, ServerMetrics } from './metrics';
import { parsePrometheusText, sampleValue } from './testing/prom-text';

describe('Prometheus metrics', () => {
  it('renders counters with labels, escaped', () => {
    const c = new Counter('x_total', 'help text');
    c.inc();
    c.inc(2, { route: '/a"b' });
    c.inc(1, { route: '/a"b' });
    expect(c.render()).toBe(['# HELP x_total help text', '# TYPE x_total counter', 'x_total 1', 'x_total{route="/a\\"b"} 3'].join('\n'));
    expect(() => c.inc(-1)).toThrow(RangeError);
  });

  it('renders cumulative histogram buckets, sum and count', () => {
    const h = new Histogram('lat_seconds', 'latency', [0.1, 1]);
    for (const v of [0.05, 0.5, 0.5, 3]) h.observe(v, { s: '200' });
    const text = h.render();
    expect(text).toContain('lat_seconds_bucket{le="0.1",s="200"} 1');
    expect(text).toContain('lat_seconds_bucket{le="1",s="200"} 3');
    expect(text).toContain('lat_seconds_bucket{le="+Inf",s="200"} 4');
    expect(text).toContain('lat_seconds_sum{s="200"} 4.05');
    expect(text).toContain('lat_seconds_count{s="200"} 4');
    expect(() => new Histogram('h', 'h', [1, 1])).toThrow(/ascend/);
  });

  it('gauges read their live source at scrape time', async () => {
    let depth = 3;
    const m = new ServerMetrics();
    m.bind({ queue: () => depth });
    expect(await m.render()).toContain('mnemo_queue_depth 3');
    depth = 7;
    expect(await m.render()).toContain('mnemo_queue_depth 7');
    const g = new Gauge('g', 'g');
    g.set(2.5);
    expect(g.render()).toContain('g 2.5');
  });

  it('the server exposition parses strictly and types every metric', async () => {
    const m = new ServerMetrics();
    m.requestDuration.observe(0.2, { method: 'POST', route: '/v1/completions', status: '200' });
    m.tokensGenerated.inc(5);
    const text = await m.render();
    expect(() => parsePrometheusText(text)).not.toThrow();
    const lines = text.split('\n');
    for (const name of [
      'mnemo_http_request_duration_seconds',
      'mnemo_tokens_generated_total',
      'mnemo_queue_depth',
      'mnemo_memory_lookups_total',
      'mnemo_tfjs_tensors',
    ]) {
      expect(lines).toContain(`# TYPE ${name} ${name.endsWith('_total') ? 'counter' : name.endsWith('seconds') ? 'histogram' : 'gauge'}`);
    }
  });

  it('parses strictly, with default process metrics and its own, in two servers of one process', async () => {
    const a = new ServerMetrics();
    const b = new ServerMetrics();
    a.timeToFirstToken.observe(0.03);
    a.timeToFirstToken.observe(2);
    a.completions.inc(1, { outcome: 'finished', finish_reason: 'stop' });
    const fa = parsePrometheusText(await a.render());
    const fb = parsePrometheusText(await b.render());
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(fa.has(name), name).toBe(true);
    }
    expect(fa.get('mnemo_time_to_first_token_seconds')!.type).toBe('histogram');
    expect(sampleValue(fa, 'mnemo_time_to_first_token_seconds_count')).toBe(2);
    expect(sampleValue(fa, 'mnemo_time_to_first_token_seconds_bucket', { le: '0.05' })).toBe(1);
    expect(sampleValue(fa, 'mnemo_completions_total', { outcome: 'finished', finish_reason: 'stop' })).toBe(1);
    expect(sampleValue(fb, 'mnemo_time_to_first_token_seconds_count')).toBe(0);
    expect(() => parsePrometheusText('# TYPE x counter\nx{a="1} 2\n')).toThrow();
    expect(() => parsePrometheusText('y 2\n')).toThrow(/TYPE/);
  });
});
