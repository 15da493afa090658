import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  MIN_SECRET_BYTES,
  isProductionStage,
  kidFor,
  loadConfig,
  loadSigningKeySource,
  loadStoreConfig,
  parseSigningKeys,
  signingKeyEntries,
} from '../../lib/platform/config.js';

const SECRET = 'a-perfectly-good-secret-of-40-bytes-long!';
const OTHER_SECRET = 'another-perfectly-good-secret-of-44-bytes!!';

/** Run `load` and return the ConfigError it must throw. */
function configError(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  return expect.fail('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the defaults when only JWT_SECRET is set', () => {
    // Act
    const config = loadConfig({ JWT_SECRET: SECRET });

    // Assess
    expect(config).toEqual({
      stage: 'dev',
      region: 'us-east-1',
      usersTable: 'vpn-auth-dev-users',
      sessionsTable: 'vpn-auth-dev-sessions',
      attemptsTable: 'vpn-auth-dev-attempts',
      dynamodbEndpoint: undefined,
      placeholderCredentials: false,
      functionName: undefined,
      bcryptCost: 12,
      passwordMinLength: 12,
      signingKeySource: { kind: 'inline', keys: { currentKid: kidFor(SECRET), keys: new Map([[kidFor(SECRET), new TextEncoder().encode(SECRET)]]) } },
      jwtIssuer: 'vpn-enterprise-auth',
      jwtAudience: 'vpn-enterprise',
      accessTokenTtlSeconds: 3600,
      refreshTokenTtlSeconds: 2_592_000,
      refreshReuseGraceSeconds: 10,
      deviceTokenTtlSeconds: 31_536_000,
      maxApiKeysPerUser: 10,
      sso: { publicBaseUrl: 'http://localhost:3000', redirectUris: [], allowLoopbackIssuers: true },
      requireHttps: false,
      storeDeadlinesMs: { fast: 1500, standard: 3000 },
      loginLimits: { maxFailures: 5, lockoutSeconds: 900, accountMaxFailuresPerHour: 100, ipMaxFailures: 100 },
      sessionPolicy: { idleSeconds: 604_800, maxPerUser: 0 },
      mfa: { requiredRoles: [], keySource: undefined, maxFailures: 10, lockoutSeconds: 3600 },
    });
  });

  it('reads MFA_REQUIRED_ROLES and the MFA key ring, which must not share a key with the signing ring', () => {
    const mfaKey = 'm'.repeat(40);
    expect(loadConfig({ JWT_SECRET: SECRET, MFA_REQUIRED_ROLES: ' Admin, admin ,', MFA_KEY: mfaKey }).mfa).toEqual({
      requiredRoles: ['admin'],
      keySource: { kind: 'inline', keys: { currentKid: kidFor(mfaKey), keys: new Map([[kidFor(mfaKey), new TextEncoder().encode(mfaKey)]]) } },
      maxFailures: 10,
      lockoutSeconds: 3600,
    });
    expect(loadConfig({ JWT_SECRET: SECRET, MFA_MAX_FAILURES: '3', MFA_LOCKOUT_SECONDS: '60' }).mfa).toMatchObject({ maxFailures: 3, lockoutSeconds: 60 });
    expect(configError(() => loadConfig({ JWT_SECRET: SECRET, MFA_MAX_FAILURES: '0' })).variable).toBe('MFA_MAX_FAILURES');
    expect(configError(() => loadConfig({ JWT_SECRET: SECRET, MFA_LOCKOUT_SECONDS: 'soon' })).variable).toBe('MFA_LOCKOUT_SECONDS');
    expect(loadConfig({ JWT_SECRET: SECRET, MFA_KEY_PARAMETER: '/vpn-auth/prod/mfa-keys', MFA_KEY_KMS_KEY: 'alias/vpn-auth-prod-mfa-keys' }).mfa.keySource).toMatchObject({ kind: 'parameter', name: '/vpn-auth/prod/mfa-keys' });
    expect(configError(() => loadConfig({ JWT_SECRET: SECRET, MFA_REQUIRED_ROLES: 'admin,root' })).variable).toBe('MFA_REQUIRED_ROLES');
    expect(configError(() => loadConfig({ JWT_SECRET: SECRET, MFA_KEY: 'short' })).variable).toBe('MFA_KEY');
    expect(configError(() => loadConfig({ JWT_SECRET: SECRET, MFA_KEY: SECRET })).variable).toBe('MFA_KEY');
    expect(configError(() => loadConfig({ JWT_SECRET: SECRET, MFA_KEY: JSON.stringify({ m1: mfaKey, old: SECRET }) })).variable).toBe('MFA_KEY');
    expect(configError(() => loadConfig({ JWT_SECRET: SECRET, MFA_KEY_PARAMETER: 'not a name' })).variable).toBe('MFA_KEY_PARAMETER');
  });

  it('reads the password minimum, the idle timeout (0 turns it off) and the session cap', () => {
    const config = loadConfig({ JWT_SECRET: SECRET, PASSWORD_MIN_LENGTH: '15', SESSION_IDLE_SECONDS: '0', MAX_SESSIONS_PER_USER: '3' });
    expect(config.passwordMinLength).toBe(15);
    expect(config.sessionPolicy).toEqual({ idleSeconds: 0, maxPerUser: 3 });
  });

  it("reads a request's deadlines for DynamoDB (the authorizer, me and refresh; the others)", () => {
    expect(loadConfig({ JWT_SECRET: SECRET, STORE_DEADLINE_FAST_MS: '800', STORE_DEADLINE_MS: '2000' }).storeDeadlinesMs).toEqual({ fast: 800, standard: 2000 });
  });

  it('reads the SSO settings: the public origin (localhost by default outside production, none in it) and the redirect URIs', () => {
    expect(loadConfig({ JWT_SECRET: SECRET, PORT: '3100' }).sso).toEqual({ publicBaseUrl: 'http://localhost:3100', redirectUris: [], allowLoopbackIssuers: true });
    expect(loadConfig({ JWT_SECRET: SECRET, STAGE: 'prod' }).sso).toEqual({ publicBaseUrl: undefined, redirectUris: [], allowLoopbackIssuers: false });
    expect(
      loadConfig({ JWT_SECRET: SECRET, STAGE: 'prod', PUBLIC_BASE_URL: 'https://auth.example.com/', SSO_REDIRECT_URIS: 'https://app.example.com/done, http://127.0.0.1/cb,http://[::1]/cb' }).sso,
    ).toEqual({ publicBaseUrl: 'https://auth.example.com', redirectUris: ['https://app.example.com/done', 'http://127.0.0.1/cb', 'http://[::1]/cb'], allowLoopbackIssuers: false });
    expect(configError(() => loadConfig({ JWT_SECRET: SECRET, STAGE: 'prod', PUBLIC_BASE_URL: 'http://auth.example.com' })).variable).toBe('PUBLIC_BASE_URL');
    expect(configError(() => loadConfig({ JWT_SECRET: SECRET, PUBLIC_BASE_URL: 'https://auth.example.com/v1' })).variable).toBe('PUBLIC_BASE_URL');
    expect(configError(() => loadConfig({ JWT_SECRET: SECRET, SSO_REDIRECT_URIS: 'http://app.example.com/done' })).variable).toBe('SSO_REDIRECT_URIS');
    expect(configError(() => loadConfig({ JWT_SECRET: SECRET, SSO_REDIRECT_URIS: 'https://app.example.com/#x' })).variable).toBe('SSO_REDIRECT_URIS');
  });

  it('requires HTTPS by default in prod only, and lets REQUIRE_HTTPS say otherwise', () => {
    expect(loadConfig({ JWT_SECRET: SECRET, STAGE: 'prod' }).requireHttps).toBe(true);
    expect(loadConfig({ JWT_SECRET: SECRET, STAGE: 'staging' }).requireHttps).toBe(false);
    expect(loadConfig({ JWT_SECRET: SECRET, STAGE: 'prod', REQUIRE_HTTPS: 'false' }).requireHttps).toBe(false);
    expect(loadConfig({ JWT_SECRET: SECRET, STAGE: 'dev', REQUIRE_HTTPS: 'true' }).requireHttps).toBe(true);
  });

  it('treats empty and blank strings as unset (serverless passes unset variables as "")', () => {
    // Prepare
    const env = {
      JWT_SECRET: SECRET,
      STAGE: '',
      AWS_REGION: ' ',
      USERS_TABLE: '',
      SESSIONS_TABLE: '',
      DYNAMODB_ENDPOINT: '',
      BCRYPT_COST: '',
      JWT_ISSUER: '  ',
      JWT_AUDIENCE: '',
      ACCESS_TOKEN_TTL_SECONDS: '',
      REFRESH_TOKEN_TTL_SECONDS: '\t',
    };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config).toEqual(loadConfig({ JWT_SECRET: SECRET }));
  });

  it('reads every variable when set', () => {
    // Prepare
    const env = {
      JWT_SECRET: SECRET,
      STAGE: 'prod',
      AWS_REGION: 'eu-west-1',
      DYNAMODB_ENDPOINT: 'http://localhost:8000',
      BCRYPT_COST: '10',
      JWT_ISSUER: 'issuer-x',
      JWT_AUDIENCE: 'audience-y',
      ACCESS_TOKEN_TTL_SECONDS: '900',
      REFRESH_TOKEN_TTL_SECONDS: '86400',
    };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config).toMatchObject({
      stage: 'prod',
      region: 'eu-west-1',
      usersTable: 'vpn-auth-prod-users',
      sessionsTable: 'vpn-auth-prod-sessions',
      dynamodbEndpoint: 'http://localhost:8000',
      bcryptCost: 10,
      jwtIssuer: 'issuer-x',
      jwtAudience: 'audience-y',
      accessTokenTtlSeconds: 900,
      refreshTokenTtlSeconds: 86_400,
    });
  });

  it('lets USERS_TABLE and SESSIONS_TABLE override the stage names', () => {
    // Act
    const config = loadConfig({ JWT_SECRET: SECRET, STAGE: 'qa', USERS_TABLE: 'u', SESSIONS_TABLE: 's' });

    // Assess
    expect(config).toMatchObject({ stage: 'qa', usersTable: 'u', sessionsTable: 's' });
  });

  it('reads the per-account cap and the device-token lifetime', () => {
    const config = loadConfig({ JWT_SECRET: SECRET, LOGIN_ACCOUNT_MAX_FAILURES: '250', DEVICE_TOKEN_TTL_SECONDS: '86400' });
    expect(config.loginLimits.accountMaxFailuresPerHour).toBe(250);
    expect(config.deviceTokenTtlSeconds).toBe(86_400);
  });

  it('falls back to AWS_DEFAULT_REGION', () => {
    expect(loadConfig({ JWT_SECRET: SECRET, AWS_DEFAULT_REGION: 'ap-south-1' }).region).toBe('ap-south-1');
  });

  it.each([
    ['ACCESS_TOKEN_TTL_SECONDS', '0'],
    ['ACCESS_TOKEN_TTL_SECONDS', 'abc'],
    ['ACCESS_TOKEN_TTL_SECONDS', '86401'],
    ['ACCESS_TOKEN_TTL_SECONDS', '1.5'],
    ['ACCESS_TOKEN_TTL_SECONDS', '1e3'],
    ['BCRYPT_COST', '3'],
    ['BCRYPT_COST', '16'],
    ['REFRESH_TOKEN_TTL_SECONDS', '-1'],
    ['REFRESH_REUSE_GRACE_SECONDS', '301'],
    ['REQUIRE_HTTPS', 'maybe'],
    ['LOGIN_MAX_FAILURES', '0'],
    ['LOGIN_LOCKOUT_SECONDS', 'forever'],
    ['LOGIN_IP_MAX_FAILURES', '0'],
    ['LOGIN_ACCOUNT_MAX_FAILURES', '0'],
    ['LOGIN_ACCOUNT_MAX_FAILURES', 'many'],
    ['DEVICE_TOKEN_TTL_SECONDS', '59'],
    ['DEVICE_TOKEN_TTL_SECONDS', '63072001'],
    ['REFRESH_REUSE_GRACE_SECONDS', 'ten'],
    ['PASSWORD_MIN_LENGTH', '7'],
    ['PASSWORD_MIN_LENGTH', '65'],
    ['SESSION_IDLE_SECONDS', '-1'],
    ['SESSION_IDLE_SECONDS', 'week'],
    ['MAX_SESSIONS_PER_USER', '1001'],
    ['MAX_API_KEYS_PER_USER', '0'],
    ['MAX_API_KEYS_PER_USER', '101'],
    ['STORE_DEADLINE_FAST_MS', '99'],
    ['STORE_DEADLINE_MS', '9001'],
    ['STORE_DEADLINE_MS', '3s'],
    ['REFRESH_TOKEN_TTL_SECONDS', '59'],
    ['STAGE', 'Prod!'],
    ['STAGE', 'a-stage-name-longer-than-20'],
    ['DYNAMODB_ENDPOINT', 'ftp://x'],
    ['DYNAMODB_ENDPOINT', 'localhost:8000'],
    ['DYNAMODB_ENDPOINT', 'http://localhost:8000 oops'],
  ])('refuses %s=%s with a ConfigError naming the variable', (variable, value) => {
    // Act
    const error = configError(() => loadConfig({ JWT_SECRET: SECRET, [variable]: value }));

    // Assess
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(variable);
    expect(error.message).toContain(value);
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['31 bytes', 'x'.repeat(31)],
    ['a JSON ring with a short key', JSON.stringify({ current: SECRET, old: 'short' })],
    ['JSON that does not parse', `{"current": "${SECRET}"`],
    ['an empty JSON object', '{}'],
    ['an empty JSON array', '[]'],
    ['a JSON ring with a bad kid', JSON.stringify({ 'bad kid!': SECRET })],
    ['a JSON ring whose key is not a string', JSON.stringify({ current: 12345 })],
  ])('refuses JWT_SECRET %s with a ConfigError naming JWT_SECRET', (_case, secret) => {
    // Act
    const error = configError(() => loadConfig({ JWT_SECRET: secret }));

    // Assess
    expect(error.variable).toBe('JWT_SECRET');
    expect(error.message).toMatch(/^Invalid configuration: JWT_SECRET /);
  });

  it('never puts a secret in the error message', () => {
    // Act
    const error = configError(() => loadConfig({ JWT_SECRET: 'x'.repeat(31) }));

    // Assess
    expect(error.message).not.toContain('x'.repeat(31));
    expect(error.message).toContain('(got 31)');
  });
});

