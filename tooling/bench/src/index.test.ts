import { execSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BenchReport, fmt, logLogSlope, machineInfo, markdownTable, measure, summarize } from './index';

describe('bench harness', () => {
  it('summarizes samples', () => {
    const s = summarize([5, 1, 3, 2, 4]);
    expect(s).toMatchObject({ median: 3, min: 1, max: 5, mean: 3, repeats: 5 });
    expect(summarize([1, 2, 3, 10]).median).toBe(2.5);
    expect(() => summarize([])).toThrow(/no samples/);
  });

  it('runs warm-up then the requested repeats', async () => {
    let calls = 0;
    const s = await measure(() => void calls++, { warmup: 3, repeats: 7 });
    expect(calls).toBe(10);
    expect(s.repeats).toBe(7);
    expect(s.min).toBeGreaterThanOrEqual(0);
  });

  it('fits growth exponents', () => {
    const xs = [1, 4, 16, 64];
    expect(
      logLogSlope(
        xs,
        xs.map((x) => 3 * Math.sqrt(x)),
      ),
    ).toBeCloseTo(0.5, 10);
    expect(
      logLogSlope(
        xs,
        xs.map((x) => x),
      ),
    ).toBeCloseTo(1, 10);
  });

  it('writes JSON and markdown', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-'));
    const r = new BenchReport('unit', { title: 'Unit', outDir: dir });
    r.addRow({ N: 4096, ms: 1.23456, ok: true }).note('a note');
    const { json, md } = r.write();
    const parsed = JSON.parse(readFileSync(json, 'utf8'));
    expect(parsed.rows).toEqual([{ N: 4096, ms: 1.23456, ok: true }]);
    const text = readFileSync(md, 'utf8');
    expect(text).toContain('| N | ms | ok |');
    expect(text).toContain('| 4,096 | 1.23 | true |');
    expect(text).toContain('- a note');
    expect(() => new BenchReport('Bad Name', { title: 'x' })).toThrow(/bad name/);
  });

  it('formats numbers for tables', () => {
    expect(fmt(1234567)).toBe('1,234,567');
    expect(fmt(0.000012)).toBe('1.20e-5');
    expect(fmt(null)).toBe('–');
    expect(markdownTable([])).toContain('no rows');
  });
});

describe('machineInfo().commit', () => {
  it('names uncommitted changes outside docs/, which benchmarks rewrite themselves', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mnemo-commit-'));
    const cwd = process.cwd();
    const git = (args: string) => execSync(`git ${args}`, { cwd: dir, stdio: 'pipe' }).toString().trim();
    try {
      git('init -q');
      mkdirSync(path.join(dir, 'docs'));
      writeFileSync(path.join(dir, 'a.ts'), '1');
      writeFileSync(path.join(dir, 'docs', 'b.md'), '1');
      git('add -A');
      git('-c user.name=t -c user.email=t@t commit -q -m x');
      const head = git('rev-parse --short HEAD');
      process.chdir(dir);
      expect(machineInfo().commit).toBe(head);
      writeFileSync(path.join(dir, 'docs', 'b.md'), '2');
      writeFileSync(path.join(dir, 'new.ts'), 'untracked');
      expect(machineInfo().commit).toBe(head);
      writeFileSync(path.join(dir, 'a.ts'), '2');
      expect(machineInfo().commit).toBe(`${head} + uncommitted changes to 1 file(s)`);
    } finally {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
