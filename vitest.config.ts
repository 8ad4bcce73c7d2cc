import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Tests and docs/examples import the package by its name, as a user does: here, the source.
  resolve: {
    alias: [
      { find: /^hiberlab$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      { find: /^hiberlab\/vitest$/, replacement: fileURLToPath(new URL('./harness/vitest.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests boot emulators of up to 512 MiB; two cores: keep forks few.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 240_000,
    hookTimeout: 120_000,
    reporters: ['default', ['json', { outputFile: '.vitest-results.json' }]],
  },
});