describe('a key ring written the wrong way round', () => {
  it('never repeats the key in the error message', () => {
    // Prepare: {"<secret>": "<kid>"} and a key with characters no kid has (base64 "+" and "/")
    const swapped = JSON.stringify({ 'k1': SECRET, 'Zm9v+YmFy/c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3OA==': 'k0' });

    // Act
    const error = configError(() => parseSigningKeys(swapped));

    // Assess
    expect(error.message).toBe('Invalid configuration: JWT_SECRET entry 2 has an invalid kid (1-64 of A-Z a-z 0-9 . _ -, not all digits)');
    expect(error.message).not.toContain('Zm9v');
  });
});

describe('signing-key source', () => {
  const PARAMETER = '/vpn-auth/prod/jwt-signing-keys';
  const KMS_KEY = 'alias/vpn-auth-prod-signing-keys';
  /** What the Lambdas get besides the parameter (serverless.yml): the KMS key, the sealing's context for STAGE (default dev). */
  const SEAL = { kmsKeyId: KMS_KEY, encryptionContext: { stage: 'dev', ring: 'signing' }, kmsEndpoint: undefined };

  it('uses JWT_SECRET itself when it is set', () => {
    // Act
    const source = loadSigningKeySource({ JWT_SECRET: SECRET });

    // Assess
    expect(source).toEqual({ kind: 'inline', keys: parseSigningKeys(SECRET) });
  });

  it('prefers JWT_SECRET to JWT_SECRET_PARAMETER when both are set', () => {
    // Act
    const source = loadSigningKeySource({ JWT_SECRET: SECRET, JWT_SECRET_PARAMETER: PARAMETER, JWT_SECRET_CACHE_SECONDS: '60' });

    // Assess
    expect(source).toEqual({ kind: 'inline', keys: parseSigningKeys(SECRET) });
  });

  it('reads the SSM parameter JWT_SECRET_PARAMETER names when JWT_SECRET is unset, cached 300 s by default', () => {
    // Act
    const source = loadSigningKeySource({ JWT_SECRET_KMS_KEY: KMS_KEY, JWT_SECRET_PARAMETER: PARAMETER });

    // Assess
    expect(source).toEqual({ kind: 'parameter', name: PARAMETER, cacheSeconds: 300, ssmEndpoint: undefined, ...SEAL });
  });

  it('is what loadConfig puts in signingKeySource', () => {
    // Act
    const config = loadConfig({ JWT_SECRET_KMS_KEY: KMS_KEY, JWT_SECRET_PARAMETER: PARAMETER, JWT_SECRET_CACHE_SECONDS: '120' });

    // Assess
    expect(config.signingKeySource).toEqual({ kind: 'parameter', name: PARAMETER, cacheSeconds: 120, ssmEndpoint: undefined, ...SEAL });
  });

  it.each([
    ['empty', ''],
    ['blank', '  '],
  ])('treats an %s JWT_SECRET as unset (serverless passes unset variables as ""), so the parameter is used', (_case, secret) => {
    // Act
    const source = loadSigningKeySource({ JWT_SECRET: secret, JWT_SECRET_PARAMETER: PARAMETER, JWT_SECRET_KMS_KEY: KMS_KEY, JWT_SECRET_CACHE_SECONDS: '', SSM_ENDPOINT: '' });

    // Assess
    expect(source).toEqual({ kind: 'parameter', name: PARAMETER, cacheSeconds: 300, ssmEndpoint: undefined, ...SEAL });
  });

  it.each([
    ['1', 1],
    ['60', 60],
    ['3600', 3600],
  ])('reads JWT_SECRET_CACHE_SECONDS=%s', (raw, seconds) => {
    expect(loadSigningKeySource({ JWT_SECRET_KMS_KEY: KMS_KEY, JWT_SECRET_PARAMETER: PARAMETER, JWT_SECRET_CACHE_SECONDS: raw })).toMatchObject({ cacheSeconds: seconds });
  });

  it.each([
    ['http://localhost:4566'],
    ['https://ssm.eu-west-1.amazonaws.com'],
    ['http://127.0.0.1:8123/ssm'],
  ])('reads SSM_ENDPOINT=%s', (endpoint) => {
    expect(loadSigningKeySource({ JWT_SECRET_KMS_KEY: KMS_KEY, JWT_SECRET_PARAMETER: PARAMETER, SSM_ENDPOINT: endpoint })).toMatchObject({ ssmEndpoint: endpoint });
  });

  it.each([
    ['JWT_SECRET_CACHE_SECONDS', '0'],
    ['JWT_SECRET_CACHE_SECONDS', '3601'],
    ['JWT_SECRET_CACHE_SECONDS', '-1'],
    ['JWT_SECRET_CACHE_SECONDS', '5m'],
    ['SSM_ENDPOINT', 'localhost:4566'],
    ['SSM_ENDPOINT', 'ftp://localhost:4566'],
    ['SSM_ENDPOINT', 'http://localhost:4566 oops'],
    ['SSM_ENDPOINT', 'http:///ssm'],
  ])('refuses %s=%s with a ConfigError naming the variable', (variable, value) => {
    // Act
    const error = configError(() => loadConfig({ JWT_SECRET_KMS_KEY: KMS_KEY, JWT_SECRET_PARAMETER: PARAMETER, [variable]: value }));

    // Assess
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(variable);
    expect(error.message).toContain(value);
  });

  it.each([
    ['a name with spaces', 'no spaces allowed'],
    ['a relative path', 'relative/path'],
    ['a trailing slash', '/trailing/'],
    ['an empty path segment', '/a//b'],
    ['a lone slash', '/'],
    ['a character SSM does not allow', '/vpn-auth/prod/keys$'],
    ['an ARN', 'arn:aws:ssm:eu-west-1:123456789012:parameter/vpn-auth/prod/jwt-signing-keys'],
    ['1012 characters', `/${'a'.repeat(1011)}`],
  ])('refuses a JWT_SECRET_PARAMETER of %s with a ConfigError naming JWT_SECRET_PARAMETER', (_case, name) => {
    // Act
    const error = configError(() => loadConfig({ JWT_SECRET_KMS_KEY: KMS_KEY, JWT_SECRET_PARAMETER: name }));

    // Assess
    expect(error.variable).toBe('JWT_SECRET_PARAMETER');
    expect(error.message).toMatch(/^Invalid configuration: JWT_SECRET_PARAMETER must be an SSM parameter name/);
  });

  it.each([
    ['a path', PARAMETER],
    ['a plain name', 'plain_name-1.2'],
    ['1011 characters', `/${'a'.repeat(1010)}`],
  ])('accepts a JWT_SECRET_PARAMETER of %s', (_case, name) => {
    expect(loadSigningKeySource({ JWT_SECRET_KMS_KEY: KMS_KEY, JWT_SECRET_PARAMETER: name })).toMatchObject({ kind: 'parameter', name });
  });

  it('requires JWT_SECRET_KMS_KEY with the parameter, and MFA_KEY_KMS_KEY with the MFA parameter, naming each', () => {
    // Act
    const signing = configError(() => loadConfig({ JWT_SECRET_PARAMETER: PARAMETER }));
    const mfa = configError(() => loadConfig({ JWT_SECRET: SECRET, MFA_KEY_PARAMETER: '/vpn-auth/prod/mfa-keys' }));

    // Assess
    expect(signing.variable).toBe('JWT_SECRET_KMS_KEY');
    expect(signing.message).toContain('alias/vpn-auth-prod-signing-keys');
    expect(mfa.variable).toBe('MFA_KEY_KMS_KEY');
    expect(mfa.message).toContain('alias/vpn-auth-prod-mfa-keys');
  });

  it.each([
    ['an alias', 'alias/vpn-auth-prod-signing-keys'],
    ['an alias ARN', 'arn:aws:kms:eu-west-1:123456789012:alias/vpn-auth-prod-signing-keys'],
    ['a key ARN', 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab'],
    ['a key id', '1234abcd-12ab-34cd-56ef-1234567890ab'],
    ['a multi-Region key id', 'mrk-1234abcd12ab34cd56ef1234567890ab'],
  ])('accepts a JWT_SECRET_KMS_KEY of %s', (_case, keyId) => {
    expect(loadSigningKeySource({ JWT_SECRET_PARAMETER: PARAMETER, JWT_SECRET_KMS_KEY: keyId })).toMatchObject({ kmsKeyId: keyId });
  });

  it.each([
    ['a name without alias/', 'vpn-auth-prod-signing-keys'],
    ['an SSM parameter ARN', 'arn:aws:ssm:eu-west-1:123456789012:parameter/vpn-auth/prod/jwt-signing-keys'],
    ['spaces', 'alias/with space'],
    ["SSM's AWS managed key, which the whole account may use through SSM", 'alias/aws/ssm'],
    ['an AWS managed key by alias ARN', 'arn:aws:kms:eu-west-1:123456789012:alias/aws/ssm'],
  ])('refuses a JWT_SECRET_KMS_KEY of %s with a ConfigError naming it', (_case, keyId) => {
    expect(configError(() => loadConfig({ JWT_SECRET_PARAMETER: PARAMETER, JWT_SECRET_KMS_KEY: keyId })).variable).toBe('JWT_SECRET_KMS_KEY');
  });

  it("seals for STAGE and the ring: the encryption context the Lambdas name to KMS; KMS_ENDPOINT, else the SDK's AWS_ENDPOINT_URL_KMS", () => {
    // Act
    const config = loadConfig({ STAGE: 'prod', JWT_SECRET_PARAMETER: PARAMETER, JWT_SECRET_KMS_KEY: KMS_KEY, MFA_KEY_PARAMETER: '/vpn-auth/prod/mfa-keys', MFA_KEY_KMS_KEY: 'alias/vpn-auth-prod-mfa-keys', AWS_ENDPOINT_URL_KMS: 'http://127.0.0.1:5' });
    const preferred = loadSigningKeySource({ JWT_SECRET_PARAMETER: PARAMETER, JWT_SECRET_KMS_KEY: KMS_KEY, KMS_ENDPOINT: 'http://127.0.0.1:6', AWS_ENDPOINT_URL_KMS: 'http://127.0.0.1:5' });

    // Assess
    expect(config.signingKeySource).toMatchObject({ kmsKeyId: KMS_KEY, encryptionContext: { stage: 'prod', ring: 'signing' }, kmsEndpoint: 'http://127.0.0.1:5' });
    expect(config.mfa.keySource).toMatchObject({ kmsKeyId: 'alias/vpn-auth-prod-mfa-keys', encryptionContext: { stage: 'prod', ring: 'mfa' } });
    expect(preferred).toMatchObject({ kmsEndpoint: 'http://127.0.0.1:6' });
    expect(configError(() => loadConfig({ JWT_SECRET_PARAMETER: PARAMETER, JWT_SECRET_KMS_KEY: KMS_KEY, KMS_ENDPOINT: 'kms.local' })).variable).toBe('KMS_ENDPOINT');
  });

  it.each([
    ['neither is set', {}],
    ['both are empty', { JWT_SECRET: '', JWT_SECRET_PARAMETER: '' }],
  ])('refuses when %s, naming JWT_SECRET and mentioning JWT_SECRET_PARAMETER', (_case, env) => {
    // Act
    const error = configError(() => loadConfig(env));

    // Assess
    expect(error.variable).toBe('JWT_SECRET');
    expect(error.message).toMatch(/^Invalid configuration: JWT_SECRET is required/);
    expect(error.message).toContain('JWT_SECRET_PARAMETER');
  });

  it('gives signingKeyEntries of a JSON ring as [kid, secret] pairs in the ring order', () => {
    // Act: "z-new" sorts after "a-old"; the ring's order must win
    const entries = signingKeyEntries(JSON.stringify({ 'z-new': SECRET, 'a-old': OTHER_SECRET }));

    // Assess
    expect(entries).toEqual([
      ['z-new', SECRET],
      ['a-old', OTHER_SECRET],
    ]);
  });

  it('gives signingKeyEntries of a bare secret as one pair under kidFor(secret)', () => {
    expect(signingKeyEntries(SECRET)).toEqual([[kidFor(SECRET), SECRET]]);
  });
});

describe('loadStoreConfig', () => {
  it('needs no JWT_SECRET (the users CLI has none)', () => {
    // Act
    const config = loadStoreConfig({});

    // Assess
    expect(config).toEqual({
      stage: 'dev',
      region: 'us-east-1',
      usersTable: 'vpn-auth-dev-users',
      sessionsTable: 'vpn-auth-dev-sessions',
      attemptsTable: 'vpn-auth-dev-attempts',
      dynamodbEndpoint: undefined,
      placeholderCredentials: false,
      functionName: undefined,
      bcryptCost: 12,
      passwordMinLength: 12,
    });
  });

  it.each([
    ['DYNAMODB_ENDPOINT, always with placeholder credentials', { DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000', AWS_PROFILE: 'dev' }, true],
    ["the SDK's AWS_ENDPOINT_URL_DYNAMODB, with placeholders when no credentials are configured", { AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:8000' }, true],
    ['AWS_ENDPOINT_URL_DYNAMODB with the credentials configured', { AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:8000', AWS_ACCESS_KEY_ID: 'AKIA' }, false],
  ])('takes the DynamoDB endpoint from %s', (_label, env, placeholders) => {
    expect(loadStoreConfig(env)).toMatchObject({ dynamodbEndpoint: 'http://127.0.0.1:8000', placeholderCredentials: placeholders });
  });

  it("names the Lambda it runs as from AWS_LAMBDA_FUNCTION_NAME (its placeholder credentials carry it)", () => {
    expect(loadStoreConfig({ AWS_LAMBDA_FUNCTION_NAME: 'vpn-auth-dev-login', DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000' }).functionName).toBe('vpn-auth-dev-login');
  });

  it('prefers DYNAMODB_ENDPOINT, and takes the SSM endpoint from SSM_ENDPOINT or AWS_ENDPOINT_URL_SSM', () => {
    expect(loadStoreConfig({ DYNAMODB_ENDPOINT: 'http://127.0.0.1:1', AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:2' }).dynamodbEndpoint).toBe('http://127.0.0.1:1');
    expect(loadSigningKeySource({ JWT_SECRET_PARAMETER: '/p', JWT_SECRET_KMS_KEY: 'alias/k', AWS_ENDPOINT_URL_SSM: 'http://127.0.0.1:3' })).toMatchObject({ ssmEndpoint: 'http://127.0.0.1:3' });
    expect(loadSigningKeySource({ JWT_SECRET_PARAMETER: '/p', JWT_SECRET_KMS_KEY: 'alias/k', SSM_ENDPOINT: 'http://127.0.0.1:4', AWS_ENDPOINT_URL_SSM: 'http://127.0.0.1:3' })).toMatchObject({ ssmEndpoint: 'http://127.0.0.1:4' });
  });

  it('validates its own variables', () => {
    expect(configError(() => loadStoreConfig({ BCRYPT_COST: '99' })).variable).toBe('BCRYPT_COST');
  });
});

describe('parseSigningKeys', () => {
  it('accepts a bare secret of exactly 32 bytes', () => {
    // Prepare
    const secret = 's'.repeat(MIN_SECRET_BYTES);

    // Act
    const keys = parseSigningKeys(secret);

    // Assess
    expect(keys.currentKid).toBe(kidFor(secret));
    expect([...keys.keys.keys()]).toEqual([kidFor(secret)]);
    expect(Buffer.from(keys.keys.get(keys.currentKid)!).toString('utf8')).toBe(secret);
  });

  it('measures the minimum in UTF-8 bytes, not characters', () => {
    // 16 × "é" is 16 characters but 32 bytes; 31 × "x" is 31 bytes.
    expect(parseSigningKeys('é'.repeat(16)).keys.get(kidFor('é'.repeat(16)))).toHaveLength(32);
    expect(configError(() => parseSigningKeys('é'.repeat(15) + 'x')).message).toContain('(got 31)');
  });

  it('reads a JSON ring: the first entry signs, all of them verify', () => {
    // Act
    const keys = parseSigningKeys(JSON.stringify({ '2026-01': SECRET, '2025-12': OTHER_SECRET }));

    // Assess
    expect(keys.currentKid).toBe('2026-01');
    expect([...keys.keys.keys()]).toEqual(['2026-01', '2025-12']);
    expect(Buffer.from(keys.keys.get('2025-12')!).toString('utf8')).toBe(OTHER_SECRET);
  });

  it('names the variable it was given', () => {
    expect(configError(() => parseSigningKeys('short', 'ROTATION_KEY')).variable).toBe('ROTATION_KEY');
    expect(configError(() => parseSigningKeys(undefined)).message).toBe('Invalid configuration: JWT_SECRET is required');
  });

  it.each([
    ['a short key', JSON.stringify({ current: SECRET, old: 'short' }), 'keys must be at least 32 bytes'],
    ['JSON that does not parse', '{not json', 'looks like JSON but does not parse'],
    ['an empty object', '{}', 'holds no keys'],
    ['a bad kid', JSON.stringify({ 'kid with spaces': SECRET }), 'entry 1 has an invalid kid'],
    ['a too-long kid', JSON.stringify({ ['k'.repeat(65)]: SECRET }), 'has an invalid kid'],
    ['a key that is not a string', JSON.stringify({ current: { nested: SECRET } }), 'entry 1 must have a string key'],
  ])('refuses a ring with %s', (_case, raw, problem) => {
    expect(configError(() => parseSigningKeys(raw)).message).toContain(problem);
  });

  it('refuses a JSON array of secrets', () => {
    expect(configError(() => parseSigningKeys(JSON.stringify([SECRET, OTHER_SECRET]))).message).toContain('JSON object');
  });

  it('refuses all-digit kids, which JSON would reorder ahead of the intended current key', () => {
    expect(configError(() => parseSigningKeys(JSON.stringify({ '2025': SECRET, '2024': OTHER_SECRET }))).message).toContain('invalid kid');
  });
});

describe('kidFor', () => {
  it('is a stable 8-character base64url id that differs per secret', () => {
    // Act
    const kid = kidFor(SECRET);

    // Assess
    expect(kid).toMatch(/^[A-Za-z0-9_-]{8}$/);
    expect(kidFor(SECRET)).toBe(kid);
    expect(kidFor(OTHER_SECRET)).not.toBe(kid);
  });

  it('is a prefix of the SHA-256 of the secret, so it does not reveal the secret', () => {
    // SHA-256("abc") = ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0 in base64url
    expect(kidFor('abc')).toBe('ungWv48B');
  });
});

describe('isProductionStage', () => {
  it.each(['prod', 'production'])('is true for %s', (stage) => {
    expect(isProductionStage(stage)).toBe(true);
  });

  it.each(['dev', 'staging', 'Prod', 'prod-eu', ''])('is false for "%s"', (stage) => {
    expect(isProductionStage(stage)).toBe(false);
  });
});
