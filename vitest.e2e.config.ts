import { defineConfig } from 'vitest/config';

// `npm run e2e`: the end-to-end suite, against the cluster E2E_KUBECONFIG (or KUBECONFIG) names, else a local node
// that test/e2e/global-setup.ts starts once for all files and stops afterwards.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    globalSetup: ['test/e2e/global-setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
});
