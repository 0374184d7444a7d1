/**
 * pack-smoke's README reader: the libraries' READMEs hold an ESM example and a CommonJS header,
 * and the CommonJS file it builds has no import line left. (.ci/run runs the smoke itself: it
 * needs the registry for the peer tfjs packages.)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain .mjs script, no types
import { readmeExamples } from '../pack-smoke.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('readmeExamples', () => {
  for (const name of ['product-keys', 'memory-layer', 'model']) {
    it(`${name}: an ESM example and a CommonJS version with require() and no import`, () => {
      const { esm, cjs } = readmeExamples(readFileSync(path.join(root, 'packages', name, 'README.md'), 'utf8'));
      expect(esm).toMatch(/^import .* from '@mnemo\//m);
      expect(cjs).toMatch(/require\('@mnemo\//);
      expect(cjs).not.toMatch(/^import /m);
    });
  }
  it('refuses a README without the two blocks', () => {
    expect(() => readmeExamples('# x\n```js\nimport a from "b";\n```\n')).toThrow(/two ```js blocks/);
  });
});
