import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AuthService } from './auth/auth-service.js';
import { ApiKeysRepository } from './store/api-keys.js';
import { loadConfig, parseSigningKeys, type Config, type KeySource } from './platform/config.js';
import { createDocumentClient } from './platform/dynamo.js';
import { LoginAttempts } from './store/login-attempts.js';
import { KeyManagement } from './platform/key-management.js';
import { ParameterStore } from './platform/parameter-store.js';
import { openSealedRing } from './auth/sealed-ring.js';
import { SessionsRepository } from './store/sessions.js';
import { FetchedKeyRing, FixedKeyRing, type KeyRing } from './auth/signing-keys.js';
import { AccessTokens, type Clock } from './auth/tokens.js';
import { UsersRepository } from './store/users.js';

/** Everything a handler or the CLI needs, wired once per process. */
export interface App {
  config: Config;
  db: DynamoDBDocumentClient;
  users: UsersRepository;
  sessions: SessionsRepository;
  attempts: LoginAttempts;
  apiKeys: ApiKeysRepository;
  keyRing: KeyRing;
  /** The MFA key ring (lib/mfa/secret-box.ts); undefined when none is configured. */
  mfaKeyRing: KeyRing | undefined;
  tokens: AccessTokens;
  auth: AuthService;
  clock: Clock;
}

/** A key ring from its source (inline, or an SSM parameter sealed by KMS): the Lambdas' and the CLIs' way alike. */
export function createKeyRing(source: KeySource, variable: string, what: 'signing_keys' | 'mfa_keys', config: Pick<Config, 'region'>, db: DynamoDBDocumentClient, clock: Clock): KeyRing {
  if (source.kind === 'inline') return new FixedKeyRing(source.keys);
  const store = ParameterStore.sharingCredentialsWith(db, config.region, source.ssmEndpoint);
  const kms = KeyManagement.sharingCredentialsWith(db, config.region, source.kmsEndpoint);
  return new FetchedKeyRing({
    // Only a ring the stage's operators sealed under its key: never whatever the parameter holds.
    fetch: async () => openSealedRing(await store.get(source.name), kms, source, source.name),
    parse: (raw) => parseSigningKeys(raw, variable),
    cacheSeconds: source.cacheSeconds,
    source: source.name,
    what,
    clock,
  });
}

export function createApp(config: Config, clock: Clock = () => new Date()): App {
  const db = createDocumentClient(config);
  const users = new UsersRepository(db, config.usersTable);
  const sessions = new SessionsRepository(db, config.sessionsTable, config.usersTable);
  const attempts = new LoginAttempts(db, config.attemptsTable, config.usersTable, config.sessionsTable, config.loginLimits, config.deviceTokenTtlSeconds);
  const apiKeys = new ApiKeysRepository(db, config.attemptsTable, config.usersTable);
  const keyRing = createKeyRing(config.signingKeySource, 'JWT_SECRET_PARAMETER', 'signing_keys', config, db, clock);
  const mfaKeyRing = config.mfa.keySource && createKeyRing(config.mfa.keySource, 'MFA_KEY_PARAMETER', 'mfa_keys', config, db, clock);
  const tokens = new AccessTokens({
    keyRing,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    ttlSeconds: config.accessTokenTtlSeconds,
    clock,
  });
  const auth = new AuthService({ config, keyRing, users, sessions, attempts, tokens, clock });
  return { config, db, users, sessions, attempts, apiKeys, keyRing, mfaKeyRing, tokens, auth, clock };
}

let current: App | undefined;

/**
 * The process-wide app, from the environment, validated at the first call (a Lambda's cold start).
 * Keys held in SSM are requested right away, so the read overlaps the rest of the cold start; a
 * failure here is only logged, and the first request that needs the keys tries again.
 */
export function app(): App {
  if (!current) {
    current = createApp(loadConfig());
    if (current.config.signingKeySource.kind === 'parameter') current.keyRing.current().catch(() => undefined);
  }
  return current;
}
