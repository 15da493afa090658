import { createHash } from 'node:crypto';
import { isProductionStage, tableNames } from '../../infra/tables.js';
import { ringEncryptionContext } from '../../infra/rings.js';

export { isProductionStage };

/** A configuration value that is missing or malformed; the message names the variable. */
export class ConfigError extends Error {
  constructor(readonly variable: string, problem: string) {
    super(`Invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

export interface SigningKeys {
  /** kid of the key new tokens are signed with. */
  currentKid: string;
  /** Every key that may verify a token, by kid (current and previous ones). */
  keys: ReadonlyMap<string, Uint8Array>;
}

/** Where the data lives, and how passwords are hashed: all the users CLI needs. */
export interface StoreConfig {
  stage: string;
  region: string;
  usersTable: string;
  sessionsTable: string;
  attemptsTable: string;
  /** Set for the local stack (dynalite); unset in AWS. DYNAMODB_ENDPOINT, or the SDK's own AWS_ENDPOINT_URL_DYNAMODB. */
  dynamodbEndpoint: string | undefined;
  /**
   * Sign requests to that endpoint with placeholder credentials (dynalite checks that there are
   * some, not which): always for DYNAMODB_ENDPOINT (the local stack's own variable); for the SDK's
   * AWS_ENDPOINT_URL_DYNAMODB only when no credentials are configured (no AWS_ACCESS_KEY_ID or AWS_PROFILE).
   */
  placeholderCredentials: boolean;
  /**
   * The Lambda this process runs as (AWS_LAMBDA_FUNCTION_NAME; unset for the CLIs and the tests'
   * own clients). Placeholder credentials carry it, so that the local stack holds each function to
   * its own role as IAM does in AWS (lib/platform/local-credentials.ts).
   */
  functionName: string | undefined;
  bcryptCost: number;
  /** The fewest characters (Unicode code points) a new password may have (lib/auth/password-policy.ts). */
  passwordMinLength: number;
}

/**
 * What every HTTP response and request is held to. (CORS is API Gateway's alone: infra/cors.js;
 * it ignores CORS headers a Lambda would send.)
 */
export interface HttpPolicy {
  /** Refuse anything that did not reach API Gateway over HTTPS, and send HSTS. */
  requireHttps: boolean;
  /** How long one request may wait for DynamoDB in all, then 503 (lib/platform/dynamo.ts, withStoreDeadline). */
  storeDeadlinesMs: StoreDeadlines;
}

/**
 * A request's deadline for DynamoDB (ms), every call, attempt and backoff included: `fast` for what
 * sits in front of every call of the product or keeps a client signed in (the authorizer, /auth/me,
 * refresh), `standard` for the other endpoints. DynamoDB's p99 is a few milliseconds, so the SDK's
 * retries fit well inside; a store that hangs costs a request this long, then a 503 with Retry-After.
 */
export interface StoreDeadlines {
  fast: number;
  standard: number;
}

export const DEFAULT_STORE_DEADLINES_MS: StoreDeadlines = { fast: 1500, standard: 3000 };

/** Brute-force limits: failed logins counted in DynamoDB, checked before bcrypt runs. */
export interface LoginLimits {
  /** Consecutive failures of one account from one IP before that pair is locked. */
  maxFailures: number;
  lockoutSeconds: number;
  /** Attempts on one account without a live device token, from all IPs, in a clock hour (OWASP ASVS: at most 100). */
  accountMaxFailuresPerHour: number;
  /** Failures from one IP across all accounts in a 15-minute window. */
  ipMaxFailures: number;
}

/** How long sessions last without use, and how many one user may hold. */
export interface SessionPolicy {
  /** A session not refreshed for this long has ended (0: no idle timeout). */
  idleSeconds: number;
  /** A sign-in that would leave more live sessions ends the least recently used (0: no cap). */
  maxPerUser: number;
}

/**
 * Where a key ring comes from: an environment variable holding the ring itself (the local stack,
 * tests), or the SSM SecureString parameter another variable names (AWS; the template never holds
 * a key), which holds the ring sealed by KMS (lib/auth/sealed-ring.ts). The JWT signing keys come
 * from JWT_SECRET / JWT_SECRET_PARAMETER + JWT_SECRET_KMS_KEY; the MFA keys, which seal TOTP
 * secrets, from MFA_KEY / MFA_KEY_PARAMETER + MFA_KEY_KMS_KEY.
 */
export type KeySource =
  | { kind: 'inline'; keys: SigningKeys }
  | {
      kind: 'parameter';
      name: string;
      /** How long a Lambda uses the keys it read before reading them again. */
      cacheSeconds: number;
      /** An SSM-compatible endpoint (tests); unset in AWS. */
      ssmEndpoint: string | undefined;
      /** The stage's own KMS key for this ring: a ring sealed under any other key is refused. */
      kmsKeyId: string;
      /** The encryption context it must have been sealed with: the stage and the ring. */
      encryptionContext: Readonly<Record<string, string>>;
      /** A KMS-compatible endpoint (tests); unset in AWS. */
      kmsEndpoint: string | undefined;
    };
export type SigningKeySource = KeySource;

/** The users' roles (lib/store/users.ts); MFA_REQUIRED_ROLES names some of them. */
export const ROLES = ['admin', 'user'] as const;
export type Role = (typeof ROLES)[number];

/** Second factors: who must have one, and where the keys that protect them come from. */
export interface MfaPolicy {
  /** Users of these roles must sign in with TOTP; without it, a right password only leads to enrolment. */
  requiredRoles: readonly Role[];
  /** Undefined when neither MFA_KEY nor MFA_KEY_PARAMETER is set: the MFA functions refuse to start. */
  keySource: KeySource | undefined;
  /** An account's consecutive wrong TOTP codes (and, apart, recovery codes) before they are refused. */
  maxFailures: number;
  /** How long the first such lock lasts; each further one doubles, up to a day. */
  lockoutSeconds: number;
}

export interface Config extends StoreConfig, HttpPolicy {
  loginLimits: LoginLimits;
  sessionPolicy: SessionPolicy;
  signingKeySource: SigningKeySource;
  mfa: MfaPolicy;
  jwtIssuer: string;
  jwtAudience: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  /** How long the refresh token rotated out last still works (racing tabs, retried requests). */
  refreshReuseGraceSeconds: number;
  /** How long a device token handed out at sign-in stays good (renewed by each sign-in with it). */
  deviceTokenTtlSeconds: number;
  /** How many live API keys a user may have (lib/store/api-keys.ts: one slot each). */
  maxApiKeysPerUser: number;
  /** Single sign-on with a company's OpenID Connect provider (lib/auth/sso-service.ts). */
  sso: SsoPolicy;
}

/** Where federated sign-ins come back to, and where they may end. */
export interface SsoPolicy {
  /**
   * PUBLIC_BASE_URL (param publicBaseUrl): this API's own origin as the IdP sees it; the callback is
   * `<it>/v1/auth/sso/callback`. Outside production it defaults to http://localhost:<PORT>; in
   * production it has no default (undefined), and the SSO functions refuse to start without it.
   */
  publicBaseUrl: string | undefined;
  /**
   * SSO_REDIRECT_URIS (param ssoRedirectUris, comma-separated): where a sign-in may send its one-time
   * code. Matched exactly, except that `http://127.0.0.1/PATH` and `http://[::1]/PATH` match any port
   * (RFC 8252 §7.3, desktop clients).
   */
  redirectUris: readonly string[];
  /** Loopback http issuers are allowed (tests, the local demo IdP): every stage but production. */
  allowLoopbackIssuers: boolean;
}

export const MIN_SECRET_BYTES = 32;
// Not all digits: JSON objects list integer-like keys first, which would reorder the ring.
const KID_PATTERN = /^(?!\d+$)[A-Za-z0-9._-]{1,64}$/;

type Env = Record<string, string | undefined>;

/** serverless.yml passes unset variables through as '', which means "use the default". */
function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function secretBytes(name: string, secret: string): Uint8Array {
  const bytes = new TextEncoder().encode(secret);
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new ConfigError(name, `keys must be at least ${MIN_SECRET_BYTES} bytes (got ${bytes.length})`);
  }
  return bytes;
}

/** A stable, non-secret key id for a bare secret: a prefix of its SHA-256. */
export function kidFor(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url').slice(0, 8);
}

/**
 * JWT_SECRET is either one secret, or a JSON object `{"kid": "secret", ...}` whose first
 * entry signs new tokens while the others still verify tokens issued before a rotation.
 * Returns the ring's entries in order, validated (the key-rotation command edits them).
 */
export function signingKeyEntries(raw: string | undefined, name = 'JWT_SECRET'): Array<[kid: string, secret: string]> {
  if (raw === undefined) throw new ConfigError(name, 'is required');
  if (!raw.startsWith('{') && !raw.startsWith('[')) {
    secretBytes(name, raw);
    return [[kidFor(raw), raw]];
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(name, 'looks like JSON but does not parse');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(name, 'must be a JSON object of {"kid": "secret"}');
  }
  const entries = Object.entries(parsed);
  if (entries.length === 0) throw new ConfigError(name, 'holds no keys');
  // Entries are named by position, never by text: a ring written the wrong way round would
  // otherwise put a key into the message, and from there into a log.
  entries.forEach(([kid, secret], index) => {
    if (!KID_PATTERN.test(kid)) throw new ConfigError(name, `entry ${index + 1} has an invalid kid (1-64 of A-Z a-z 0-9 . _ -, not all digits)`);
    if (typeof secret !== 'string') throw new ConfigError(name, `entry ${index + 1} must have a string key`);
    secretBytes(name, secret);
  });
  return entries as Array<[string, string]>;
}

export function parseSigningKeys(raw: string | undefined, name = 'JWT_SECRET'): SigningKeys {
  const entries = signingKeyEntries(raw, name);
  return { currentKid: entries[0]![0], keys: new Map(entries.map(([kid, secret]) => [kid, secretBytes(name, secret)])) };
}

export function loadStoreConfig(env: Env = process.env): StoreConfig {
  const stage = read(env, 'STAGE') ?? 'dev';
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(stage)) throw new ConfigError('STAGE', `must be lower-case letters, digits and dashes, got "${stage}"`);
  const defaults = tableNames(stage);
  const local = endpointUrl(env, 'DYNAMODB_ENDPOINT');
  const endpoint = dynamodbEndpointFrom(env);
  return {
    stage,
    region: read(env, 'AWS_REGION') ?? read(env, 'AWS_DEFAULT_REGION') ?? 'us-east-1',
    usersTable: read(env, 'USERS_TABLE') ?? defaults.users,
    sessionsTable: read(env, 'SESSIONS_TABLE') ?? defaults.sessions,
    attemptsTable: read(env, 'ATTEMPTS_TABLE') ?? defaults.attempts,
    dynamodbEndpoint: endpoint,
    placeholderCredentials: local !== undefined || (endpoint !== undefined && read(env, 'AWS_ACCESS_KEY_ID') === undefined && read(env, 'AWS_PROFILE') === undefined),
    functionName: read(env, 'AWS_LAMBDA_FUNCTION_NAME'),
    bcryptCost: integer(env, 'BCRYPT_COST', 12, 4, 15),
    // NIST SP 800-63B: never fewer than 8; 64 at most, so that any minimum leaves room below bcrypt's 72 bytes.
    passwordMinLength: integer(env, 'PASSWORD_MIN_LENGTH', 12, 8, 64),
  };
}

