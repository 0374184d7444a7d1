import { defineConfig } from 'tsup';
import base from '@mnemo/tsup-config';

// @mnemo/bench (progress bar) is a private TypeScript-only workspace package: bundle it in.
export default defineConfig({ ...base, entry: ['src/index.ts', 'src/cli.ts'], noExternal: ['@mnemo/bench'] });
