/**
 * A strict parser of the Prometheus text exposition format (0.0.4), for tests: it throws on any
 * line that is not a HELP/TYPE comment or a well-formed sample, on a sample whose family has no
 * TYPE line before it, on a TYPE given twice, and on histograms whose buckets are not cumulative
 * or whose +Inf bucket differs from _count.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(s: string, line: string): number {
  // Prometheus reads values with Go's ParseFloat: NaN and Inf in any letter case (prom-client writes "Nan")
  if (/^\+?inf$/i.test(s)) return Number.POSITIVE_INFINITY;
  if (/^-inf$/i.test(s)) return Number.NEGATIVE_INFINITY;
  if (/^nan$/i.test(s)) return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`bad value "${s}" in: ${line}`);
  return Number(s);
}

function parseLabels(s: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < s.length) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(s.slice(i));
    if (!m) throw new Error(`bad label at ${i} in: ${line}`);
    i += m[0].length;
    let v = '';
    for (;;) {
      if (i >= s.length) throw new Error(`unterminated label value in: ${line}`);
      const c = s[i]!;
      if (c === '"') break;
      if (c === '\\') {
        const n = s[i + 1];
        if (n === 'n') v += '\n';
        else if (n === '\\' || n === '"') v += n;
        else throw new Error(`bad escape in: ${line}`);
        i += 2;
      } else {
        v += c;
        i++;
      }
    }
    if (m[1]! in labels) throw new Error(`label ${m[1]} twice in: ${line}`);
    labels[m[1]!] = v;
    i++; // closing quote
    if (s[i] === ',') i++;
    else if (i !== s.length) throw new Error(`expected , between labels in: ${line}`);
  }
  return labels;
}

function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  if (families.has(name)) return families.get(name);
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const f = families.get(name.slice(0, -suffix.length));
      if (f && (f.type === 'histogram' || f.type === 'summary')) return f;
    }
  }
  return undefined;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const helps = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // plain comment
      const [, kind, name, rest] = m;
      if (!NAME.test(name!)) throw new Error(`bad metric name in: ${line}`);
      if (kind === 'HELP') helps.set(name!, rest!);
      else {
        if (!TYPES.has(rest!)) throw new Error(`bad type in: ${line}`);
        if (families.has(name!)) throw new Error(`TYPE twice for ${name}`);
        families.set(name!, { name: name!, type: rest as Family['type'], help: '', samples: [] });
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!m) throw new Error(`not a sample: ${line}`);
    const f = familyOf(m[1]!, families);
    if (!f) throw new Error(`sample without a TYPE line before it: ${line}`);
    f.samples.push({ name: m[1]!, labels: parseLabels(m[2] ?? '', line), value: parseValue(m[3]!, line) });
  }
  for (const f of families.values()) {
    f.help = helps.get(f.name) ?? '';
    if (f.type === 'histogram') checkHistogram(f);
  }
  return families;
}

function seriesKey(labels: Record<string, string>): string {
  return JSON.stringify(
    Object.entries(labels)
      .filter(([k]) => k !== 'le')
      .sort(),
  );
}

function checkHistogram(f: Family): void {
  const buckets = new Map<string, Array<[number, number]>>();
  const counts = new Map<string, number>();
  for (const s of f.samples) {
    const k = seriesKey(s.labels);
    if (s.name === `${f.name}_bucket`) {
      if (s.labels.le === undefined) throw new Error(`${f.name}: bucket without le`);
      const list = buckets.get(k) ?? [];
      list.push([parseValue(s.labels.le, s.name), s.value]);
      buckets.set(k, list);
    } else if (s.name === `${f.name}_count`) counts.set(k, s.value);
  }
  for (const [k, list] of buckets) {
    for (let i = 1; i < list.length; i++) {
      if (!(list[i]![0] > list[i - 1]![0])) throw new Error(`${f.name}: le not ascending`);
      if (list[i]![1] < list[i - 1]![1]) throw new Error(`${f.name}: buckets not cumulative`);
    }
    const last = list[list.length - 1]!;
    if (last[0] !== Number.POSITIVE_INFINITY) throw new Error(`${f.name}: no +Inf bucket`);
    if (counts.get(k) !== last[1]) throw new Error(`${f.name}: +Inf bucket ${last[1]} != _count ${counts.get(k)}`);
  }
}

/** the value of `name` with exactly these labels (le included for buckets), or undefined */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = familyOf(name, families);
  const want = JSON.stringify(Object.entries(labels).sort());
  return f?.samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value;
}