/** A DynamoDB endpoint other than AWS's: DYNAMODB_ENDPOINT (the local stack's), else the SDK's AWS_ENDPOINT_URL_DYNAMODB. */
export function dynamodbEndpointFrom(env: Env = process.env): string | undefined {
  return endpointUrl(env, 'DYNAMODB_ENDPOINT') ?? endpointUrl(env, 'AWS_ENDPOINT_URL_DYNAMODB');
}

/** An SSM endpoint other than AWS's: SSM_ENDPOINT (the tests' fake), else the SDK's AWS_ENDPOINT_URL_SSM. */
export function ssmEndpointFrom(env: Env = process.env): string | undefined {
  return endpointUrl(env, 'SSM_ENDPOINT') ?? endpointUrl(env, 'AWS_ENDPOINT_URL_SSM');
}

/** A KMS endpoint other than AWS's: KMS_ENDPOINT (the tests' fake), else the SDK's AWS_ENDPOINT_URL_KMS. */
export function kmsEndpointFrom(env: Env = process.env): string | undefined {
  return endpointUrl(env, 'KMS_ENDPOINT') ?? endpointUrl(env, 'AWS_ENDPOINT_URL_KMS');
}

// What KMS's Decrypt takes as KeyId: an alias name or ARN, a key id or ARN.
const KMS_KEY_ID = /^(alias\/[A-Za-z0-9/_-]{1,250}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(alias\/[A-Za-z0-9/_-]{1,250}|key\/(mrk-[0-9a-f]{32}|[0-9a-f-]{36}))|mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** The stage's KMS key a ring must be sealed under: required with the parameter (serverless.yml names the stage's alias). */
function kmsKey(env: Env, name: string, ring: string): string {
  const keyId = read(env, name);
  if (keyId === undefined) throw new ConfigError(name, `is required with the SSM parameter: the KMS key its ring must be sealed under, like alias/vpn-auth-prod-${ring === 'mfa' ? 'mfa' : 'signing'}-keys`);
  if (!KMS_KEY_ID.test(keyId)) throw new ConfigError(name, `must be a KMS key id, key ARN, alias or alias ARN, got "${keyId}"`);
  // An AWS managed key is usable by the whole account through its service: no proof of who sealed.
  if (/(^|:)alias\/aws\//.test(keyId)) throw new ConfigError(name, `must be the stage's own key, not an AWS managed key, got "${keyId}"`);
  return keyId;
}

function endpointUrl(env: Env, name: string): string | undefined {
  const endpoint = read(env, name);
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+(\/\S*)?$/.test(endpoint)) {
    throw new ConfigError(name, `must be an http(s) URL, got "${endpoint}"`);
  }
  return endpoint;
}

