'use strict';
// The settings a deployed stage takes from its params in serverless.yml (overridable with
// `--param="name=value"`), never from the deploying shell, each with the environment variable the
// Lambdas read it from (lib/platform/config.ts validates them all at cold start). The local stack takes the
// same settings from its own environment: `npm start` and the tests pass each variable that is set
// on to serverless-offline as the matching `--param` (scripts/local-stack.ts), so the Lambdas there
// get exactly what the template would give them.

/** environment variable -> param */
const SETTINGS = {
  JWT_SECRET_CACHE_SECONDS: 'jwtSecretCacheSeconds',
  JWT_ISSUER: 'jwtIssuer',
  JWT_AUDIENCE: 'jwtAudience',
  ACCESS_TOKEN_TTL_SECONDS: 'accessTokenTtlSeconds',
  REFRESH_TOKEN_TTL_SECONDS: 'refreshTokenTtlSeconds',
  REFRESH_REUSE_GRACE_SECONDS: 'refreshReuseGraceSeconds',
  BCRYPT_COST: 'bcryptCost',
  REQUIRE_HTTPS: 'requireHttps',
  LOGIN_MAX_FAILURES: 'loginMaxFailures',
  LOGIN_LOCKOUT_SECONDS: 'loginLockoutSeconds',
  LOGIN_IP_MAX_FAILURES: 'loginIpMaxFailures',
  LOGIN_ACCOUNT_MAX_FAILURES: 'loginAccountMaxFailures',
  DEVICE_TOKEN_TTL_SECONDS: 'deviceTokenTtlSeconds',
  PASSWORD_MIN_LENGTH: 'passwordMinLength',
  SESSION_IDLE_SECONDS: 'sessionIdleSeconds',
  MAX_SESSIONS_PER_USER: 'maxSessionsPerUser',
  MAX_API_KEYS_PER_USER: 'maxApiKeysPerUser',
  STORE_DEADLINE_FAST_MS: 'storeDeadlineFastMs',
  STORE_DEADLINE_MS: 'storeDeadlineMs',
  MFA_REQUIRED_ROLES: 'mfaRequiredRoles',
  MFA_MAX_FAILURES: 'mfaMaxFailures',
  MFA_LOCKOUT_SECONDS: 'mfaLockoutSeconds',
  POWERTOOLS_LOG_LEVEL: 'logLevel',
  PUBLIC_BASE_URL: 'publicBaseUrl',
  SSO_REDIRECT_URIS: 'ssoRedirectUris',
};

/** Settings read by the deployment itself rather than by the Lambdas. */
const DEPLOYMENT_SETTINGS = {
  CORS_ORIGINS: 'corsOrigins',
};

/** LOG_LEVEL is kept as an alias of POWERTOOLS_LOG_LEVEL. */
const ALIASES = { LOG_LEVEL: 'POWERTOOLS_LOG_LEVEL' };

/** `--param name=value` arguments for every setting present in `env`. */
function paramArguments(env) {
  const args = [];
  const seen = new Set();
  for (const [variable, param] of Object.entries({ ...SETTINGS, ...DEPLOYMENT_SETTINGS })) {
    const alias = Object.keys(ALIASES).find((name) => ALIASES[name] === variable);
    const value = [env[variable], alias && env[alias]].map((candidate) => candidate?.trim()).find(Boolean);
    if (value === undefined || seen.has(param)) continue;
    seen.add(param);
    args.push('--param', `${param}=${value}`);
  }
  return args;
}

module.exports = { SETTINGS, DEPLOYMENT_SETTINGS, ALIASES, paramArguments };
