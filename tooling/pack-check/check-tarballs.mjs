#!/usr/bin/env node
/**
 * Checks what `npm pack` would publish for every public package under packages/*:
 *   - no build outputs: object files (`.o`, `.obj`), anything under a `build/` directory, and no
 *     `.node` binary outside an intended `prebuilds/` directory (a packed local build would be
 *     taken for an up-to-date addon on the user's machine);
 *   - the files a user needs: LICENSE, README.md, and the entry points that package.json names
 *     (main, module, types: the dist/ files);
 *   - the metadata npm shows: license, engines.node, repository with its directory.
 * Usage: node tooling/pack-check/check-tarballs.mjs [package dir …]   (default: packages/*)
 * Exits 1 and names each problem when one package fails. Needs a build first (dist/).
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const PACK_ARGS = ['pack', '--dry-run', '--json', '--ignore-scripts'];

function listingOf(out) {
  const [entry] = JSON.parse(out);
  return { name: entry.name, size: entry.size, unpackedSize: entry.unpackedSize, files: entry.files.map((f) => f.path) };
}

/** npm's dry-run listing of a package directory: { name, size, unpackedSize, files: string[] }. */
export function packListing(dir) {
  return listingOf(execFileSync('npm', PACK_ARGS, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** packListing without blocking the event loop (tests: a blocked vitest worker misses its RPC). */
export async function packListingAsync(dir) {
  const { stdout } = await promisify(execFile)('npm', PACK_ARGS, { cwd: dir, encoding: 'utf8' });
  return listingOf(stdout);
}

/** Problems of one package given its package.json and the paths its tarball holds. */
export function tarballProblems(pkg, files) {
  const problems = [];
  for (const f of files) {
    const parts = f.split('/');
    if (/\.(o|obj)$/.test(f)) problems.push(`object file in tarball: ${f}`);
    else if (parts.slice(0, -1).includes('build')) problems.push(`build/ output in tarball: ${f}`);
    else if (f.endsWith('.node') && parts[0] !== 'prebuilds') problems.push(`.node binary outside prebuilds/: ${f}`);
  }
  const has = new Set(files);
  for (const need of ['LICENSE', 'README.md', 'package.json']) {
    if (!has.has(need)) problems.push(`missing ${need}`);
  }
  if (!files.some((f) => f.startsWith('dist/'))) problems.push('missing dist/ (build before packing)');
  for (const field of ['main', 'module', 'types']) {
    const target = pkg[field];
    if (target && !has.has(path.posix.normalize(target))) problems.push(`missing ${field} file ${target}`);
  }
  if (!pkg.license) problems.push('package.json: no license');
  if (!pkg.engines?.node) problems.push('package.json: no engines.node');
  if (!pkg.repository?.url || !pkg.repository?.directory) {
    problems.push('package.json: repository needs url and directory');
  }
  return problems;
}

/** Pack-list one package directory and check it. */
export function checkPackage(dir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const listing = packListing(dir);
  return { ...listing, problems: tarballProblems(pkg, listing.files) };
}

/** checkPackage, asynchronously. */
export async function checkPackageAsync(dir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const listing = await packListingAsync(dir);
  return { ...listing, problems: tarballProblems(pkg, listing.files) };
}

/** The public (not private) package directories under packages/. */
export function publicPackageDirs(root = repoRoot) {
  const base = path.join(root, 'packages');
  return fs
    .readdirSync(base)
    .map((d) => path.join(base, d))
    .filter((d) => {
      const f = path.join(d, 'package.json');
      return fs.existsSync(f) && !JSON.parse(fs.readFileSync(f, 'utf8')).private;
    });
}

function main(argv) {
  const dirs = argv.length > 0 ? argv.map((d) => path.resolve(d)) : publicPackageDirs();
  let failed = 0;
  for (const dir of dirs) {
    const r = checkPackage(dir);
    const kb = (n) => `${(n / 1024).toFixed(1)} kB`;
    console.log(`${r.name}: ${r.files.length} files, ${kb(r.size)} packed, ${kb(r.unpackedSize)} unpacked`);
    for (const p of r.problems) console.log(`  FAIL ${p}`);
    if (r.problems.length > 0) failed++;
  }
  if (failed > 0) {
    console.error(`check-tarballs: ${failed} of ${dirs.length} packages fail`);
    process.exit(1);
  }
  console.log(`check-tarballs: ${dirs.length} packages ok`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
