/**
 * A user's --data is never cut silently: trained whole when data.maxChars is unset, cut with a
 * warning that says how much when it is set (a 748 kB file, above the old silent 400,000 cap).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTrainerConfig } from '../config';
import { BUNDLED_CHARS, prepareData } from '../train';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'mnemo-train-limit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// 748,000 characters of distinct lines
const file = path.join(tmp, 'big.txt');
const line = (i: number) => `line ${String(i).padStart(6, '0')} of the user's own training text, kept whole.\n`;
let text = '';
for (let i = 0; text.length < 748_000; i++) text += line(i);
text = text.slice(0, 748_000);
writeFileSync(file, text);

const base = { model: { dim: 32, layers: 1, heads: 2, ffn: ['dense'] }, train: { steps: 1 } };

describe('data.maxChars', () => {
  it('unset: a 748 kB --data file is trained whole, without a warning', () => {
    const warnings: string[] = [];
    const d = prepareData(parseTrainerConfig({ ...base, data: { path: file } }), (m) => warnings.push(m));
    expect(d.trainText.length + d.valText.length).toBe(748_000);
    expect(d.trainText + d.valText).toBe(text);
    expect(warnings).toEqual([]);
  });

  it('set below the file: cut, with a warning that says how much', () => {
    const warnings: string[] = [];
    const d = prepareData(parseTrainerConfig({ ...base, data: { path: file, maxChars: 400_000 } }), (m) => warnings.push(m));
    expect(d.trainText.length + d.valText.length).toBe(400_000);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(file);
    expect(warnings[0]).toContain('748,000 characters');
    expect(warnings[0]).toContain('leaves out 348,000 (46.5%)');
    expect(warnings[0]).toMatch(/Raise or remove data\.maxChars/);
  });

  it('the bundled Moby Dick (no --data) keeps its first 400,000 characters, as before', () => {
    const warnings: string[] = [];
    const d = prepareData(parseTrainerConfig(base), (m) => warnings.push(m));
    expect(d.trainText.length + d.valText.length).toBe(BUNDLED_CHARS);
    expect(warnings).toEqual([]);
  });
});
