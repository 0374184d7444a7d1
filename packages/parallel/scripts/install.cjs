#!/usr/bin/env node
/**
 * Install step of @mnemo/parallel: build the MPI addon (native/mpi.c → build/mnemo_mpi.node) with
 * `mpicc` when OpenMPI's compiler wrapper and node's headers are present; otherwise say why and
 * exit 0 — the `local` backend needs no addon. `npm rebuild @mnemo/parallel` retries;
 * MNEMO_SKIP_MPI=1 skips.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const src = path.join(root, 'native', 'mpi.c');
const out = path.join(root, 'build', 'mnemo_mpi.node');

function nodeInclude() {
  const dirs = [
    process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, 'include', 'node'),
    path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
  ].filter(Boolean);
  return dirs.find((d) => fs.existsSync(path.join(d, 'node_api.h'))) ?? null;
}

function main() {
  if (process.env.MNEMO_SKIP_MPI === '1') return console.log('[mnemo parallel] MNEMO_SKIP_MPI=1: not building the MPI addon');
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs > fs.statSync(src).mtimeMs)
    return console.log('[mnemo parallel] MPI addon up to date');
  const which = spawnSync('mpicc', ['--showme:version'], { encoding: 'utf8' });
  if (which.error || which.status !== 0) {
    return console.log(
      '[mnemo parallel] mpicc not found: the mpi backend is unavailable (apt-get install openmpi-bin libopenmpi-dev); the local backend works',
    );
  }
  const inc = nodeInclude();
  if (!inc) return console.log('[mnemo parallel] node headers (node_api.h) not found: the mpi backend is unavailable');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync(
    'mpicc',
    ['-O2', '-shared', '-fPIC', '-std=c11', '-D_POSIX_C_SOURCE=200809L', '-DNAPI_VERSION=8', `-I${inc}`, src, '-o', tmp],
    {
      stdio: 'inherit',
    },
  );
  if (r.status !== 0) {
    fs.rmSync(tmp, { force: true });
    return console.warn(`[mnemo parallel] WARNING: the MPI addon did not build (mpicc exit ${r.status}); the mpi backend is unavailable`);
  }
  fs.renameSync(tmp, out);
  console.log('[mnemo parallel] MPI addon built: build/mnemo_mpi.node');
}

try {
  main();
} catch (e) {
  console.warn(`[mnemo parallel] WARNING: MPI addon step failed (${e.message}); the local backend still works`);
}
