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
    // core loading modules (a fifth of the suite's time). Files in one worker share the
    // module cache; Arteria keeps no global state, so a test that leaves module state or a
    // process listener behind is a fault of that test (the setup file fails a file that
    // leaves a signal or error listener).
    isolate: false,
    setupFiles: ['packages/testing/src/vitest-setup.ts'],
  },
});