// SSM's own rule: letters, digits and _.-/, fully qualified (leading /) when it has a path.
const PARAMETER_NAME = /^(\/[A-Za-z0-9_.-]+)+$|^[A-Za-z0-9_.-]+$/;

/**
 * How long a token signed with a key may live, and how long a Lambda keeps a ring it read: what
 * retiring a key must wait for (`npm run keys -- retire` reads them too).
 */
export function loadKeyTimings(env: Env = process.env): { accessTokenTtlSeconds: number; keyCacheSeconds: number } {
  return {
    accessTokenTtlSeconds: integer(env, 'ACCESS_TOKEN_TTL_SECONDS', 3600, 1, 86_400),
    keyCacheSeconds: integer(env, 'JWT_SECRET_CACHE_SECONDS', 300, 1, 3600),
  };
}

/** JWT_SECRET when set (it wins, so the local stack needs nothing else), else JWT_SECRET_PARAMETER. */
export function loadSigningKeySource(env: Env = process.env): SigningKeySource {
  const source = loadKeySource(env, 'signing');
  if (!source) throw new ConfigError('JWT_SECRET', 'is required (or JWT_SECRET_PARAMETER, the SSM parameter that holds it)');
  return source;
}

/** The variables each ring is configured by. */
const RING_VARIABLES = {
  signing: { inline: 'JWT_SECRET', parameter: 'JWT_SECRET_PARAMETER', kmsKey: 'JWT_SECRET_KMS_KEY', example: 'jwt-signing-keys' },
  mfa: { inline: 'MFA_KEY', parameter: 'MFA_KEY_PARAMETER', kmsKey: 'MFA_KEY_KMS_KEY', example: 'mfa-keys' },
} as const;

