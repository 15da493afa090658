import type { Config } from '../platform/config.js';
import { ApiError, bearerError } from '../platform/errors.js';
import { log } from '../platform/log.js';
import { METRIC, countMetric } from '../platform/metrics.js';
import {
  epochSeconds,
  isSessionIdle,
  isSessionLive,
  toPublicSession,
  type AuthMethod,
  type PublicSession,
  type Session,
  type SessionsRepository,
} from '../store/sessions.js';
import { sessionIdToBytes } from '../platform/ids.js';
import {
  AccessTokens,
  formatRefreshToken,
  hashRefreshSecret,
  isIssuedSecret,
  parseRefreshToken,
  refreshHashesEqual,
  rotationKeysOf,
  successorSecret,
  type Clock,
  type RotationKeys,
} from './tokens.js';
import type { KeyRing } from './signing-keys.js';
import type { LoginAttempts } from '../store/login-attempts.js';
import { toPublicUser, type PublicUser, type User, type UsersRepository } from '../store/users.js';

export interface TokenPair {
  token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
  user: PublicUser;
}

/** Who is asking: carried into the audit log; the source IP also keys the brute-force counters. */
export interface Caller {
  requestId: string;
  sourceIp: string | undefined;
  userAgent: string | undefined;
}

export type LogoutScope = 'local' | 'global';

/** A session that stands, and its user as stored now. */
export interface StandingSession {
  user: User;
  sessionId: string;
  /** How it was signed in. */
  amr: AuthMethod[];
  /** When it ends at the latest (epoch seconds). */
  expiresAt: number;
  /** The session's own count of wrong current passwords (lib/auth/credentials.ts). */
  passwordFailures: Session['passwordFailures'];
  /** The device token handed out with it. */
  deviceHash: string | undefined;
  /** When it was signed in (ISO 8601). */
  createdAt: string;
}

/** One of the caller's sessions, as GET /auth/sessions shows it. */
export type SessionView = PublicSession & { current: boolean };

/** GET /auth/sessions shows at most this many, newest first. */
export const MAX_LISTED_SESSIONS = 100;

export interface AuthServiceDeps {
  config: Pick<Config, 'refreshReuseGraceSeconds' | 'refreshTokenTtlSeconds' | 'sessionPolicy'>;
  keyRing: KeyRing;
  users: UsersRepository;
  sessions: SessionsRepository;
  attempts: LoginAttempts;
  tokens: AccessTokens;
  clock: Clock;
}

/**
 * The rules of staying signed in: refresh, logout, me and the check behind the authorizer.
 * (Signing in is lib/auth/login-service.ts, so that only the login function bundles bcrypt.) Handlers
 * parse and validate, then call one method here; everything that can go wrong leaves as an ApiError.
 */
export class AuthService {
  constructor(private readonly deps: AuthServiceDeps) {}

