import type { App } from '../app.js';
import { issueTokenPair, type Caller, type TokenPair } from './auth-service.js';
import type { Config } from '../platform/config.js';
import { deviceItem, newDeviceToken, parseDeviceToken } from '../store/device-tokens.js';
import type { BatchWrite } from '../platform/dynamo.js';
import { ApiError, bearerError } from '../platform/errors.js';
import { newSessionId } from '../platform/ids.js';
import { describeError, log } from '../platform/log.js';
import { METRIC, countMetric } from '../platform/metrics.js';
import type { LimitScope, Lock, LoginAttempts, Reservation, TrustedDevice } from '../store/login-attempts.js';
import { oncePer } from '../platform/memo.js';
import { bcryptHash, needsRehash, verifyPassword } from './passwords.js';
import { PASSWORD_ONLY, epochSeconds, type SessionSummary, type SessionsRepository } from '../store/sessions.js';
import type { KeyRing } from './signing-keys.js';
import type { SigningKeys } from '../platform/config.js';
import { hashRefreshSecret, issueRefreshSecret, rotationKeysOf, type AccessTokens, type Clock } from './tokens.js';
import type { User, UsersRepository } from '../store/users.js';

export interface LoginServiceDeps {
  config: Pick<Config, 'bcryptCost' | 'refreshTokenTtlSeconds' | 'deviceTokenTtlSeconds' | 'sessionPolicy'>;
  keyRing: KeyRing;
  users: UsersRepository;
  sessions: SessionsRepository;
  attempts: LoginAttempts;
  tokens: AccessTokens;
  clock: Clock;
}

/** A sign-in's answer: a token pair and the device token to present at the next sign-in. */
export type SignIn = TokenPair & { device_token: string };

/** A password that checked out, and what checking it reserved: all a new session needs. */
export interface VerifiedPassword {
  user: User;
  ring: SigningKeys;
  now: Date;
  /** The live device token presented, as presented (its counter was the one reserved). */
  device: { trusted: TrustedDevice; presented: string } | undefined;
  /** Without a device token: the pair, IP and account slots reserved. */
  reservation: Reservation | undefined;
}

function tooManyAttempts(lock: Lock): ApiError {
  return new ApiError('too_many_attempts', undefined, { 'Retry-After': String(Math.max(1, lock.retryAfterSeconds)) });
}

/**
 * Signing in: the one place that checks a password (the password change checks the current one
 * through here too). Kept apart from AuthService so that only the functions that check passwords
 * bundle bcrypt; everything that can go wrong leaves as an ApiError.
 */
export class LoginService {
  constructor(private readonly deps: LoginServiceDeps) {}

  /**
   * Unknown email, wrong password, over-long password and disabled account all end in the same
   * 401 after the same single bcrypt comparison, so neither answer nor time tells them apart.
   * Brute force is stopped before bcrypt runs: every counter the request is held to is reserved
   * first (lib/store/login-attempts.ts), and a refusal is 429. With a live device token for the account
   * only that token's own counter applies, so strangers exhausting the account's or an IP's
   * attempts cannot lock the owner's device out. DynamoDB calls: at most 6 without a device
   * token, at most 4 with one, and with MAX_SESSIONS_PER_USER one Query more, plus one write per
   * session it ends (docs/design.md, "A request, in DynamoDB calls").
   */
  async login(email: string, password: string, caller: Caller, presentedDevice?: string): Promise<SignIn> {
    const verified = await this.verify(email, password, caller, { presentedDevice });
    const { signIn, sessionId } = await this.openSession(verified, caller, { rehash: password });
    countMetric(METRIC.signInSucceeded);
    log.info('login_succeeded', { userId: verified.user.id, sessionId, device: verified.device !== undefined, ...caller });
    return signIn;
  }

