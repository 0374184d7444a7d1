/**
 * @mnemo/bench: the one benchmark harness every package's `bench` script uses.
 *
 *   const report = new BenchReport('product-keys', { title: 'Product keys vs brute force' });
 *   const t = await measure(() => search(q), { warmup: 2, repeats: 10 });
 *   report.addRow({ N: 4096, 'median ms': t.median, 'queries/s': B / (t.median / 1e3) });
 *   report.write(); // docs/benchmarks/product-keys.{json,md}
 *
 * Timing: `warmup` untimed calls, then `repeats` timed calls (performance.now()); the report
 * keeps median/min/max/mean and every sample. Ratios belong in one run: time ours and the
 * reference inside the same process, one after the other.
 */
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { writeFileAtomic } from '@mnemo/core';
import os from 'node:os';
import path from 'node:path';

export interface MeasureOptions {
  /** untimed calls before timing starts (JIT, caches, lazy allocation) */
  warmup?: number;
  /** timed calls */
  repeats?: number;
  /** keep repeating (beyond `repeats`) until this much time was timed; 0 = off */
  minTimeMs?: number;
  /** hard cap on timed calls when minTimeMs is set */
  maxRepeats?: number;
}

export interface Stats {
  median: number;
  min: number;
  max: number;
  mean: number;
  repeats: number;
  /** every timed sample, milliseconds */
  samples: number[];
}

/** Summary statistics of a list of millisecond samples. */
export function summarize(samples: number[]): Stats {
  if (samples.length === 0) throw new Error('summarize: no samples');
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { median, min: s[0]!, max: s[s.length - 1]!, mean, repeats: s.length, samples };
}

