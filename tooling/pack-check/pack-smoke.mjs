#!/usr/bin/env node
/**
 * What an npm user meets: pack the libraries, install the tarballs into a fresh project in a temp
 * directory (peer tfjs from the registry), and run each README example as written, as ESM
 * (example.mjs: the README's first ```js block) and as CommonJS (example.cjs: the same body with
 * the README's "CommonJS header" block in place of its import lines). Prints which kernels ran
 * (native addon or the TypeScript fallback) from initBackend's log line.
 * Usage: node tooling/pack-check/pack-smoke.mjs [--expect prebuilt|native|ts]   (after a build: needs
 * dist/). --expect fails the run unless every example reports that kind of memory kernels (CI runs
 * it once as is and once with the compilers made to fail, expecting the prebuilt addon).
 * Exits 1 on a failure.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const LIBS = ['core', 'kernels', 'product-keys', 'memory-layer', 'ultramem', 'model'];
const EXAMPLES = ['product-keys', 'memory-layer', 'model'];

/** The README's ESM example and CommonJS header (the first two ```js blocks). */
export function readmeExamples(readme) {
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  if (blocks.length < 2) throw new Error('expected an ESM example and a CommonJS header (two ```js blocks)');
  const [esm, header] = blocks;
  const body = esm
    .split('\n')
    .filter((l) => !/^import .* from '.*';$/.test(l))
    .join('\n');
  return { esm, cjs: `${header}\n${body}` };
}

const KERNELS = {
  prebuilt: /memory kernels: native, loaded prebuilds\//,
  native: /memory kernels: native/,
  ts: /memory kernels: TypeScript/,
};

function main() {
  const at = process.argv.indexOf('--expect');
  const expect = at > 0 ? process.argv[at + 1] : undefined;
  if (expect !== undefined && !(expect in KERNELS)) throw new Error(`--expect: one of ${Object.keys(KERNELS).join(', ')}, got ${expect}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-pack-smoke-'));
  try {
    const tarballs = LIBS.map((name) => {
      const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], {
        cwd: path.join(root, 'packages', name),
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      return path.join(tmp, JSON.parse(out)[0].filename);
    });
    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), `${JSON.stringify({ name: 'smoke', private: true }, null, 2)}\n`);
    console.log(`[pack-smoke] npm install ${tarballs.map((t) => path.basename(t)).join(' ')}`);
    const inst = spawnSync('npm', ['install', '--no-audit', '--no-fund', ...tarballs], { cwd: app, encoding: 'utf8' });
    if (inst.status !== 0) throw new Error(`npm install failed:\n${inst.stdout}\n${inst.stderr}`);
    const du = spawnSync('du', ['-sm', path.join(app, 'node_modules')], { encoding: 'utf8' });
    console.log(`[pack-smoke] installed: ${du.stdout.split('\t')[0]} MB of node_modules`);
    let failed = 0;
    for (const name of EXAMPLES) {
      const { esm, cjs } = readmeExamples(fs.readFileSync(path.join(root, 'packages', name, 'README.md'), 'utf8'));
      for (const [file, src] of [
        [`${name}.mjs`, esm],
        [`${name}.cjs`, cjs],
      ]) {
        fs.writeFileSync(path.join(app, file), src);
        const r = spawnSync(process.execPath, [file], { cwd: app, encoding: 'utf8', timeout: 300_000 });
        const kernels = /memory kernels: [^\n]*/.exec(`${r.stdout}\n${r.stderr}`)?.[0] ?? '(no backend line)';
        if (r.status === 0 && expect && !KERNELS[expect].test(kernels)) {
          failed++;
          console.log(`[pack-smoke] FAIL ${file}: expected ${expect} memory kernels, got "${kernels}"`);
        } else if (r.status === 0) console.log(`[pack-smoke] ok   ${file}  ${kernels}`);
        else {
          failed++;
          console.log(`[pack-smoke] FAIL ${file} (exit ${r.status ?? r.signal})\n${r.stdout}\n${r.stderr}`);
        }
      }
    }
    if (failed) {
      console.error(`[pack-smoke] ${failed} example(s) failed`);
      process.exitCode = 1;
    } else console.log(`[pack-smoke] ${EXAMPLES.length * 2} README examples ran from the tarballs`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
