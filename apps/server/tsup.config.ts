import { defineConfig } from 'tsup';
import base from '@mnemo/tsup-config';

export default defineConfig({ ...base, entry: ['src/index.ts', 'src/cli.ts', 'src/memory-cli.ts'] });