/** Time `fn` (sync or async): warm-up calls, then timed repeats. Milliseconds. */
export async function measure(fn: () => unknown | Promise<unknown>, opts: MeasureOptions = {}): Promise<Stats> {
  const warmup = opts.warmup ?? 2;
  const repeats = Math.max(1, opts.repeats ?? 10);
  const minTime = opts.minTimeMs ?? 0;
  const maxRepeats = Math.max(repeats, opts.maxRepeats ?? 1000);
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  let total = 0;
  while (samples.length < repeats || (total < minTime && samples.length < maxRepeats)) {
    const t0 = performance.now();
    await fn();
    const dt = performance.now() - t0;
    samples.push(dt);
    total += dt;
  }
  return summarize(samples);
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  platform: string;
  node: string;
  date: string;
  commit?: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  let commit: string | undefined;
  try {
    const git = (args: string) => execSync(`git ${args}`, { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    commit = git('rev-parse --short HEAD').trim();
    // uncommitted changes to tracked files outside docs/ (benchmarks rewrite docs/ themselves) mean
    // the numbers come from code that is not the commit: say so
    const changed = git('status --porcelain --untracked-files=no')
      .split('\n')
      .filter((l) => l.trim() && !l.slice(3).startsWith('docs/'));
    if (changed.length) commit += ` + uncommitted changes to ${changed.length} file(s)`;
  } catch {
    commit = undefined;
  }
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.arch()} ${os.release()}`,
    node: process.version,
    date: new Date().toISOString(),
    commit,
  };
}

/** The monorepo root: the nearest ancestor holding turbo.json. */
export function repoRoot(from = process.cwd()): string {
  let dir = path.resolve(from);
  for (;;) {
    if (existsSync(path.join(dir, 'turbo.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(from);
    dir = up;
  }
}

export type Cell = number | string | boolean | null;
export type Row = Record<string, Cell>;

/** Format a number for a markdown table: 3–4 significant digits, thousands kept readable. */
export function fmt(v: Cell): string {
  if (v === null) return '–';
  if (typeof v !== 'number') return String(v);
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (Number.isInteger(v) && a < 1e7) return v.toLocaleString('en-US');
  if (a >= 1e6) return v.toExponential(2);
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2);
  if (a >= 1e-3) return v.toFixed(4);
  return v.toExponential(2);
}

export function markdownTable(rows: Row[], columns?: string[]): string {
  if (rows.length === 0) return '_no rows_\n';
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const head = `| ${cols.join(' | ')} |`;
  const sep = `| ${cols.map(() => '---').join(' | ')} |`;
  const body = rows.map((r) => `| ${cols.map((c) => fmt(r[c] ?? null)).join(' | ')} |`);
  return [head, sep, ...body].join('\n') + '\n';
}

export interface ReportOptions {
  title: string;
  /** what is measured and how, shown above the table */
  description?: string;
  /** the command that reproduces the report */
  command?: string;
  /** folder for the files; default <repo>/docs/benchmarks */
  outDir?: string;
  /** when the run began (epoch ms), for "run took"; default: when the report was made */
  startedAt?: number;
}

/** Rows + notes + machine facts, written as JSON and a markdown table (atomically). */
export class BenchReport {
  readonly rows: Row[] = [];
  readonly notes: string[] = [];
  readonly extra: Record<string, unknown> = {};
  readonly machine = machineInfo();
  private readonly t0: number;

  constructor(
    readonly name: string,
    readonly opts: ReportOptions,
  ) {
    this.t0 = opts.startedAt ?? Date.now();
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) throw new Error(`BenchReport: bad name '${name}'`);
  }

  addRow(row: Row): this {
    this.rows.push(row);
    const line = Object.entries(row)
      .map(([k, v]) => `${k}=${fmt(v)}`)
      .join('  ');
    process.stderr.write(`[${this.name}] ${line}\n`);
    return this;
  }

  note(text: string): this {
    this.notes.push(text);
    return this;
  }

  /** Attach structured data (e.g. fitted growth exponents) to the JSON file. */
  set(key: string, value: unknown): this {
    this.extra[key] = value;
    return this;
  }

  toMarkdown(columns?: string[]): string {
    const m = this.machine;
    const parts = [`# ${this.opts.title}\n`];
    if (this.opts.description) parts.push(`${this.opts.description.trim()}\n`);
    if (this.opts.command) parts.push(`Reproduce: \`${this.opts.command}\`\n`);
    parts.push(
      `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}` +
        `${m.commit ? `, commit ${m.commit}` : ''}; ${m.date.slice(0, 10)}; ` +
        `run took ${((Date.now() - this.t0) / 1000).toFixed(0)} s.\n`,
    );
    parts.push(markdownTable(this.rows, columns));
    if (this.notes.length) parts.push(this.notes.map((n) => `- ${n}`).join('\n') + '\n');
    return parts.join('\n');
  }

  /** Write `<name>.json` and `<name>.md`; returns their paths. */
  write(columns?: string[]): { json: string; md: string } {
    const dir = this.opts.outDir ?? path.join(repoRoot(), 'docs', 'benchmarks');
    mkdirSync(dir, { recursive: true });
    const json = path.join(dir, `${this.name}.json`);
    const md = path.join(dir, `${this.name}.md`);
    const payload = {
      name: this.name,
      title: this.opts.title,
      description: this.opts.description,
      command: this.opts.command,
      machine: this.machine,
      rows: this.rows,
      notes: this.notes,
      ...this.extra,
    };
    writeFileAtomic(json, JSON.stringify(payload, null, 2) + '\n');
    writeFileAtomic(md, this.toMarkdown(columns));
    process.stderr.write(`[${this.name}] wrote ${path.relative(process.cwd(), md)} and .json\n`);
    return { json, md };
  }
}

/** Least-squares slope of log(y) against log(x): the growth exponent (cost ∝ x^slope). */
export function logLogSlope(xs: number[], ys: number[]): number {
  if (xs.length !== ys.length || xs.length < 2) throw new Error('logLogSlope: need ≥ 2 points');
  const lx = xs.map(Math.log);
  const ly = ys.map(Math.log);
  const mx = lx.reduce((a, b) => a + b, 0) / lx.length;
  const my = ly.reduce((a, b) => a + b, 0) / ly.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < lx.length; i++) {
    num += (lx[i]! - mx) * (ly[i]! - my);
    den += (lx[i]! - mx) ** 2;
  }
  return num / den;
}

/** The progress bar lives in @mnemo/core (the trainer and CLIs use it too). */
export { Progress } from '@mnemo/core';
