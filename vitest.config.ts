import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'algorithms/*/test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests bind ports and spawn threads; two cores run two files at a time.
    pool: 'forks',
    maxWorkers: 2,
    // Each worker process runs many files: a fresh process per file spent about 1.5 s of a
    // core loading modules (a fifth of the suite's time). No package keeps module state
    // between instances, so files share nothing but the module cache.
    isolate: false,
  },
});