  /**
   * Rotate a refresh token (OWASP ASVS 5 §10.4.5). What happens to each token presented:
   * - the session's current one: rotated out by a conditional write; its successor is returned;
   * - the one rotated out last, within REFRESH_REUSE_GRACE_SECONDS: the current successor is
   *   returned again (two tabs, a retried request), same session, nothing written;
   * - any genuine earlier one, or the last one after the window: theft is assumed, the whole
   *   session is revoked (its access tokens die with it) and the answer is `refresh_token_reused`;
   * - anything else (unknown, forged, expired, revoked): `invalid_refresh_token`.
   */
  async refresh(refreshToken: string, caller: Caller): Promise<TokenPair> {
    const parsed = parseRefreshToken(refreshToken);
    if (!parsed) throw new ApiError('invalid_refresh_token');
    const { session, user } = await this.deps.sessions.getWithUser(parsed.sessionId, parsed.userId, { lastLogin: true });
    const now = this.deps.clock();
    const audit = { sessionId: parsed.sessionId, userId: user?.id, ...caller };
    if (!isSessionLive(session, user, now)) {
      log.info('refresh_failed', { ...audit, reason: 'session_ended' });
      throw new ApiError('invalid_refresh_token');
    }
    // Unused for SESSION_IDLE_SECONDS: over, whatever token is presented (its access tokens too: stands()).
    if (isSessionIdle(session!, this.deps.config.sessionPolicy.idleSeconds, now)) {
      log.info('refresh_failed', { ...audit, reason: 'session_idle' });
      throw new ApiError('invalid_refresh_token');
    }
    const presentedHash = hashRefreshSecret(parsed.secret);
    const ring = await this.deps.keyRing.including(session!.rotationKid);
    const rotation = rotationKeysOf(ring);
    if (refreshHashesEqual(presentedHash, session!.refreshHash)) {
      // Stay on the session's chain key while it is in the ring, so spent tokens stay provable
      // across a signing-key rotation; once it has left, a new chain starts with the current key.
      const kid = rotation.has(session!.rotationKid) ? session!.rotationKid : ring.currentKid;
      const successor = successorSecret(rotation.get(kid)!, session!.id, parsed.secret);
      const rotated = await this.deps.sessions.rotate(session!.id, { fromHash: presentedHash, toHash: hashRefreshSecret(successor), rotationKid: kid, at: now });
      if (rotated) {
        countMetric(METRIC.tokenRefreshed);
        log.info('token_refreshed', audit);
        return issueTokenPair(this.deps.tokens, user!, session!, successor, session!.expiresAt - epochSeconds(now));
      }
      // Another request rotated this very token a moment ago: it is now the previous one.
      const current = await this.deps.sessions.get(session!.id);
      if (current && isSessionLive(current, user, now)) {
        const successorNow = this.graceSuccessor(current, parsed.secret, presentedHash, now, rotation);
        if (successorNow) return this.replay(user!, current, successorNow, now, audit);
      }
      // A race lost outside the grace window: the token was current when read, so not theft.
      log.info('refresh_failed', { ...audit, reason: 'lost_race' });
      throw new ApiError('invalid_refresh_token');
    }
    const successor = this.graceSuccessor(session!, parsed.secret, presentedHash, now, rotation);
    if (successor) return this.replay(user!, session!, successor, now, audit);
    if (this.isSpentToken(session!, parsed.secret, rotation)) {
      await this.endWithDevice(session!.id, user!.id, now, 'refresh_token_reused');
      countMetric(METRIC.refreshTokenReused);
      log.warn('refresh_token_reused', { ...audit, generation: session!.generation });
      throw new ApiError('refresh_token_reused');
    }
    // Not a token this session ever issued (a guess at its ids): refused, and the session left alone.
    log.info('refresh_failed', { ...audit, reason: 'unknown_token' });
    throw new ApiError('invalid_refresh_token');
  }

  /** The session's current secret, when `secret` is the one rotated out last and the grace window is open. */
  private graceSuccessor(session: Session, secret: Buffer, secretHash: string, now: Date, rotation: RotationKeys): Buffer | undefined {
    if (session.previousHash === undefined || session.rotatedAt === undefined) return undefined;
    if (!refreshHashesEqual(secretHash, session.previousHash)) return undefined;
    const windowMs = this.deps.config.refreshReuseGraceSeconds * 1000;
    if (windowMs === 0 || now.getTime() - Date.parse(session.rotatedAt) > windowMs) return undefined;
    // Undefined once the session's chain key has left the ring: fail closed.
    const key = rotation.get(session.rotationKid);
    if (!key) return undefined;
    const successor = successorSecret(key, session.id, secret);
    return refreshHashesEqual(hashRefreshSecret(successor), session.refreshHash) ? successor : undefined;
  }