  /**
   * Hold the attempt to every limit, then compare the password: the verified user, or 429
   * `too_many_attempts`, or 401 `invalid_credentials` (the failure stays counted). `sessionEpoch`
   * (a signed-in user's password change): the user must still be at that epoch, or the caller's
   * session has ended meanwhile (another change won): 401 `invalid_token`, before bcrypt, and
   * the attempt given back.
   */
  async verify(
    email: string,
    password: string,
    caller: Caller,
    { presentedDevice, scope, sessionEpoch }: { presentedDevice?: string; scope?: LimitScope; sessionEpoch?: number } = {},
  ): Promise<VerifiedPassword> {
    const { attempts, config } = this.deps;
    // First: while the signing keys cannot be read (503), no attempt is spent and no bcrypt runs.
    const ring = await this.deps.keyRing.current();
    const now = this.deps.clock();
    const ip = caller.sourceIp ?? 'unknown';
    // A malformed, unknown, expired, ended or another account's device token is no token at all.
    const state = await attempts.read(email, ip, presentedDevice === undefined ? undefined : parseDeviceToken(presentedDevice), now);
    const device = state.device;
    let reservation: Reservation | undefined;
    let lock = attempts.settledLock(state, ip, now, scope);
    if (!lock && device) lock = await attempts.reserveDevice(device, now);
    if (!lock && !device) {
      reservation = await attempts.reserveStranger(email, ip, state, now, scope);
      lock = reservation.lock;
    }
    if (lock) {
      countMetric(METRIC.signInLockedOut, { name: 'limit', value: lock.by });
      log.info('login_failed', { reason: 'locked', lockedBy: lock.by, userId: state.userId, device: device !== undefined, ...caller });
      throw tooManyAttempts(lock);
    }
    const user = device ? device.user : reservation!.user;
    if (sessionEpoch !== undefined && user !== undefined && user.sessionEpoch !== sessionEpoch) {
      if (reservation) await attempts.giveBackAll(reservation);
      log.info('login_failed', { reason: 'session_ended', userId: user.id, ...caller });
      throw bearerError('invalid_token', true);
    }
    const passwordMatches = await verifyPassword(password, user?.passwordHash, config.bcryptCost);
    if (!user || !passwordMatches || user.status !== 'active') {
      // Already counted: the reservation was the failure's count. A failure has a round trip to
      // spare for clearing old hourly counters from the user item.
      if (user) await attempts.clearStaleCounters(user.id, device ? device.staleCounters : reservation!.staleCounters);
      const reason = !user ? 'unknown_user' : !passwordMatches ? 'bad_password' : 'disabled';
      countMetric(METRIC.signInFailed, { name: 'reason', value: reason });
      log.info('login_failed', { reason, userId: user?.id, device: device !== undefined, ...caller });
      throw new ApiError('invalid_credentials');
    }
    return { user, ring, now, device: device ? { trusted: device, presented: presentedDevice! } : undefined, reservation };
  }