function loadKeySource(env: Env, ring: keyof typeof RING_VARIABLES): KeySource | undefined {
  const variables = RING_VARIABLES[ring];
  const inline = read(env, variables.inline);
  if (inline !== undefined) return { kind: 'inline', keys: parseSigningKeys(inline, variables.inline) };
  const name = read(env, variables.parameter);
  if (name === undefined) return undefined;
  if (name.length > 1011 || !PARAMETER_NAME.test(name)) {
    throw new ConfigError(variables.parameter, `must be an SSM parameter name like /vpn-auth/prod/${variables.example}, got "${name}"`);
  }
  return {
    kind: 'parameter',
    name,
    cacheSeconds: loadKeyTimings(env).keyCacheSeconds,
    ssmEndpoint: ssmEndpointFrom(env),
    kmsKeyId: kmsKey(env, variables.kmsKey, ring),
    encryptionContext: ringEncryptionContext(read(env, 'STAGE') ?? 'dev', ring),
    kmsEndpoint: kmsEndpointFrom(env),
  };
}

/**
 * MFA_REQUIRED_ROLES (comma-separated roles; empty by default) and the MFA key ring: MFA_KEY when
 * set, else MFA_KEY_PARAMETER. An MFA key must never be a JWT signing key (retiring a signing key
 * must not lock anyone out of their second factor): checked here for rings given inline; the rings
 * the keys CLI writes to SSM are fresh random keys, and each ring has a parameter of its own.
 */
