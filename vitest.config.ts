import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * Files that assert on the one shared WASM instance's memory: they need a module graph of
 * their own, since forests left by files that ran before them in the same worker change how
 * the instance's memory grows.
 */
const OWN_KERNEL = ['test/forest/api.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most test files spend their time waiting on child processes (kinesalite, moto_server,
    // the built CLI, Chromium), not computing: two files at a time keep a 2-core machine busy
    // where vitest's default (cores - 1) would run one.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    projects: [
      {
        extends: true,
        test: {
          name: 'shared',
          include: ['test/**/*.test.ts'],
          exclude: OWN_KERNEL,
          // One module graph per worker process instead of one per test file: the AWS SDK, the
          // WASM kernel and the sources load once per worker (about half the suite's import
          // time). These files share nothing through modules but the kernel instance, and none
          // of them asserts on its memory; every file starts and stops its own servers.
          isolate: false,
        },
      },
      { extends: true, test: { name: 'own-kernel', include: OWN_KERNEL, isolate: true } },
    ],
  },
});
