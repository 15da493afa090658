import { afterAll, beforeAll } from 'vitest';
import { createApp, type App } from '../../lib/app.js';
import { loadConfig } from '../../lib/platform/config.js';
import { ensureTables, freePort, startOffline, type RunningOffline } from '../../scripts/local-stack.js';
import { apiEnv, dynamoEndpoint } from './context.js';
import { putSigningKeys } from './http.js';
import { mfaKeyAlias, mfaKeyParameter, signingKeyAlias, signingKeyParameter } from '../../infra/signing-keys.js';

export interface StageApi {
  /** The environment its Lambdas run with: the e2e stack's, with this stage and these settings. */
  env(): Record<string, string>;
  /** An app wired like its Lambdas (same tables, same keys), for set-up. */
  app(): App;
  /** Where it answers (once the describe's beforeAll has run). */
  readonly url: string;
  /** Everything its serverless-offline printed so far: the Lambdas' log lines among it. */
  output(): string;
}

/**
 * A second API beside the e2e stack, for settings the tests need small or odd (caps, timeouts, a
 * production stage): its own stage's tables in the same dynalite, its own signing keys in the same
 * fake SSM, serverless-offline on a free port. Registers the describe's beforeAll and afterAll.
 */
export function stageApi(stage: string, settings: Record<string, string>, { params }: { params?: string[] } = {}): StageApi {
  let api: RunningOffline | undefined;
  // The parameters its own Lambdas read (serverless.yml names them by stage), for the app below too.
  const env = () => ({
    ...apiEnv(),
    STAGE: stage,
    JWT_SECRET_PARAMETER: signingKeyParameter(stage),
    MFA_KEY_PARAMETER: mfaKeyParameter(stage),
    JWT_SECRET_KMS_KEY: signingKeyAlias(stage),
    MFA_KEY_KMS_KEY: mfaKeyAlias(stage),
    // Not the e2e stack's origin (a production stage would refuse its http): the stage's default.
    PUBLIC_BASE_URL: '',
    ...settings,
  });
  beforeAll(async () => {
    await ensureTables(dynamoEndpoint(), stage);
    // What `npm run keys -- init --aws --stage <stage>` does before a first deploy.
    await putSigningKeys(stage);
    api = await startOffline({ stage, port: await freePort(), env: { ...process.env, ...env(), ESBUILD_WORK_FOLDER: `.esbuild-${stage}` }, params });
  });
  afterAll(async () => {
    await api?.stop();
  });
  return {
    env,
    app: () => createApp(loadConfig(env())),
    get url() {
      if (!api) throw new Error(`the ${stage} API has not started`);
      return api.url;
    },
    output: () => api?.output() ?? '',
  };
}