export function loadMfaPolicy(env: Env = process.env): MfaPolicy {
  const requiredRoles = (read(env, 'MFA_REQUIRED_ROLES') ?? '').split(',').map((role) => role.trim().toLowerCase()).filter(Boolean);
  for (const role of requiredRoles) {
    if (!(ROLES as readonly string[]).includes(role)) throw new ConfigError('MFA_REQUIRED_ROLES', `must list roles among ${ROLES.join(', ')}, got "${role}"`);
  }
  const keySource = loadKeySource(env, 'mfa');
  const jwt = read(env, 'JWT_SECRET');
  if (keySource?.kind === 'inline' && jwt !== undefined) {
    const signing = new Set(signingKeyEntries(jwt).map(([, secret]) => secret));
    if (signingKeyEntries(read(env, 'MFA_KEY'), 'MFA_KEY').some(([, secret]) => signing.has(secret))) {
      throw new ConfigError('MFA_KEY', 'must not hold a JWT signing key (give the MFA keys a ring of their own)');
    }
  }
  return {
    requiredRoles: [...new Set(requiredRoles)] as Role[],
    keySource,
    maxFailures: integer(env, 'MFA_MAX_FAILURES', 10, 1, 100),
    lockoutSeconds: integer(env, 'MFA_LOCKOUT_SECONDS', 3600, 1, 86_400),
  };
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['true', '1', 'yes', 'on'].includes(raw)) return true;
  if (['false', '0', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

export function loadHttpPolicy(env: Env = process.env): HttpPolicy {
  const stage = read(env, 'STAGE') ?? 'dev';
  return {
    requireHttps: boolean(env, 'REQUIRE_HTTPS', isProductionStage(stage)),
    // Below the Lambda timeout (lambdaTimeout, 10 s), whose own 503 (lib/http/http.ts) is the backstop.
    storeDeadlinesMs: {
      fast: integer(env, 'STORE_DEADLINE_FAST_MS', DEFAULT_STORE_DEADLINES_MS.fast, 100, 9000),
      standard: integer(env, 'STORE_DEADLINE_MS', DEFAULT_STORE_DEADLINES_MS.standard, 100, 9000),
    },
  };
}

export function loadSessionPolicy(env: Env = process.env): SessionPolicy {
  return {
    idleSeconds: integer(env, 'SESSION_IDLE_SECONDS', 604_800, 0, 31_536_000),
    maxPerUser: integer(env, 'MAX_SESSIONS_PER_USER', 0, 0, 1000),
  };
}

/** A redirect URI an SSO sign-in may end at: absolute, no fragment, https (or http on loopback, RFC 8252). */
export function isAllowedRedirectEntry(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.hash !== '' || url.username !== '' || url.password !== '') return false;
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
}

export function loadSsoPolicy(env: Env = process.env): SsoPolicy {
  const stage = read(env, 'STAGE') ?? 'dev';
  const production = isProductionStage(stage);
  const base = read(env, 'PUBLIC_BASE_URL') ?? (production ? undefined : `http://localhost:${read(env, 'PORT') ?? '3000'}`);
  if (base === undefined) return { publicBaseUrl: undefined, redirectUris: redirectUrisOf(env), allowLoopbackIssuers: false };
  let parsed: URL | undefined;
  try {
    parsed = new URL(base);
  } catch {
    parsed = undefined;
  }
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.pathname.replace(/\/$/, '') !== '' || parsed.search || parsed.hash) {
    throw new ConfigError('PUBLIC_BASE_URL', `must be an origin like https://auth.example.com, got "${base}"`);
  }
  if (production && parsed.protocol !== 'https:') throw new ConfigError('PUBLIC_BASE_URL', `must be https in production, got "${base}"`);
  return { publicBaseUrl: parsed.origin, redirectUris: redirectUrisOf(env), allowLoopbackIssuers: !production };
}

