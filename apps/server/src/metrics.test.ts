import { describe, expect, it } from 'vitest';
import { Counter, Gauge, Histogram, ServerMetrics } from './metrics';

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

  it('gauges read their live source at scrape time', () => {
    let depth = 3;
    const m = new ServerMetrics();
    m.bind({ queue: () => depth });
    expect(m.render()).toContain('mnemo_queue_depth 3');
    depth = 7;
    expect(m.render()).toContain('mnemo_queue_depth 7');
    const g = new Gauge('g', 'g');
    g.set(2.5);
    expect(g.render()).toContain('g 2.5');
  });

  it('every line of the server exposition is a comment or `name{labels} value`', () => {
    const m = new ServerMetrics();
    m.requestDuration.observe(0.2, { method: 'POST', route: '/v1/completions', status: '200' });
    m.tokensGenerated.inc(5);
    const lines = m.render().trim().split('\n');
    for (const l of lines) {
      expect(l).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [-+\d.e]+|\w+(\{[^}]*\})? \+Inf)$/);
    }
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
});
