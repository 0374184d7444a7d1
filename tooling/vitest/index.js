// Shared vitest configuration for every Mnemo package.
//  - `mnemo-source` makes `@mnemo/*` imports resolve to `src/index.ts`, so tests never need a build.
//  - forks, not threads: native addons and the tfjs wasm backend are per-process state.
import { defineConfig, mergeConfig } from 'vitest/config';

export const base = defineConfig({
  resolve: { conditions: ['mnemo-source'] },
  ssr: { resolve: { conditions: ['mnemo-source'], externalConditions: ['mnemo-source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});

/** Merge a package's own settings over the shared base. */
export function mnemoVitest(overrides = {}) {
  return mergeConfig(base, defineConfig(overrides));
}
