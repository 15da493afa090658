/**
 * `npm start`: the whole API on this machine, no Docker, no Java, no AWS account.
 * dynalite (data kept in .data/) behind the local IAM check -> tables -> demo user ->
 * serverless-offline, stopped together.
 */
import { join } from 'node:path';
import { ConfigError, dynamodbEndpointFrom, isProductionStage, loadConfig } from '../lib/platform/config.js';
import { bcryptCostFor } from './stage-params.js';
import { describeDenial, startIamProxy, type IamProxy } from './local-iam/proxy.js';
import { maybeStartDemoIdp } from './demo-idp.js';
import { DATA_DIR, ensureTables, localMfaKey, localSigningSecret, removeLocalEnv, seedUser, startDynalite, startOffline, writeLocalEnv, type RunningDynalite } from './local-stack.js';

function fail(message: string): never {
  console.error(`npm start: ${message}`);
  process.exit(1);
}

function port(name: string, fallback: number): number {
  const raw = process.env[name]?.trim() || String(fallback);
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1 || value > 65535) fail(`Invalid configuration: ${name} must be a port number (1-65535), got "${raw}"`);
  return value;
}

async function main(): Promise<void> {
  const stage = process.env.STAGE?.trim() || 'dev';
  const httpPort = port('PORT', 3000);
  const dynamoPort = port('DYNAMODB_PORT', 8000);
  let jwtSecret = process.env.JWT_SECRET?.trim();
  if (!jwtSecret) {
    if (isProductionStage(stage)) fail(`Invalid configuration: JWT_SECRET is required for stage "${stage}"`);
    jwtSecret = localSigningSecret();
  }
  let mfaKey = process.env.MFA_KEY?.trim();
  if (!mfaKey) {
    if (isProductionStage(stage)) fail(`Invalid configuration: MFA_KEY is required for stage "${stage}"`);
    mfaKey = localMfaKey();
  }

  let external: string | undefined;
  try {
    external = dynamodbEndpointFrom();
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  let dynamo: RunningDynalite | undefined;
  // BCRYPT_COST from the environment, else the stage's param: the seed and the Lambdas agree.
  const env: NodeJS.ProcessEnv = { ...process.env, STAGE: stage, JWT_SECRET: jwtSecret, MFA_KEY: mfaKey, BCRYPT_COST: bcryptCostFor(stage, { deployed: false }) };
  let config;
  try {
    // Validate everything before starting anything; the endpoint is filled in below.
    config = loadConfig({ ...env, DYNAMODB_ENDPOINT: external || `http://127.0.0.1:${dynamoPort}` });
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }

  if (!external) {
    try {
      dynamo = await startDynalite(0, join(DATA_DIR, `dynamodb-${stage}`));
    } catch (error) {
      if (/lock/i.test(String(error))) fail(`the data in .data/dynamodb-${stage} is in use by another process (another npm start?)`);
      throw error;
    }
  }
  // Every client reaches DynamoDB through the local IAM check, on DYNAMODB_PORT (the CLIs find the
  // store there); only the Lambdas' calls are checked, each against its own role in infra/iam.js.
  let iam: IamProxy;
  try {
    iam = await startIamProxy({
      target: external ?? dynamo!.endpoint,
      port: external ? 0 : dynamoPort,
      onDenial: (denial) => console.error(`local IAM: ${describeDenial(denial)}: ${denial.message} (a 500, as in AWS; grant it in infra/iam.js)`),
    });
  } catch (error) {
    await dynamo?.close();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') fail(`port ${dynamoPort} is taken: set DYNAMODB_PORT to a free port`);
    throw error;
  }
  env.DYNAMODB_ENDPOINT = iam.endpoint;
  const store = { ...config, dynamodbEndpoint: env.DYNAMODB_ENDPOINT };

  const created = await ensureTables(env.DYNAMODB_ENDPOINT!, stage, config.region);
  if (created.length > 0) console.log(`Created tables: ${created.join(', ')}`);

  const demo = {
    email: process.env.DEMO_USER_EMAIL?.trim() || 'user@company.com',
    password: process.env.DEMO_USER_PASSWORD || 'secure_password',
  };
  if (!isProductionStage(stage)) {
    const seeded = await seedUser(store, { ...demo, name: 'John Doe', role: 'admin' });
    console.log(seeded ? `Seeded demo user ${demo.email}` : `Demo user ${demo.email} already exists (password unchanged)`);
  }

  // The demo corporate IdP for sso.example (docs/sso.md): not in production stages, not with SSO_DEMO=0.
  const ssoDemo = await maybeStartDemoIdp({ production: isProductionStage(stage), env, apiBaseUrl: config.sso.publicBaseUrl, store, mfaKey });

  const offline = await startOffline({ stage, port: httpPort, env, echo: (text) => process.stdout.write(text) }).catch(async (error) => {
    await iam.close();
    await dynamo?.close();
    if (/EADDRINUSE/.test(String(error))) fail(`port ${httpPort} is taken: set PORT to a free port`);
    throw error;
  });

  // For `npx serverless invoke local -f <fn> -p events/<fn>.json` (after `npm run events`).
  writeLocalEnv(stage, { DYNAMODB_ENDPOINT: env.DYNAMODB_ENDPOINT, JWT_SECRET: jwtSecret, MFA_KEY: mfaKey, PORT: String(httpPort) });

  const base = `http://localhost:${httpPort}/v1`;
  console.log(`
  VPN Enterprise auth API (stage ${stage}) is running
  Base URL:  ${base}/auth/{login,refresh,logout,me,sessions,password,mfa/...}
  DynamoDB:  ${env.DYNAMODB_ENDPOINT}${external ? ` (in front of ${external})` : ` (dynalite, data in .data/dynamodb-${stage})`}, each Lambda held to its role (infra/iam.js)
${isProductionStage(stage) ? '' : `  Demo user: ${demo.email} / ${demo.password}\n`}${ssoDemo?.banner ?? ''}
  Try it:
    curl -s -X POST ${base}/auth/login -H 'Content-Type: application/json' \\
      -d '{"email":"${demo.email}","password":"${demo.password}"}'

  Ctrl-C stops everything.
`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping serverless-offline and dynalite...`);
    removeLocalEnv(stage);
    await offline.stop();
    await ssoDemo?.close();
    await iam.close();
    await dynamo?.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  offline.process.once('exit', (code) => {
    if (stopping) return;
    console.error(`serverless-offline exited (code ${code}); stopping.`);
    removeLocalEnv(stage);
    void iam.close().then(() => dynamo?.close()).then(() => process.exit(1));
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
