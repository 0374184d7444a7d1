#!/usr/bin/env node
/**
 * Builds the CUDA addon native/cuda/build/Release/mnemo_cuda.node when `nvcc` is on PATH.
 *
 *   nvcc -c *.cu   for sm_80, sm_90 (SASS) + compute_90 (PTX, JIT on newer GPUs)
 *   nvcc -c addon.cc (host compiler, N-API headers of the running node)
 *   nvcc -shared -cudart static → mnemo_cuda.node (no libcudart.so needed at run time)
 *
 * Never fails an install: without nvcc or node headers it says so and exits 0; a failed
 * compile prints the compiler output and a warning, and exits 0 (the CUDA kernels are then
 * reported "not built" by cudaStatus()). Skips the work when the addon is newer than every
 * source. MNEMO_SKIP_CUDA=1 skips it; MNEMO_CUDA_STRICT=1 makes failures exit 1 (for CI jobs
 * that must prove the sources compile).
 */
'use strict';

const { execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const here = __dirname;
const buildDir = path.join(here, 'build');
const objDir = path.join(buildDir, 'obj');
const target = path.join(buildDir, 'Release', 'mnemo_cuda.node');
const strict = process.env.MNEMO_CUDA_STRICT === '1';

// The radix-sort translation unit (bwd) is the slow one: listed first so it starts first.
const CUDA_SOURCES = ['embedding_bag_bwd.cu', 'embedding_bag_fwd.cu', 'pk_topk.cu'];
const HOST_SOURCES = ['addon.cc'];
const HEADERS = ['common.cuh', 'kernels.h'];
const GENCODE = ['-gencode=arch=compute_80,code=sm_80', '-gencode=arch=compute_90,code=sm_90', '-gencode=arch=compute_90,code=compute_90'];
const HOST_FLAGS = ['-Xcompiler=-fPIC,-fvisibility=hidden'];

function log(msg) {
  console.log(`[mnemo cuda] ${msg}`);
}

function giveUp(msg) {
  console.warn(`[mnemo cuda] warning: ${msg}; CUDA kernels will report "not built" (the CPU kernels are unaffected)`);
  process.exit(strict ? 1 : 0);
}

function findNvcc() {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, 'nvcc');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

/** Directory holding node_api.h for the node that runs this script. */
function findNodeHeaders() {
  const candidates = [
    process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, 'include', 'node'),
    path.resolve(process.execPath, '..', '..', 'include', 'node'),
    path.join(os.homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ].filter(Boolean);
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'node_api.h')));
}

function upToDate() {
  if (!fs.existsSync(target)) return false;
  const built = fs.statSync(target).mtimeMs;
  const inputs = [...CUDA_SOURCES, ...HOST_SOURCES, ...HEADERS, 'build.cjs'].map((f) => path.join(here, f));
  return inputs.every((f) => fs.statSync(f).mtimeMs <= built);
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: here, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trim();
      if (err) reject(new Error(`${path.basename(cmd)} ${args.join(' ')}\n${output}`));
      else resolve(output);
    });
  });
}

/** Run the jobs at most `width` at a time; rejects with the first failure. */
async function parallel(jobs, width) {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, worker));
}

async function main() {
  if (process.env.MNEMO_SKIP_CUDA === '1') {
    log('MNEMO_SKIP_CUDA=1: not building the CUDA addon');
    return;
  }
  if (process.platform !== 'linux') {
    log(`CUDA addon build is supported on linux only (this is ${process.platform}); skipped`);
    return;
  }
  const nvcc = findNvcc();
  if (!nvcc) {
    log('nvcc is not on PATH: CUDA addon not built (CPU kernels only)');
    return;
  }
  const nodeHeaders = findNodeHeaders();
  if (!nodeHeaders) giveUp('node headers (node_api.h) not found; set npm_config_nodedir');
  if (upToDate()) {
    log(`up to date: ${path.relative(process.cwd(), target)}`);
    return;
  }
  let version = '';
  try {
    version = execFileSync(nvcc, ['--version'], { encoding: 'utf8' }).trim().split('\n').pop();
  } catch {}
  log(`building with ${nvcc} (${version}), node headers ${nodeHeaders}`);
  fs.mkdirSync(objDir, { recursive: true });
  fs.mkdirSync(path.dirname(target), { recursive: true });

  const started = Date.now();
  const objects = [];
  const jobs = [];
  for (const src of CUDA_SOURCES) {
    const obj = path.join(objDir, src.replace(/\.cu$/, '.o'));
    objects.push(obj);
    jobs.push(() => run(nvcc, ['-c', src, '-o', obj, '-O3', '-std=c++17', ...GENCODE, ...HOST_FLAGS]));
  }
  for (const src of HOST_SOURCES) {
    const obj = path.join(objDir, src.replace(/\.cc$/, '.o'));
    objects.push(obj);
    jobs.push(() => run(nvcc, ['-c', src, '-o', obj, '-O2', '-std=c++17', `-I${nodeHeaders}`, `-DNAPI_VERSION=8`, ...HOST_FLAGS]));
  }
  const width = Math.max(1, Math.min(4, os.availableParallelism?.() ?? os.cpus().length));
  try {
    await parallel(jobs, width);
    const tmp = `${target}.tmp`;
    await run(nvcc, ['-shared', '-cudart=static', ...GENCODE, '-o', tmp, ...objects, '-Xlinker=--exclude-libs,ALL']);
    fs.renameSync(tmp, target); // atomic: a half-written addon is never loaded
  } catch (err) {
    console.warn(String(err.message ?? err));
    giveUp('compiling the CUDA addon failed');
  }
  log(`built ${path.relative(process.cwd(), target)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((err) => giveUp(String(err?.stack ?? err)));
