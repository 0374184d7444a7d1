import { defineConfig } from 'tsup';
import base from '@mnemo/tsup-config';

// parallel-worker: the thread of `--memory-parallel P` (local backend), started by file name.
// @mnemo/bench (progress bar) is a private TypeScript-only workspace package: bundle it in.
export default defineConfig({ ...base, entry: ['src/index.ts', 'src/cli.ts', 'src/parallel-worker.ts'], noExternal: ['@mnemo/bench'] });
