import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '@mnemo/core';
import { describe, expect, it } from 'vitest';
import { readQaFile } from './qa';

const write = (text: string) => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'qa-')), 'qa.jsonl');
  writeFileSync(file, text);
  return file;
};

describe('readQaFile (--eval-qa)', () => {
  it('reads {"prompt","answer"} lines, skipping blank lines and ignoring extra fields', () => {
    const qa = readQaFile(
      write('{"prompt":"The capital of Velmora is","answer":"Qantir"}\n\n{"prompt":"Ahab hunts","answer":"Moby Dick","id":7}\n'),
    );
    expect(qa).toEqual([
      { prompt: 'The capital of Velmora is', answer: 'Qantir' },
      { prompt: 'Ahab hunts', answer: 'Moby Dick' },
    ]);
  });

  it('errors name file:line and the field', () => {
    const ok = '{"prompt":"p","answer":"a"}';
    const cases: Array<[string, RegExp]> = [
      [`${ok}\n{"prompt":"p"}\n`, /qa\.jsonl:2: answer: expected a non-empty string/],
      [`${ok}\n${ok}\n{"prompt":"","answer":"a"}\n`, /qa\.jsonl:3: prompt/],
      [`{"prompt":5,"answer":"a"}\n`, /qa\.jsonl:1: prompt/],
      [`${ok}\n{"prompt": "p", "answer": "a"\n`, /qa\.jsonl:2: not JSON/],
      ['null\n', /qa\.jsonl:1: prompt/],
    ];
    for (const [text, re] of cases) {
      expect(() => readQaFile(write(text))).toThrow(re);
      expect(() => readQaFile(write(text))).toThrow(ConfigError);
    }
  });

  it('an empty or missing file is an error naming eval.qaFile', () => {
    expect(() => readQaFile(write('\n\n'))).toThrow(/eval\.qaFile: .*no \{"prompt","answer"\} lines/);
    expect(() => readQaFile('/nonexistent/qa.jsonl')).toThrow(/eval\.qaFile: cannot read/);
  });
});