  /**
   * Whether `secret` is a genuine earlier refresh secret of this session. Every secret we issue
   * carries a tag of the session's rotation key (lib/auth/tokens.ts), and the only secrets ever
   * computed for a session are the ones handed out (its first, then each successor of the current
   * one), so a secret whose tag holds and that is not the current one was issued and then rotated
   * out: spent. One HMAC, whatever the session's depth, so a forgery costs what a refresh costs and
   * its time tells nothing; a guess fails the tag, so knowing a session's ids is not enough to
   * end it.
   */
  private isSpentToken(session: Session, secret: Buffer, rotation: RotationKeys): boolean {
    const key = rotation.get(session.rotationKid);
    return key !== undefined && isIssuedSecret(key, session.id, secret);
  }

  private async replay(user: User, session: Session, successor: Buffer, now: Date, audit: Record<string, unknown>): Promise<TokenPair> {
    countMetric(METRIC.tokenRefreshed);
    log.info('token_refreshed', { ...audit, grace: true });
    return issueTokenPair(this.deps.tokens, user, session, successor, session.expiresAt - epochSeconds(now));
  }

  /** End the caller's session (`local`) or every session of the user (`global`). Idempotent. */
  async logout(accessToken: string, scope: LogoutScope, caller: Caller): Promise<void> {
    const claims = await this.deps.tokens.verify(accessToken);
    const now = this.deps.clock();
    if (scope === 'global') {
      // Only a session that still stands may end the others. The token of a session already
      // ended (say, revoked for refresh-token reuse) is refused outright: answering 200 while
      // ending nothing would tell a user reacting to a theft that every session is gone.
      const { session, user } = await this.deps.sessions.getWithUser(claims.sid, claims.sub);
      if (!this.stands(session, user, now)) {
        log.info('logout_refused', { userId: claims.sub, sessionId: claims.sid, reason: 'session_ended', ...caller });
        throw bearerError('invalid_token', true);
      }
      await this.deps.users.revokeAllSessions(claims.sub, now);
    }
    await this.endWithDevice(claims.sid, claims.sub, now, 'logout');
    countMetric(METRIC.logout, { name: 'scope', value: scope });
    log.info(scope === 'global' ? 'logout_all' : 'logout', { userId: claims.sub, sessionId: claims.sid, ...caller });
  }

  /**
   * The caller's live sessions, newest first, at most 100. The token is verified first; then the
   * caller's own session is checked as /auth/me checks it while, beside it, one Query of the
   * by-user index reads the user's sessions (the epoch they must share is the user's, known only
   * from that check, so it is applied after). 2 DynamoDB calls, one round trip's time.
   */
  async listSessions(accessToken: string, caller: Caller): Promise<SessionView[]> {
    const claims = await this.deps.tokens.verify(accessToken);
    const now = this.deps.clock();
    const [{ user, sessionId }, listed] = await Promise.all([
      this.standing(claims),
      this.deps.sessions.listLive({ id: claims.sub }, now, {
        idleSeconds: this.deps.config.sessionPolicy.idleSeconds,
        limit: Infinity,
        maxAgeSeconds: this.deps.config.refreshTokenTtlSeconds,
      }),
    ]);
    const sessions = listed.filter((session) => session.userEpoch === user.sessionEpoch).slice(0, MAX_LISTED_SESSIONS);
    log.info('sessions_listed', { userId: user.id, sessionId, count: sessions.length, ...caller });
    return sessions.map((session) => ({ ...toPublicSession(session), current: session.id === sessionId }));
  }

  /**
   * End one of the caller's sessions at once: its access tokens are refused from their next
   * request (here, /auth/me, the authorizer) and its refresh token is dead. An id that is not
   * one of the caller's sessions (unknown, malformed, another user's) is 404
   * `session_not_found`, one answer for all three; one already ended is 200 (idempotent). The
   * caller's own session may be ended: a local logout. 2 DynamoDB calls (1 for a malformed id).
   */
  async endSession(accessToken: string, targetId: string, caller: Caller): Promise<void> {
    const { user, sessionId } = await this.authenticate(accessToken);
    const ended = sessionIdToBytes(targetId) !== undefined && (await this.endWithDevice(targetId, user.id, this.deps.clock(), 'ended_by_user'));
    if (!ended) {
      log.info('session_end_refused', { userId: user.id, sessionId, reason: 'session_not_found', ...caller });
      throw new ApiError('session_not_found');
    }
    countMetric(METRIC.sessionEnded);
    log.info('session_ended', { userId: user.id, sessionId, endedSessionId: targetId, reason: 'ended_by_user', ...caller });
  }

