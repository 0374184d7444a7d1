// The one tsup build every package uses: `export { default } from '@mnemo/tsup-config';`
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  shims: true, // import.meta.url in the CJS build (native addon and wasm paths)
  target: 'node20',
});
