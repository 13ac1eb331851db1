import { defineConfig } from 'vitest/config';

// Tests resolve workspace packages to their TypeScript sources through the `@wal/source`
// export condition, so a test run needs no prior build and always sees the current code.
const resolve = { conditions: ['@wal/source', 'import', 'module', 'node', 'default'] };
// Tests run in Node, on Vite's server side, which takes its conditions from `ssr.resolve`: Vite's
// defaults there, plus ours (with 'import' too, CommonJS packages such as pg would get ESM files),
// less 'module': it sends the AWS SDK to its bundler-only `dist-es` files, which Node cannot load.
const ssr = { resolve: { conditions: ['@wal/source', 'node', 'development|production'] } };

// Two cores: integration suites each start real servers, so keep them to one worker at a time
// beside the unit tests.
export default defineConfig({
  test: {
    projects: [
      {
        resolve,
        ssr,
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts'],
          exclude: ['**/*.integration.test.ts', '**/node_modules/**'],
          pool: 'forks',
          maxWorkers: 2,
        },
      },
      {
        resolve,
        ssr,
        test: {
          name: 'integration',
          include: ['packages/*/src/**/*.integration.test.ts', 'apps/*/src/**/*.integration.test.ts'],
          pool: 'forks',
          maxWorkers: 2,
          fileParallelism: true,
          testTimeout: 60_000,
          hookTimeout: 120_000,
          globalSetup: ['packages/pg-cluster/src/global-setup.ts'],
        },
      },
    ],
  },
});