  /**
   * A new session for a verified password, with its device token, in one BatchWriteItem, and the
   * sign-in's bookkeeping beside it. `rehash`: replace a hash made at another bcrypt cost with
   * `password` (a sign-in); a password change has just written a new hash, so it passes nothing.
   * `cap`: apply MAX_SESSIONS_PER_USER (not after a password change, which ended every other session).
   */
  async openSession(verified: VerifiedPassword, caller: Caller, { rehash, cap = true }: { rehash?: string; cap?: boolean } = {}): Promise<{ signIn: SignIn; sessionId: string }> {
    const { attempts, config } = this.deps;
    const { user, ring, now, device, reservation } = verified;
    const sessionId = newSessionId();
    const secret = issueRefreshSecret(rotationKeysOf(ring).get(ring.currentKid)!, sessionId);
    const expiresAt = epochSeconds(now) + config.deviceTokenTtlSeconds;
    // The device token presented is renewed (its failures cleared, its life restarted); without
    // one, the client gets a new one.
    const issued = device ? { ...device.trusted.token, token: device.presented } : newDeviceToken(user.id);
    const writes: BatchWrite[] = [
      this.deps.users.lastLoginWrite(user.id, now),
      { table: attempts.table, put: { ...deviceItem(issued, user.sessionEpoch, device?.trusted.item.created_at ?? now.toISOString(), expiresAt) } },
    ];
    // A stranger's success gives its pair slot back: the pair's consecutive failures are over.
    if (reservation) writes.push({ table: attempts.table, deleteKey: reservation.pairKey });
    // One more write besides the session's batch: a hash at another cost is replaced, or else a
    // stranger's IP slot is given back. (After a change of BCRYPT_COST, a user's first sign-in
    // from a stranger's address keeps its IP slot: the one case that would otherwise take a 7th call.)
    // With a device token there is a round trip to spare, for old hourly counters on the user item;
    // a password change counted no IP slot and spends none.
    const bookkeeping =
      rehash !== undefined && needsRehash(user.passwordHash, config.bcryptCost)
        ? this.rehash(user, rehash)
        : reservation
          ? attempts.giveBackIp(reservation)
          : attempts.clearStaleCounters(user.id, device!.trusted.staleCounters);
    const [created, kept, others] = await Promise.allSettled([
      this.deps.sessions.create(
        {
          id: sessionId,
          userId: user.id,
          refreshHash: hashRefreshSecret(secret),
          rotationKid: ring.currentKid,
          userEpoch: user.sessionEpoch,
          createdAt: now.toISOString(),
          sourceIp: caller.sourceIp,
          userAgent: caller.userAgent,
          expiresAt: epochSeconds(now) + config.refreshTokenTtlSeconds,
        },
        writes,
      ),
      bookkeeping,
      // Read beside the write: the new session is left out of the count whether the index shows it yet or not.
      cap && config.sessionPolicy.maxPerUser > 0 ? this.deps.sessions.listLive(user, now, { idleSeconds: config.sessionPolicy.idleSeconds, limit: Infinity, maxAgeSeconds: config.refreshTokenTtlSeconds }) : [],
    ]);
    if (created.status === 'rejected') throw created.reason;
    if (kept.status === 'rejected') log.warn('login_bookkeeping_failed', { userId: user.id, sessionId, ...describeError(kept.reason) });
    if (others.status === 'rejected') log.warn('session_cap_failed', { userId: user.id, sessionId, ...describeError(others.reason) });
    else await this.endLeastRecentlyUsed(user, others.value.filter((session) => session.id !== sessionId), now, caller);
    const pair = await issueTokenPair(this.deps.tokens, { ...user, lastLogin: now.toISOString() }, { id: sessionId, amr: [...PASSWORD_ONLY] }, secret, config.refreshTokenTtlSeconds);
    return { signIn: { ...pair, device_token: issued.token }, sessionId };
  }

  /**
   * MAX_SESSIONS_PER_USER: with the new session, at most N; the least recently used of the others
   * end (reason `session_limit`). The index is eventually consistent, so sign-ins racing each other
   * may each miss the others and leave a few more for a moment; the next sign-in trims them.
   */
  private async endLeastRecentlyUsed(user: User, others: SessionSummary[], now: Date, caller: Caller): Promise<void> {
    const { maxPerUser } = this.deps.config.sessionPolicy;
    if (maxPerUser === 0 || others.length < maxPerUser) return;
    const byLastUse = [...others].sort((a, b) => b.lastUsedAt.localeCompare(a.lastUsedAt) || b.createdAt.localeCompare(a.createdAt));
    const ending = byLastUse.slice(maxPerUser - 1);
    const ended = await Promise.allSettled(ending.map((session) => this.deps.sessions.revoke(session.id, user.id, now, 'session_limit')));
    ending.forEach((session, index) => {
      if (ended[index]!.status === 'fulfilled') log.info('session_ended', { userId: user.id, endedSessionId: session.id, reason: 'session_limit', ...caller });
      else log.warn('session_cap_failed', { userId: user.id, endedSessionId: session.id, ...describeError((ended[index] as PromiseRejectedResult).reason) });
    });
  }

  /** The same password at the configured cost, written only over the hash it replaces (never over a newer one). */
  private async rehash(user: User, password: string): Promise<void> {
    const written = await this.deps.users.rehashPassword(user.id, user, await bcryptHash(password, this.deps.config.bcryptCost));
    if (!written) log.info('rehash_skipped', { userId: user.id, reason: 'password_changed' });
  }
}

/** The login service over an app's repositories and keys (one per app). */
export const loginService = oncePer((app: App) => new LoginService(app));