function redirectUrisOf(env: Env): string[] {
  const redirectUris = (read(env, 'SSO_REDIRECT_URIS') ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
  redirectUris.forEach((entry, index) => {
    if (!isAllowedRedirectEntry(entry)) throw new ConfigError('SSO_REDIRECT_URIS', `entry ${index + 1} must be an absolute https URL (http only on loopback) without a fragment, got "${entry}"`);
  });
  return redirectUris;
}

/** The longest REFRESH_TOKEN_TTL_SECONDS allows: no session ever lasts longer (an operator's listing reads back this far). */
export const MAX_REFRESH_TOKEN_TTL_SECONDS = 31_536_000;

/** Read and validate the whole configuration once; throws ConfigError naming the bad variable. */
export function loadConfig(env: Env = process.env): Config {
  return {
    ...loadStoreConfig(env),
    ...loadHttpPolicy(env),
    signingKeySource: loadSigningKeySource(env),
    mfa: loadMfaPolicy(env),
    jwtIssuer: read(env, 'JWT_ISSUER') ?? 'vpn-enterprise-auth',
    jwtAudience: read(env, 'JWT_AUDIENCE') ?? 'vpn-enterprise',
    accessTokenTtlSeconds: loadKeyTimings(env).accessTokenTtlSeconds,
    refreshTokenTtlSeconds: integer(env, 'REFRESH_TOKEN_TTL_SECONDS', 2_592_000, 60, MAX_REFRESH_TOKEN_TTL_SECONDS),
    refreshReuseGraceSeconds: integer(env, 'REFRESH_REUSE_GRACE_SECONDS', 10, 0, 300),
    deviceTokenTtlSeconds: integer(env, 'DEVICE_TOKEN_TTL_SECONDS', 31_536_000, 60, 63_072_000),
    sessionPolicy: loadSessionPolicy(env),
    // At most 100: one BatchGetItem reads every slot of a user.
    maxApiKeysPerUser: integer(env, 'MAX_API_KEYS_PER_USER', 10, 1, 100),
    sso: loadSsoPolicy(env),
    loginLimits: {
      maxFailures: integer(env, 'LOGIN_MAX_FAILURES', 5, 1, 100),
      lockoutSeconds: integer(env, 'LOGIN_LOCKOUT_SECONDS', 900, 1, 86_400),
      accountMaxFailuresPerHour: integer(env, 'LOGIN_ACCOUNT_MAX_FAILURES', 100, 1, 1_000_000),
      ipMaxFailures: integer(env, 'LOGIN_IP_MAX_FAILURES', 100, 1, 1_000_000),
    },
  };
}
