import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'common/**/*.test.ts',
      'webhook/**/*.test.ts',
      'init/**/*.test.ts',
      'cli/**/*.test.ts',
      'test/**/*.test.ts',
      'bench/**/*.test.ts',
    ],
    // The end-to-end suite runs on its own: `npm run e2e` (vitest.e2e.config.ts).
    exclude: [...configDefaults.exclude, 'test/e2e/**'],
    testTimeout: 30_000,
    hookTimeout: 180_000,
    // Control-plane and network-namespace suites share the machine's kernel and ports; run files one at a time.
    fileParallelism: false,
  },
});
