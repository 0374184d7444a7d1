import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain .mjs script, no types
import { checkPackageAsync as checkPackage, publicPackageDirs, tarballProblems } from '../check-tarballs.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-pack-check-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const goodPkg = {
  name: 'fixture-pkg',
  version: '1.0.0',
  license: 'MIT',
  engines: { node: '>=20' },
  repository: { type: 'git', url: 'git+https://example.invalid/x.git', directory: 'packages/x' },
  main: './dist/index.cjs',
  module: './dist/index.js',
  types: './dist/index.d.ts',
};

/** A package directory on disk with the given files (path → content). */
function fixture(name: string, pkg: object, files: Record<string, string>): string {
  const dir = path.join(tmp, name);
  for (const [rel, body] of Object.entries({ 'package.json': JSON.stringify(pkg), ...files })) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), body);
  }
  return dir;
}

const complete = {
  LICENSE: 'MIT',
  'README.md': '# x',
  'dist/index.js': 'export {}',
  'dist/index.cjs': '',
  'dist/index.d.ts': 'export {}',
};

describe('check-tarballs', () => {
  it('passes a complete package, and a .node binary under prebuilds/', async () => {
    const dir = fixture('good', goodPkg, { ...complete, 'prebuilds/linux-x64/addon.node': 'bin' });
    const r = await checkPackage(dir);
    expect(r.files).toContain('prebuilds/linux-x64/addon.node');
    expect(r.problems).toEqual([]);
  });

  it('fails a tarball that holds .o files, build/ outputs or a stray .node', async () => {
    const dir = fixture('bad', goodPkg, {
      ...complete,
      'native/cuda/build/obj/addon.o': 'obj',
      'native/cuda/build/Release/mnemo_cuda.node': 'bin',
      'native/stale.node': 'bin',
      'native/kernel.obj': 'obj',
    });
    const problems: string[] = (await checkPackage(dir)).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        'object file in tarball: native/cuda/build/obj/addon.o',
        'build/ output in tarball: native/cuda/build/Release/mnemo_cuda.node',
        'object file in tarball: native/kernel.obj',
        '.node binary outside prebuilds/: native/stale.node',
      ]),
    );
    expect(problems).toHaveLength(4);
  });

  it('fails a package without LICENSE, README, dist or metadata', async () => {
    const dir = fixture('bare', { name: 'bare-pkg', version: '1.0.0', main: './dist/index.cjs' }, { 'src/a.js': '' });
    expect((await checkPackage(dir)).problems).toEqual([
      'missing LICENSE',
      'missing README.md',
      'missing dist/ (build before packing)',
      'missing main file ./dist/index.cjs',
      'package.json: no license',
      'package.json: no engines.node',
      'package.json: repository needs url and directory',
    ]);
  });

  it('reads a listing without packing: build/ only counts as a directory', async () => {
    expect(
      tarballProblems(goodPkg, [
        'LICENSE',
        'README.md',
        'package.json',
        'dist/index.js',
        'dist/index.cjs',
        'dist/index.d.ts',
        'dist/build.js',
      ]),
    ).toEqual([]);
  });

  it('every public package under packages/ packs clean (needs the build)', async () => {
    const dirs: string[] = publicPackageDirs();
    expect(dirs.length).toBeGreaterThanOrEqual(8);
    for (const dir of dirs) {
      const r = await checkPackage(dir);
      expect({ name: r.name, problems: r.problems }).toEqual({ name: r.name, problems: [] });
    }
  });
});
