/** `--eval-qa FILE`: JSONL lines `{"prompt": "...", "answer": "..."}` for fact-recall evaluation. */
import { readFileSync } from 'node:fs';
import { ConfigError } from '@mnemo/core';

export interface QaPair {
  prompt: string;
  answer: string;
}

export function readQaFile(file: string): QaPair[] {
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('eval.qaFile', `cannot read ${file}: ${(e as Error).message}`);
  }
  const out: QaPair[] = [];
  raw.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new ConfigError(`${file}:${i + 1}`, `not JSON (${(e as Error).message})`);
    }
    for (const field of ['prompt', 'answer'] as const) {
      if (typeof o?.[field] !== 'string' || (o[field] as string).length === 0) {
        throw new ConfigError(`${file}:${i + 1}: ${field}`, 'expected a non-empty string');
      }
    }
    out.push({ prompt: o.prompt as string, answer: o.answer as string });
  });
  if (out.length === 0) throw new ConfigError('eval.qaFile', `${file} has no {"prompt","answer"} lines`);
  return out;
}
