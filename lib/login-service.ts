import type { App } from './app.js';
import { issueTokenPair, type Caller, type TokenPair } from './auth-service.js';
import type { Config } from './config.js';
import { ApiError } from './errors.js';
import { newSessionId } from './ids.js';
import { describeError, log } from './log.js';
import type { LoginAttempts } from './login-attempts.js';
import { oncePer } from './memo.js';
import { hashPassword, needsRehash, verifyPassword } from './passwords.js';
import { epochSeconds, type SessionsRepository } from './sessions.js';
import type { KeyRing } from './signing-keys.js';
import { hashRefreshSecret, newRefreshSecret, type AccessTokens, type Clock } from './tokens.js';
import type { UsersRepository } from './users.js';

export interface LoginServiceDeps {
  config: Pick<Config, 'bcryptCost' | 'refreshTokenTtlSeconds'>;
  keyRing: KeyRing;
  users: UsersRepository;
  sessions: SessionsRepository;
  attempts: LoginAttempts;
  tokens: AccessTokens;
  clock: Clock;
}

/** Read in place of a user when the email is unknown; `usr_` ids are 22 base64url characters, never this. */
const NO_SUCH_USER = 'usr_-';

/**
 * Signing in: the one place that checks a password. Kept apart from AuthService so that only
 * the login function bundles bcrypt; everything that can go wrong leaves as an ApiError.
 */
export class LoginService {
  constructor(private readonly deps: LoginServiceDeps) {}

  /**
   * Unknown email, wrong password, over-long password and disabled account all end in the same
   * 401 after the same single bcrypt comparison, so neither answer nor time tells them apart.
   * Brute force is stopped before bcrypt runs: a locked account/IP pair, IP or account gets 429.
   * Five DynamoDB calls on every path that reaches bcrypt: counters + email claim, the account
   * reservation, the user, then two writes.
   */
  async login(email: string, password: string, caller: Caller): Promise<TokenPair> {
    const { users, attempts, config } = this.deps;
    // First: while the signing keys cannot be read (503), no attempt is spent and no bcrypt runs.
    const ring = await this.deps.keyRing.current();
    const now = this.deps.clock();
    const ip = caller.sourceIp ?? 'unknown';
    const state = await attempts.read(email, ip, now);
    // A locked pair or IP is refused without touching the account's budget, so one IP cannot
    // spend the account's hourly attempts by hammering a lock.
    const lock = state.lock ?? (await attempts.reserveAccountAttempt(email, now));
    if (lock) {
      log.info('login_failed', { reason: 'locked', lockedBy: lock.by, userId: state.userId, ...caller });
      throw new ApiError('too_many_attempts', undefined, { 'Retry-After': String(Math.max(1, lock.retryAfterSeconds)) });
    }
    // An unknown email reads a user id that cannot exist: the same round trip as a known one.
    const user = await users.get(state.userId ?? NO_SUCH_USER);
    const passwordMatches = await verifyPassword(password, user?.passwordHash, config.bcryptCost);
    if (!user || !passwordMatches || user.status !== 'active') {
      await attempts.recordFailure(email, ip, now, state.pairLive);
      const reason = !user ? 'unknown_user' : !passwordMatches ? 'bad_password' : 'disabled';
      log.info('login_failed', { reason, userId: user?.id, ...caller });
      throw new ApiError('invalid_credentials');
    }
    const sessionId = newSessionId();
    const secret = newRefreshSecret();
    // The session is the write that matters; last_login is bookkeeping and may not fail a login.
    const [created, recorded] = await Promise.allSettled([
      this.deps.sessions.create(
        {
          id: sessionId,
          userId: user.id,
          refreshHash: hashRefreshSecret(secret),
          rotationKid: ring.currentKid,
          userEpoch: user.sessionEpoch,
          createdAt: now.toISOString(),
          expiresAt: epochSeconds(now) + config.refreshTokenTtlSeconds,
        },
        // A success clears the pair's consecutive failures, in the same batch as the session.
        state.pairLive ? [attempts.pairKey(email, ip)] : [],
      ),
      (needsRehash(user.passwordHash, config.bcryptCost) ? hashPassword(password, config.bcryptCost) : Promise.resolve(undefined)).then((rehashed) =>
        users.recordLogin(user.id, now, rehashed),
      ),
    ]);
    if (created.status === 'rejected') throw created.reason;
    const signedIn = recorded.status === 'fulfilled' ? recorded.value : { ...user, lastLogin: now.toISOString() };
    if (recorded.status === 'rejected') log.warn('last_login_not_recorded', { userId: user.id, sessionId, ...describeError(recorded.reason) });
    log.info('login_succeeded', { userId: user.id, sessionId, ...caller });
    return issueTokenPair(this.deps.tokens, signedIn, sessionId, secret, config.refreshTokenTtlSeconds);
  }
}

/** The login service over an app's repositories and keys (one per app). */
export const loginService = oncePer((app: App) => new LoginService(app));
