import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startDemoIdp, type DemoIdp } from '../../scripts/demo-idp.js';
import { serveExample } from '../../scripts/example-server.js';
import { PROJECT_ROOT, freePort } from '../../scripts/local-stack.js';
import { loadStoreConfig, parseSigningKeys } from '../../lib/platform/config.js';
import { createDocumentClient } from '../../lib/platform/dynamo.js';
import { ACCESS_TOKEN_TTL_SECONDS, CLIENT_STAGE } from './client-stack.js';
import { TEST_BCRYPT_COST } from './context.js';
import { startTestApi } from './test-api.js';

/**
 * One stack for the client's tests and the example page's (the `browser` project): the page served
 * on a free loopback port, and an API that allows that origin alone (CORS_ORIGINS), with access
 * tokens that expire within seconds. Each test file seeds its own users. For "Sign in with your
 * company": `npm start`'s demo IdP for @sso.example (scripts/demo-idp.ts) on a port of its own,
 * sending browsers back to this API's callback (PUBLIC_BASE_URL, so the API's port is picked first),
 * which may end a sign-in on the page alone (SSO_REDIRECT_URIS).
 */
export default async function setup(project: TestProject) {
  const page = await serveExample({ host: '127.0.0.1', port: 0 });
  const httpPort = await freePort();
  const mfaKey = randomBytes(48).toString('base64url');
  let api;
  let idp: DemoIdp | undefined;
  try {
    api = await startTestApi({
      stage: CLIENT_STAGE,
      env: {
        // Keys given directly, as `npm start` gives them: the key rings in SSM are the e2e project's.
        JWT_SECRET: randomBytes(48).toString('base64url'),
        MFA_KEY: mfaKey,
        BCRYPT_COST: String(TEST_BCRYPT_COST),
        ACCESS_TOKEN_TTL_SECONDS: String(ACCESS_TOKEN_TTL_SECONDS),
        CORS_ORIGINS: page.origin,
        // Admins enrol at sign-in (the page's enrolment test); users may choose.
        MFA_REQUIRED_ROLES: 'admin',
        // As the e2e stack: one dynalite on a 2-core machine queues a burst for seconds.
        STORE_DEADLINE_FAST_MS: '9000',
        STORE_DEADLINE_MS: '9000',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        PUBLIC_BASE_URL: `http://127.0.0.1:${httpPort}`,
        SSO_REDIRECT_URIS: `${page.origin}/`,
      },
      port: httpPort,
      esbuildFolder: '.esbuild-client',
      echo: process.env.E2E_VERBOSE ? (text) => process.stderr.write(text) : undefined,
    });
    const db = createDocumentClient(loadStoreConfig(api.env));
    try {
      idp = await startDemoIdp({ port: 0, apiBaseUrl: `http://127.0.0.1:${httpPort}`, db, tables: loadStoreConfig(api.env), mfaRing: parseSigningKeys(mfaKey, 'MFA_KEY') });
    } finally {
      db.destroy();
    }
  } catch (error) {
    await api?.close();
    await page.close();
    throw error;
  }
  // The page was bundled before the API had a port: it is told where the API is by `?api=`.
  project.provide('clientStack', { apiUrl: api.offline.url, pageUrl: `${page.origin}/`, env: api.env });
  const running = api;
  return async () => {
    mkdirSync(join(PROJECT_ROOT, '.test-output'), { recursive: true });
    writeFileSync(join(PROJECT_ROOT, '.test-output', 'client-stack.log'), running.offline.output());
    await idp?.close();
    await page.close();
    await running.close();
  };
}