  private async endWithDevice(sessionId: string, userId: string, at: Date, reason: string): Promise<boolean> {
    return endSession(this.deps, sessionId, userId, at, reason);
  }

  /** The signed-in user, read now: a revoked session, a disabled user or a changed epoch is refused. */
  async me(accessToken: string): Promise<PublicUser> {
    return toPublicUser((await this.authenticate(accessToken, { lastLogin: true })).user);
  }

  /**
   * The one check every request with an access token gets (`/auth/me`, the shared authorizer, the
   * sessions endpoints, a password change, the MFA endpoints): a genuine, unexpired token whose
   * session still stands (not ended, not idle), with the user as stored now (current role).
   */
  async authenticate(accessToken: string, { lastLogin = false } = {}): Promise<StandingSession> {
    return this.standing(await this.deps.tokens.verify(accessToken), { lastLogin });
  }

  /** The session of verified claims, and its user, if the session still stands; else 401 `invalid_token`. */
  private async standing(claims: { sub: string; sid: string }, { lastLogin = false } = {}): Promise<StandingSession> {
    const { session, user } = await this.deps.sessions.getWithUser(claims.sid, claims.sub, { lastLogin });
    if (!this.stands(session, user, this.deps.clock())) throw bearerError('invalid_token', true);
    return { user: user!, sessionId: claims.sid, amr: session!.amr, expiresAt: session!.expiresAt, passwordFailures: session!.passwordFailures, deviceHash: session!.deviceHash, createdAt: session!.createdAt };
  }

  /**
   * Whether an access token's session stands: live, and not idle. An idle session has ended as a
   * logged-out one has, for every token of it, not only for its refresh token. (With the defaults
   * its last access token is long past `exp` by then: SESSION_IDLE_SECONDS, 7 days, counts from
   * the last refresh, and an access token lives an hour from its sign-in or refresh.)
   */
  private stands(session: Session | undefined, user: User | undefined, now: Date): session is Session {
    return isSessionLive(session, user, now) && !isSessionIdle(session!, this.deps.config.sessionPolicy.idleSeconds, now);
  }
}

/**
 * End one session, and the device token handed out with it (a lost laptop's token must not keep
 * its exemption from the account's limits), unless a later sign-in with that token moved it on.
 * False when there is no such session of this user.
 */
export async function endSession(
  { sessions, attempts }: { sessions: SessionsRepository; attempts: LoginAttempts },
  sessionId: string,
  userId: string,
  at: Date,
  reason: string,
): Promise<boolean> {
  const ended = await sessions.end(sessionId, userId, at, reason);
  if (ended?.deviceHash) await attempts.endDevice(ended.deviceHash, sessionId);
  return ended !== undefined;
}

/** The answer to a login or a refresh: a new access token (saying how the session was signed in) and the session's refresh token. */
export async function issueTokenPair(
  tokens: AccessTokens,
  user: User,
  session: Pick<Session, 'id' | 'amr'>,
  secret: Buffer,
  refreshExpiresIn: number,
): Promise<TokenPair> {
  const sessionId = session.id;
  const token = await tokens.sign({ userId: user.id, sessionId, role: user.role, amr: session.amr });
  return {
    token,
    token_type: 'Bearer',
    expires_in: tokens.ttlSeconds,
    refresh_token: formatRefreshToken({ sessionId, userId: user.id, secret }),
    refresh_expires_in: refreshExpiresIn,
    user: toPublicUser(user),
  };
}
