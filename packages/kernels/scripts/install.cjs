#!/usr/bin/env node
/**
 * Install step of @mnemo/kernels: make the CPU addon available, never fail the install.
 *
 *   1. a prebuilt addon for this platform under prebuilds/ (node-gyp-build layout) → done;
 *   2. else `node-gyp rebuild` (npm's bundled node-gyp, or one on PATH) → build/Release/mnemo_cpu.node;
 *   3. on failure: a clear warning that the TypeScript kernels will run instead; exit 0.
 * Then, when native/cuda/build.cjs exists and `nvcc` is on PATH, it builds the CUDA addon
 * (its own failures only warn). MNEMO_SKIP_NATIVE=1 skips the CPU build.
 */
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function log(msg) {
  console.log(`[mnemo kernels] ${msg}`);
}

/** The local build exists but a C++ source or binding.gyp is newer than it. */
function buildIsStale() {
  const built = path.join(root, 'build', 'Release', 'mnemo_cpu.node');
  if (!fs.existsSync(built)) return false;
  const t = fs.statSync(built).mtimeMs;
  const dir = path.join(root, 'native', 'cpu');
  const sources = [path.join(root, 'binding.gyp'), ...fs.readdirSync(dir).map((f) => path.join(dir, f))];
  return sources.some((f) => fs.statSync(f).mtimeMs > t);
}

function hasPrebuild() {
  try {
    require('node-gyp-build').path(root);
    return true;
  } catch {
    return false;
  }
}

/** Command line that runs node-gyp: npm's own copy when npm runs us, else one on PATH. */
function nodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const npmExec = process.env.npm_execpath;
  if (npmExec) candidates.push(path.join(path.dirname(npmExec), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const npmBin = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' });
  if (npmBin.status === 0) {
    candidates.push(path.join(npmBin.stdout.trim(), 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  for (const c of candidates) if (fs.existsSync(c)) return [process.execPath, c];
  return ['node-gyp'];
}

function buildCpu() {
  if (process.env.MNEMO_SKIP_NATIVE === '1') {
    log('MNEMO_SKIP_NATIVE=1: not building the CPU addon; the TypeScript kernels will run');
    return;
  }
  if (hasPrebuild() && !buildIsStale()) {
    log('CPU addon found (prebuilt or already built and up to date)');
    return;
  }
  const [cmd, ...pre] = nodeGyp();
  log('building the CPU addon with node-gyp …');
  const args = [...pre, 'rebuild'];
  // Build against the running node's own headers when they are installed (no download needed).
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) {
    args.push(`--nodedir=${prefix}`);
  }
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env });
  if (r.status === 0 && hasPrebuild()) {
    log('CPU addon built: build/Release/mnemo_cpu.node');
    return;
  }
  console.warn(
    '[mnemo kernels] WARNING: the CPU addon did not build ' +
      `(${r.error ? r.error.message : `node-gyp exit ${r.status}`}). ` +
      '@mnemo/kernels will use its TypeScript kernels (correct, slower). ' +
      'Install a C++ toolchain (g++/clang, make, python3) and run `npm rebuild @mnemo/kernels` to get the native ones.',
  );
}

function buildCuda() {
  const script = path.join(root, 'native', 'cuda', 'build.cjs');
  if (!fs.existsSync(script)) return;
  const which = spawnSync(process.platform === 'win32' ? 'where' : 'which', ['nvcc'], { encoding: 'utf8' });
  if (which.status !== 0) return;
  const r = spawnSync(process.execPath, [script], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) console.warn('[mnemo kernels] WARNING: the CUDA addon build failed; CUDA kernels are unavailable');
}

try {
  buildCpu();
} catch (e) {
  console.warn(`[mnemo kernels] WARNING: CPU addon step failed (${e.message}); the TypeScript kernels will run`);
}
try {
  buildCuda();
} catch (e) {
  console.warn(`[mnemo kernels] WARNING: CUDA addon step failed (${e.message})`);
}
