/**
 * The per-stage params of serverless.yml, read by the tools that must agree with a deployed stage
 * without asking AWS: the users CLI hashes new passwords at the stage's bcrypt cost, so that every
 * hash of a stage is made at the cost its login compares with (a hash at another cost would make
 * that account's failed sign-ins measurably slower than an unknown email's).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { SETTINGS } from '../infra/settings.js';
import { PROJECT_ROOT } from './local-stack.js';

type Params = Record<string, Record<string, unknown> | undefined>;

function params(): Params {
  const document = parse(readFileSync(join(PROJECT_ROOT, 'serverless.yml'), 'utf8')) as { params?: Params };
  return document.params ?? {};
}

/** A param of `stage` as serverless.yml sets it (the stage's own value, else `default`'s). */
export function stageParam(stage: string, name: string): unknown {
  const all = params();
  return all[stage]?.[name] ?? all.default?.[name];
}

/**
 * A setting of a stage, as its Lambdas get it. Deployed (`--aws`): the stage's param, whatever the
 * shell says. Local: the environment variable when set (the local stack takes its settings from
 * there, and `npm start` passes the same value to its Lambdas), else the stage's param.
 */
export function stageSetting(
  stage: string,
  variable: keyof typeof SETTINGS,
  { deployed, env = process.env }: { deployed: boolean; env?: NodeJS.ProcessEnv },
): string {
  const local = env[variable]?.trim();
  if (!deployed && local) return local;
  return String(stageParam(stage, SETTINGS[variable]!) ?? '');
}

/** The bcrypt cost for a stage (stageSetting), so that every hash of a stage is made at the cost its login compares with. */
export function bcryptCostFor(stage: string, options: { deployed: boolean; env?: NodeJS.ProcessEnv }): string {
  return stageSetting(stage, 'BCRYPT_COST', options);
}
