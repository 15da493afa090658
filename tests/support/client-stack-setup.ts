import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { serveExample } from '../../scripts/example-server.js';
import { PROJECT_ROOT } from '../../scripts/local-stack.js';
import { ACCESS_TOKEN_TTL_SECONDS, CLIENT_STAGE } from './client-stack.js';
import { TEST_BCRYPT_COST } from './context.js';
import { startTestApi } from './test-api.js';

/**
 * One stack for the client's tests and the example page's (the `browser` project): the page served
 * on a free loopback port, and an API that allows that origin alone (CORS_ORIGINS), with access
 * tokens that expire within seconds. Each test file seeds its own users.
 */
export default async function setup(project: TestProject) {
  const page = await serveExample({ host: '127.0.0.1', port: 0 });
  let api;
  try {
    api = await startTestApi({
      stage: CLIENT_STAGE,
      env: {
        // Keys given directly, as `npm start` gives them: the key rings in SSM are the e2e project's.
        JWT_SECRET: randomBytes(48).toString('base64url'),
        MFA_KEY: randomBytes(48).toString('base64url'),
        BCRYPT_COST: String(TEST_BCRYPT_COST),
        ACCESS_TOKEN_TTL_SECONDS: String(ACCESS_TOKEN_TTL_SECONDS),
        CORS_ORIGINS: page.origin,
        // Admins enrol at sign-in (the page's enrolment test); users may choose.
        MFA_REQUIRED_ROLES: 'admin',
        // As the e2e stack: one dynalite on a 2-core machine queues a burst for seconds.
        STORE_DEADLINE_FAST_MS: '9000',
        STORE_DEADLINE_MS: '9000',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
      esbuildFolder: '.esbuild-client',
      echo: process.env.E2E_VERBOSE ? (text) => process.stderr.write(text) : undefined,
    });
  } catch (error) {
    await page.close();
    throw error;
  }
  // The page was bundled before the API had a port: it is told where the API is by `?api=`.
  project.provide('clientStack', { apiUrl: api.offline.url, pageUrl: `${page.origin}/`, env: api.env });
  const running = api;
  return async () => {
    mkdirSync(join(PROJECT_ROOT, '.test-output'), { recursive: true });
    writeFileSync(join(PROJECT_ROOT, '.test-output', 'client-stack.log'), running.offline.output());
    await page.close();
    await running.close();
  };
}
