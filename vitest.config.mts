import { defineConfig } from 'vitest/config';

// Six projects, so a unit run starts nothing: unit (pure), client (the auth client's own unit
// tests, fake fetch), integration (dynalite), package (the CloudFormation `serverless package`
// writes), e2e (dynalite + serverless-offline over real HTTP, and `serverless invoke local`),
// browser (the client over HTTP and the example page in Chromium, against a stack of their own
// with short-lived access tokens).
export default defineConfig({
  test: {
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', LOG_LEVEL: 'warn' },
    projects: [
      { test: { name: 'unit', include: ['tests/unit/**/*.test.ts'] } },
      { test: { name: 'client', include: ['client/test/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          // The services' metrics lines (EMF on stdout) would only be noise here; unit and e2e check them.
          env: { POWERTOOLS_METRICS_DISABLED: 'true' },
          globalSetup: ['tests/support/dynamo-setup.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'package',
          include: ['tests/package/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 180_000,
          // After the others: `serverless package` rewrites .serverless/, which a concurrent
          // `serverless invoke local` of the e2e project must not see half-written.
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          globalSetup: ['tests/support/api-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'browser',
          include: ['tests/browser/**/*.test.ts', 'tests/client/**/*.test.ts'],
          globalSetup: ['tests/support/client-stack-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // After e2e: a second stack and Chromium beside e2e's 200-request load test would starve
          // its single dynalite on 2 cores (503s past the request deadline). Beside package instead.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
