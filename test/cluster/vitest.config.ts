// Runs only the test control plane's own smoke test, with the shared cluster
// from global-setup.ts: `npx vitest run --config test/cluster/vitest.config.ts`.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/cluster/**/*.test.ts'],
    globalSetup: ['test/cluster/global-setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 1_800_000,
    fileParallelism: false,
  },
});
