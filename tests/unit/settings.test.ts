import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SETTINGS, paramArguments } from '../../infra/settings.js';
import { PROJECT_ROOT } from '../../scripts/local-stack.js';
import { stageParam } from '../../scripts/stage-params.js';

const serverless = parse(readFileSync(join(PROJECT_ROOT, 'serverless.yml'), 'utf8')) as Record<string, any>;

describe('one list of settings: the local environment and the deployed params', () => {
  it('passes every setting the local environment holds on as the matching param, and nothing else', () => {
    const args = paramArguments({ LOGIN_MAX_FAILURES: '7', CORS_ORIGINS: 'https://app.example.com', BCRYPT_COST: ' 4 ', PATH: '/usr/bin', JWT_SECRET: 'not-a-param' });
    expect(args).toEqual(['--param', 'bcryptCost=4', '--param', 'loginMaxFailures=7', '--param', 'corsOrigins=https://app.example.com']);
    expect(paramArguments({})).toEqual([]);
  });

  it('takes LOG_LEVEL as an alias of POWERTOOLS_LOG_LEVEL, which wins', () => {
    expect(paramArguments({ LOG_LEVEL: 'debug' })).toEqual(['--param', 'logLevel=debug']);
    expect(paramArguments({ LOG_LEVEL: 'debug', POWERTOOLS_LOG_LEVEL: 'ERROR' })).toEqual(['--param', 'logLevel=ERROR']);
  });

  it('gives every setting a default param and its environment variable in the template', () => {
    for (const [variable, param] of Object.entries(SETTINGS)) {
      expect(stageParam('dev', param), param).not.toBeUndefined();
      expect(serverless.provider.environment[variable], variable).toBe(`\${param:${param}}`);
    }
  });

  it('keeps the local run mode in serverless.yml, so a plain `npx serverless offline` serves like npm start', () => {
    expect(serverless.custom['serverless-offline']).toMatchObject({ useInProcess: true, host: '127.0.0.1', noPrependStageInUrl: true });
    expect(serverless.useDotenv).toBe(true);
    expect(readFileSync(join(PROJECT_ROOT, 'scripts', 'local-stack.ts'), 'utf8')).not.toMatch(/--useInProcess|--host/);
  });
});
