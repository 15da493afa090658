/**
 * The local API as `npm start` runs it, for the commands that serve it (`npm start`, `npm run
 * example`): dynalite (data kept in .data/) behind the local IAM check -> tables -> demo user ->
 * serverless-offline, stopped together.
 */
import { join } from 'node:path';
import { ConfigError, dynamodbEndpointFrom, isProductionStage, loadConfig } from '../lib/platform/config.js';
import { bcryptCostFor } from './stage-params.js';
import { describeDenial, startIamProxy, type IamProxy } from './local-iam/proxy.js';
import { maybeStartDemoIdp } from './demo-idp.js';
import { DATA_DIR, ensureTables, localMfaKey, localSigningSecret, removeLocalEnv, seedUser, startDynalite, startOffline, writeLocalEnv, type RunningDynalite, type RunningOffline } from './local-stack.js';

export interface LocalApiOptions {
  /** The command, to prefix its refusals (`npm start: port 3000 is taken…`). */
  command: string;
  /** The environment the settings are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface LocalApi {
  stage: string;
  /** `http://localhost:<PORT>/v1` */
  base: string;
  /** Where DynamoDB is reached (the IAM check), and what is behind it when external. */
  dynamodbEndpoint: string;
  external?: string;
  /** The seeded demo user; undefined in production stages. */
  demo?: { email: string; password: string };
  offline: RunningOffline;
  /** The demo IdP's line for the banner, when it runs (docs/sso.md). */
  ssoDemoBanner?: string;
  stop(): Promise<void>;
}

export function failWith(command: string, message: string): never {
  console.error(`${command}: ${message}`);
  process.exit(1);
}

export function portFrom(command: string, env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]?.trim() || String(fallback);
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1 || value > 65535) failWith(command, `Invalid configuration: ${name} must be a port number (1-65535), got "${raw}"`);
  return value;
}

export async function startLocalApi(options: LocalApiOptions): Promise<LocalApi> {
  const source = options.env ?? process.env;
  const fail = (message: string): never => failWith(options.command, message);
  const stage = source.STAGE?.trim() || 'dev';
  const httpPort = portFrom(options.command, source, 'PORT', 3000);
  const dynamoPort = portFrom(options.command, source, 'DYNAMODB_PORT', 8000);
  let jwtSecret = source.JWT_SECRET?.trim();
  if (!jwtSecret) {
    if (isProductionStage(stage)) fail(`Invalid configuration: JWT_SECRET is required for stage "${stage}"`);
    jwtSecret = localSigningSecret();
  }
  let mfaKey = source.MFA_KEY?.trim();
  if (!mfaKey) {
    if (isProductionStage(stage)) fail(`Invalid configuration: MFA_KEY is required for stage "${stage}"`);
    mfaKey = localMfaKey();
  }

  let external: string | undefined;
  try {
    external = dynamodbEndpointFrom(source);
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  let dynamo: RunningDynalite | undefined;
  // BCRYPT_COST from the environment, else the stage's param: the seed and the Lambdas agree.
  const env: NodeJS.ProcessEnv = { ...source, STAGE: stage, JWT_SECRET: jwtSecret, MFA_KEY: mfaKey, BCRYPT_COST: bcryptCostFor(stage, { deployed: false, env: source }) };
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

  let demo: LocalApi['demo'];
  if (!isProductionStage(stage)) {
    demo = {
      email: source.DEMO_USER_EMAIL?.trim() || 'user@company.com',
      password: source.DEMO_USER_PASSWORD || 'secure_password',
    };
    const seeded = await seedUser(store, { ...demo, name: 'John Doe', role: 'admin' });
    console.log(seeded ? `Seeded demo user ${demo.email}` : `Demo user ${demo.email} already exists (password unchanged)`);
  }

  // The demo corporate IdP for sso.example (docs/sso.md): not in production stages, not with SSO_DEMO=0.
  const ssoDemo = await maybeStartDemoIdp({ production: isProductionStage(stage), env, apiBaseUrl: config.sso.publicBaseUrl, store, mfaKey });

  const offline = await startOffline({ stage, port: httpPort, env, echo: (text) => process.stdout.write(text) }).catch(async (error) => {
    await ssoDemo?.close();
    await iam.close();
    await dynamo?.close();
    if (/EADDRINUSE/.test(String(error))) fail(`port ${httpPort} is taken: set PORT to a free port`);
    throw error;
  });

  // For `npx serverless invoke local -f <fn> -p events/<fn>.json` (after `npm run events`).
  writeLocalEnv(stage, { DYNAMODB_ENDPOINT: env.DYNAMODB_ENDPOINT, JWT_SECRET: jwtSecret, MFA_KEY: mfaKey, PORT: String(httpPort) });

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      removeLocalEnv(stage);
      await offline.stop();
      await ssoDemo?.close();
      await iam.close();
      await dynamo?.close();
    })());
  return { stage, base: `http://localhost:${httpPort}/v1`, dynamodbEndpoint: env.DYNAMODB_ENDPOINT, external, demo, offline, ...(ssoDemo ? { ssoDemoBanner: ssoDemo.banner } : {}), stop };
}

/**
 * Ctrl-C (or SIGTERM) runs `stop` and exits; serverless-offline dying on its own stops the rest
 * and exits 1.
 */
export function stopTogether(api: LocalApi, stop: () => Promise<void>, what = 'serverless-offline and dynalite'): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping ${what}...`);
    await stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  api.offline.process.once('exit', (code) => {
    if (stopping) return;
    stopping = true;
    console.error(`serverless-offline exited (code ${code}); stopping.`);
    void stop().then(() => process.exit(1));
  });
}
