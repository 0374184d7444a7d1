import base from '@mnemo/tsup-config';
import { defineConfig } from 'tsup';

// pool-service-worker: the thread a PoolService starts by file name (dist/pool-service-worker.js)
export default defineConfig({ ...base, entry: ['src/index.ts', 'src/pool-service-worker.ts'] });
