import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { mfaKeyAlias, mfaKeyParameter, signingKeyAlias, signingKeyParameter } from '../../infra/signing-keys.js';
import { PROJECT_ROOT, freePort, removeLocalEnv, writeLocalEnv } from '../../scripts/local-stack.js';
import { DEMO_USER, TEST_BCRYPT_COST } from './context.js';
import { startFakeKms } from './fake-kms.js';
import { startFakeSsm } from './fake-ssm.js';
import { iamFindings, incompleteRun } from './iam-usage.js';
import { putSealedRing } from './sealed-rings.js';
import { leakedLines, resetSecrets } from './secrets.js';
import { startTestApi } from './test-api.js';

export const E2E_STAGE = 'test';
/** Where the e2e stack lets an SSO sign-in end: a web app's page, and a desktop client's loopback (any port). */
export const SSO_TEST_REDIRECT_URIS = ['https://app.example.test/sso/done', 'http://127.0.0.1/sso/desktop'];

/**
 * The API as it runs in AWS, but private: in-memory dynalite behind the local IAM check (each
 * Lambda held to its role in infra/iam.js) and serverless-offline on free loopback ports, the key
 * rings read from SSM parameters and opened by KMS (a fake SSM and a fake KMS on loopback that
 * check SigV4) as the deployed Lambdas read them, the demo user seeded. Stopped when the run ends.
 */
export default async function setup(project: TestProject) {
  resetSecrets();
  // A stale one (a run that was killed) would give the Lambdas below a key instead of SSM.
  removeLocalEnv(E2E_STAGE);
  const ssm = await startFakeSsm();
  const kms = await startFakeKms();
  // What `npm run keys -- init --aws [--ring mfa]` writes before a first deploy.
  const fakes = { ssm: ssm.endpoint, kms: kms.endpoint };
  await putSealedRing(fakes, E2E_STAGE, 'signing', JSON.stringify({ 'e2e-1': randomBytes(48).toString('base64url') }));
  await putSealedRing(fakes, E2E_STAGE, 'mfa', JSON.stringify({ 'mfa-1': randomBytes(48).toString('base64url') }));
  // The Lambdas' output as it comes, for tests that read their metrics (context.ts, emittedMetrics).
  const outputFile = join(PROJECT_ROOT, '.test-output', 'e2e-lambdas.log');
  mkdirSync(join(PROJECT_ROOT, '.test-output'), { recursive: true });
  writeFileSync(outputFile, '');
  const httpPort = await freePort();
  let api;
  try {
    // Every DynamoDB client of the run goes through its IAM check (stage APIs and `invoke local`
    // too); what each Lambda used is recorded for the check at the end.
    api = await startTestApi({
      stage: E2E_STAGE,
      env: {
        // serverless.yml names the parameter for the Lambdas; the tests' own app needs it spelt out.
        JWT_SECRET_PARAMETER: signingKeyParameter(E2E_STAGE),
        MFA_KEY_PARAMETER: mfaKeyParameter(E2E_STAGE),
        JWT_SECRET_KMS_KEY: signingKeyAlias(E2E_STAGE),
        MFA_KEY_KMS_KEY: mfaKeyAlias(E2E_STAGE),
        SSM_ENDPOINT: ssm.endpoint,
        KMS_ENDPOINT: kms.endpoint,
        BCRYPT_COST: String(TEST_BCRYPT_COST),
        // One dynalite process on a shared machine is no DynamoDB: a burst of 200 requests queues behind
        // it for seconds. So this stack waits for it as long as the per-attempt limits alone would (the
        // most the settings allow); the deployed deadlines (1.5 s, 3 s) are proven against a store that
        // hangs, on an API of their own (tests/e2e/hanging-store.test.ts).
        STORE_DEADLINE_FAST_MS: '9000',
        STORE_DEADLINE_MS: '9000',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        // Single sign-on (tests/e2e/sso.test.ts): the IdP sends browsers back to this API's own port.
        PUBLIC_BASE_URL: `http://127.0.0.1:${httpPort}`,
        SSO_REDIRECT_URIS: SSO_TEST_REDIRECT_URIS.join(','),
      },
      port: httpPort,
      users: [{ ...DEMO_USER, name: 'John Doe', role: 'admin' }],
      esbuildFolder: '.esbuild-e2e',
      echo: (text) => {
        appendFileSync(outputFile, text);
        if (process.env.E2E_VERBOSE) process.stderr.write(text);
      },
    });
  } catch (error) {
    await ssm.close();
    await kms.close();
    throw error;
  }
  const { dynamo, iam, offline, env } = api;
  // As `npm start` does: what a plain `serverless invoke local --stage test` loads (useDotenv).
  writeLocalEnv(E2E_STAGE, env);
  project.provide('dynamoEndpoint', iam.endpoint);
  project.provide('apiUrl', offline.url);
  project.provide('apiEnv', env);
  project.provide('apiOutputFile', outputFile);
  project.provide('apiOutputFile', outputFile);
  return async () => {
    const output = offline.output();
    mkdirSync(join(PROJECT_ROOT, '.test-output'), { recursive: true });
    writeFileSync(join(PROJECT_ROOT, '.test-output', 'serverless-offline.log'), output);
    removeLocalEnv(E2E_STAGE);
    await offline.stop();
    let findings;
    try {
      // Every Lambda has stopped (stage APIs and `invoke local` end with their tests): the record is whole.
      findings = iamFindings(iam, await incompleteRun(project));
      writeFileSync(join(PROJECT_ROOT, '.test-output', 'iam-usage.json'), `${JSON.stringify(findings.report, null, 2)}\n`);
    } finally {
      await iam.close();
      await dynamo.close();
    }
    // Every key any ring held during the run, rotations included: sealed (KMS saw them), or put
    // in plaintext by a test playing someone who cannot seal.
    const keys = [...ssm.history, ...kms.plaintexts].flatMap((value) => (value.startsWith('{') ? Object.values(JSON.parse(value) as Record<string, string>) : [value]));
    await ssm.close();
    await kms.close();
    // The audit trail must never carry a password, token, hash or key: every line the Lambdas
    // logged during the run is checked against every secret the tests used.
    const leaks = leakedLines(output, [...keys, DEMO_USER.password]);
    const failures = [...findings.failures, ...(leaks.length > 0 ? [`Secrets found in the Lambdas' logs:\n${leaks.slice(0, 5).join('\n')}`] : [])];
    if (failures.length > 0) {
      // A throw here is only printed by vitest ("error during close"); the exit code must say it.
      process.exitCode = 1;
      throw new Error(failures.join('\n\n'));
    }
  };
}
