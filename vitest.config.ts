import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most test files spend their time waiting on child processes (kinesalite, moto_server,
    // the built CLI, Chromium), not computing: two files at a time keep a 2-core machine busy
    // where vitest's default (cores - 1) would run one.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // One module graph per worker process instead of one per test file: the AWS SDK, the
    // WASM kernel and the sources load once per worker (about half the suite's import time).
    // Test files share no state through modules (no mocks, no module-level registries), and
    // every file starts and stops its own servers.
    isolate: false,
  },
});
