import { startIamProxy, type IamProxy } from '../../scripts/local-iam/proxy.js';
import { loadStoreConfig } from '../../lib/platform/config.js';
import { ensureTables, freePort, seedUser, startDynalite, startOffline, type RunningDynalite, type RunningOffline, type SeedUser } from '../../scripts/local-stack.js';

export interface TestApi {
  dynamo: RunningDynalite;
  /** The local IAM check in front of dynalite: the DynamoDB endpoint of everything in the run. */
  iam: IamProxy;
  offline: RunningOffline;
  /** The environment its Lambdas run with (`env` given, and DYNAMODB_ENDPOINT). */
  env: Record<string, string>;
  /** serverless-offline, then the IAM check, then dynalite. */
  close(): Promise<void>;
}

export interface TestApiOptions {
  stage: string;
  /** The Lambdas' settings (keys or their parameters, costs, deadlines...), DYNAMODB_ENDPOINT added here. */
  env: Record<string, string>;
  /** Users created before the Lambdas start. */
  users?: SeedUser[];
  /** serverless-esbuild's work folder: one per API of a run, as two builds in one folder collide. */
  esbuildFolder: string;
  echo?: (text: string) => void;
  /** serverless-offline's port, when the settings must name it (PUBLIC_BASE_URL); a free one by default. */
  port?: number;
}

/**
 * A private API for a test run: in-memory dynalite behind the local IAM check (each Lambda held to
 * its role in infra/iam.js), the stage's tables, the users seeded, serverless-offline on a free
 * loopback port, each function warmed. What it started is stopped again when it fails.
 */
export async function startTestApi(options: TestApiOptions): Promise<TestApi> {
  const dynamo = await startDynalite(0);
  let iam: IamProxy | undefined;
  let offline: RunningOffline | undefined;
  try {
    // Every DynamoDB client of the run goes through it; only the Lambdas' calls are checked.
    iam = await startIamProxy({ target: dynamo.endpoint });
    await ensureTables(iam.endpoint, options.stage);
    const env = { ...options.env, STAGE: options.stage, DYNAMODB_ENDPOINT: iam.endpoint };
    for (const user of options.users ?? []) await seedUser(loadStoreConfig(env), user);
    offline = await startOffline({
      stage: options.stage,
      port: options.port ?? (await freePort()),
      env: { ...process.env, ...env, ESBUILD_WORK_FOLDER: options.esbuildFolder },
      echo: options.echo,
    });
    await warmFunctions(offline.url);
    const [running, checked] = [offline, iam];
    return {
      dynamo,
      iam,
      offline,
      env,
      close: async () => {
        await running.stop();
        await checked.close();
        await dynamo.close();
      },
    };
  } catch (error) {
    await offline?.stop();
    await iam?.close();
    await dynamo.close();
    throw error;
  }
}

/**
 * One request per function, one at a time, so that the tests' first requests do not all meet
 * cold Lambdas at once (serverless-offline starts a worker per function lazily).
 */
export async function warmFunctions(url: string): Promise<void> {
  for (const [method, path] of [['POST', 'login'], ['POST', 'refresh'], ['POST', 'logout'], ['GET', 'me'], ['GET', 'sessions'], ['DELETE', 'sessions/x'], ['POST', 'password'],
    ['POST', 'mfa/totp/setup'], ['POST', 'mfa/totp/activate'], ['POST', 'mfa/verify'], ['POST', 'mfa/recovery-codes'], ['DELETE', 'mfa/totp'],
    ['POST', 'api-keys'], ['GET', 'api-keys'], ['DELETE', 'api-keys/x'],
    ['GET', 'sso/authorize'], ['GET', 'sso/callback'], ['POST', 'sso/token'], ['POST', 'sso/backchannel-logout']] as const) {
    await fetch(`${url}/v1/auth/${path}`, { method, signal: AbortSignal.timeout(30_000) });
  }
}
