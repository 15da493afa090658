import type { App } from '../app.js';
import type { Config, Role } from '../platform/config.js';
import { ApiError } from '../platform/errors.js';
import { looksLikeApiKey, newApiKey, newApiKeyId } from '../platform/ids.js';
import { log } from '../platform/log.js';
import { oncePer } from '../platform/memo.js';
import { METRIC, countMetric } from '../platform/metrics.js';
import { toPublicApiKey, type ApiKeysRepository, type PublicApiKey } from '../store/api-keys.js';
import { epochSeconds } from '../store/sessions.js';
import { toPublicUser, type PublicUser, type User } from '../store/users.js';
import type { AuthService, Caller, StandingSession } from './auth-service.js';
import { ROLE_RANK, checkApiKey } from './credentials.js';
import type { Clock } from './tokens.js';

/** One "day" of `expires_in_days`. */
const DAY_SECONDS = 86_400;

export interface NewApiKeyRequest {
  name: string;
  expiresInDays: number;
  role: Role | undefined;
}

/** An API key as GET /api-keys lists it. */
export type ApiKeyView = PublicApiKey & { hint: string };

/** Who a bearer is: a session's access token, or an API key acting with its effective role. */
export type Bearer =
  | { method: 'session'; standing: StandingSession }
  | { method: 'api_key'; user: User; role: Role; apiKeyId: string };

export interface ApiKeyServiceDeps {
  config: Pick<Config, 'maxApiKeysPerUser' | 'mfa'>;
  auth: AuthService;
  apiKeys: ApiKeysRepository;
  clock: Clock;
}

/**
 * API keys for scripts and services: made, listed and revoked by a signed-in user (a session's
 * access token, never a key: lib/http/http.ts, sessionBearerToken), checked by the authorizer and
 * /auth/me (lib/auth/credentials.ts, apiKey). A key is shown once and stored as SHA-256 only.
 */
export class ApiKeyService {
  constructor(private readonly deps: ApiKeyServiceDeps) {}

  /**
   * A new key, for a session that stands; one signed in with a second factor when the user has
   * TOTP on or a role that requires it (else 403 `otp_session_required`). The key's role is at
   * most the owner's (400 otherwise); at most MAX_API_KEYS_PER_USER live keys (409 `api_key_limit`).
   */
  async create(accessToken: string, request: NewApiKeyRequest, caller: Caller): Promise<{ key: string; api_key: PublicApiKey }> {
    const { user, sessionId, amr } = await this.deps.auth.authenticate(accessToken);
    const secondFactorDue = user.totp?.status === 'active' || this.deps.config.mfa.requiredRoles.includes(user.role);
    if (secondFactorDue && !amr.includes('otp') && !amr.includes('mfa')) throw new ApiError('otp_session_required', 'Making an API key needs a session signed in with a second factor. Sign in again with your authenticator code.');
    const role = request.role ?? user.role;
    if (ROLE_RANK[role] > ROLE_RANK[user.role]) throw new ApiError('invalid_request', `The field "role" must be no higher than your own role ("${user.role}").`);
    const now = this.deps.clock();
    const secrets = new Map<number, string>();
    const made = await this.deps.apiKeys.create(
      {
        userId: user.id,
        mint: (slot) => {
          const { key, keyId, hash } = newApiKey(newApiKeyId(user.id, slot));
          secrets.set(slot, key);
          return { id: keyId, keyHash: hash, hint: key.slice(-4) };
        },
        name: request.name,
        role,
        apiKeyEpoch: user.apiKeyEpoch,
        expiresAt: epochSeconds(now) + request.expiresInDays * DAY_SECONDS,
      },
      this.deps.config.maxApiKeysPerUser,
      now,
    );
    if (!made) {
      log.info('api_key_refused_limit', { userId: user.id, sessionId, limit: this.deps.config.maxApiKeysPerUser, ...caller });
      throw new ApiError('api_key_limit');
    }
    countMetric(METRIC.apiKeyCreated);
    log.info('api_key_created', { userId: user.id, sessionId, keyId: made.id, role, expiresAt: made.expiresAt, ...caller });
    return { key: secrets.get(made.slot)!, api_key: toPublicApiKey(made) };
  }

  /** The caller's live keys, newest first, with each key's last 4 characters. */
  async list(accessToken: string, caller: Caller): Promise<ApiKeyView[]> {
    const { user, sessionId } = await this.deps.auth.authenticate(accessToken);
    const keys = await this.liveKeys(user);
    log.info('api_keys_listed', { userId: user.id, sessionId, count: keys.length, ...caller });
    return keys;
  }

  /** A user's live keys, newest first. */
  async liveKeys(user: User): Promise<ApiKeyView[]> {
    const keys = await this.deps.apiKeys.liveKeys(user, this.deps.clock());
    return keys.map((key) => ({ ...toPublicApiKey(key), hint: key.hint }));
  }

  /**
   * Revoke one of the caller's keys: refused everywhere from its next use. An id that is not one
   * of the caller's keys (unknown, malformed, another user's) is 404 `api_key_not_found`, one
   * answer for all three; a key already ended is 200 again.
   */
  async revoke(accessToken: string, keyId: string, caller: Caller): Promise<void> {
    const { user, sessionId } = await this.deps.auth.authenticate(accessToken);
    const ended = await this.deps.apiKeys.revokeById(user, keyId, this.deps.clock());
    if (ended === undefined) {
      log.info('api_key_revoke_refused', { userId: user.id, sessionId, reason: 'api_key_not_found', ...caller });
      throw new ApiError('api_key_not_found');
    }
    if (ended) countMetric(METRIC.apiKeyRevoked);
    log.info('api_key_revoked', { userId: user.id, sessionId, keyId, wasLive: ended, by: 'user', ...caller });
  }

  /**
   * Who presents this bearer (the authorizer, /auth/me): an API key by its prefix, checked by
   * lib/auth/credentials.ts; anything else as a session's access token.
   */
  async bearer(token: string, { lastLogin = false, caller = {} }: { lastLogin?: boolean; caller?: Partial<Caller> } = {}): Promise<Bearer> {
    if (!looksLikeApiKey(token)) return { method: 'session', standing: await this.deps.auth.authenticate(token, { lastLogin }) };
    // The caller goes into the audit line of a refused key.
    const { user, key, role } = await checkApiKey(this.deps, token, caller, { lastLogin });
    return { method: 'api_key', user, role, apiKeyId: key.id };
  }

  /** GET /auth/me: the user as stored now; with an API key, `role` is the key's effective role. */
  async me(token: string, caller: Partial<Caller> = {}): Promise<PublicUser> {
    const bearer = await this.bearer(token, { lastLogin: true, caller });
    return bearer.method === 'session' ? toPublicUser(bearer.standing.user) : { ...toPublicUser(bearer.user), role: bearer.role };
  }
}

export const apiKeyService = oncePer((app: App) => new ApiKeyService(app));
