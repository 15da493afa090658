import type { App } from '../app.js';
import { issueTokenPair, type Caller, type TokenPair } from './auth-service.js';
import type { Config } from '../platform/config.js';
import { deviceItem, newDeviceToken, parseDeviceToken, type DeviceToken } from '../store/device-tokens.js';
import { MFA_TOKEN_TTL_SECONDS, newMfaToken, type MfaTokenPurpose, MfaTokensRepository } from '../store/mfa-tokens.js';
import type { BatchWrite } from '../platform/dynamo.js';
import { ApiError, bearerError } from '../platform/errors.js';
import { newSessionId } from '../platform/ids.js';
import { describeError, log } from '../platform/log.js';
import { METRIC, countMetric } from '../platform/metrics.js';
import type { LimitScope, Lock, LoginAttempts, LoginState, Reservation, TrustedDevice } from '../store/login-attempts.js';
import { oncePer } from '../platform/memo.js';
import { bcryptHash, needsRehash, verifyPassword } from './passwords.js';
import { PASSWORD_ONLY, epochSeconds, type AuthMethod, type SessionSummary, type SessionsRepository } from '../store/sessions.js';
import type { KeyRing } from './signing-keys.js';
import type { SigningKeys } from '../platform/config.js';
import { hashRefreshSecret, issueRefreshSecret, rotationKeysOf, type AccessTokens, type Clock } from './tokens.js';
import type { User, UsersRepository } from '../store/users.js';

export interface LoginServiceDeps {
  config: Pick<Config, 'bcryptCost' | 'refreshTokenTtlSeconds' | 'deviceTokenTtlSeconds' | 'sessionPolicy' | 'mfa'>;
  keyRing: KeyRing;
  users: UsersRepository;
  sessions: SessionsRepository;
  attempts: LoginAttempts;
  mfaTokens: MfaTokensRepository;
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

/** A user signed in by a second factor (lib/mfa/mfa-service.ts): no password checked in this request. */
export interface VerifiedSecondFactor {
  user: User;
  ring: SigningKeys;
  now: Date;
  /** The account+IP pair counter this sign-in clears (its wrong codes counted there). */
  pairKey: Record<string, unknown>;
}

/** 429 for a lock, saying when to try again; counted by the limit that refused. */
export function lockedOut(lock: Lock): ApiError {
  countMetric(METRIC.signInLockedOut, { name: 'limit', value: lock.by });
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
    const due = this.secondFactorDue(verified.user);
    if (due) throw await this.challenge(verified, due, caller, password);
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
    const reservation = await this.hold(email, state, caller, now, scope);
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
   * After the right password: a second factor is due when TOTP is active (`verify`: a code or a
   * recovery code), or must first be set up when the user's role is in MFA_REQUIRED_ROLES
   * (`enroll`). A device token never skips it.
   */
  secondFactorDue(user: User): MfaTokenPurpose | undefined {
    if (user.totp?.status === 'active') return 'verify';
    return this.deps.config.mfa.requiredRoles.includes(user.role) ? 'enroll' : undefined;
  }

  /**
   * The right password of a user who owes a second factor: no session yet, an `mfa_token` for the
   * next step instead (401 `mfa_required` or `mfa_enrollment_required`, the token in the body).
   * The password's bookkeeping is a success's (the pair cleared, the IP slot given back, a rehash),
   * written in the token's own BatchWriteItem: as many calls as a sign-in. Only the right password
   * gets here, so a wrong one says nothing about a second factor.
   */
  private async challenge(verified: VerifiedPassword, purpose: MfaTokenPurpose, caller: Caller, password: string): Promise<ApiError> {
    const { user, now } = verified;
    const token = newMfaToken(user.id);
    // A stranger's pair is cleared (the password was right); a device token is not renewed: its
    // failures stand until the second factor is proven (the sign-in then hands out a new one).
    const writes: BatchWrite[] = verified.reservation ? [this.deps.attempts.pairClearing(verified.reservation.pairKey)] : [];
    const [created, kept] = await Promise.allSettled([
      this.deps.mfaTokens.create(token, { purpose, userEpoch: user.sessionEpoch, at: now }, writes),
      this.bookkeeping(verified, password),
    ]);
    if (created.status === 'rejected') throw created.reason;
    if (kept.status === 'rejected') log.warn('login_bookkeeping_failed', { userId: user.id, ...describeError(kept.reason) });
    countMetric(METRIC.secondFactorRequired, { name: 'reason', value: purpose });
    log.info('login_second_factor_due', { userId: user.id, purpose, device: verified.device !== undefined, ...caller });
    return new ApiError(purpose === 'verify' ? 'mfa_required' : 'mfa_enrollment_required', undefined, {}, { mfa_token: token.token, mfa_expires_in: MFA_TOKEN_TTL_SECONDS });
  }

  private deviceWrite(token: DeviceToken, userEpoch: number, createdAt: string, now: Date): BatchWrite {
    return { table: this.deps.attempts.table, put: { ...deviceItem(token, userEpoch, createdAt, epochSeconds(now) + this.deps.config.deviceTokenTtlSeconds) } };
  }

  /**
   * One more write besides the batch: a hash at another cost is replaced, or else a stranger's IP
   * slot is given back. (After a change of BCRYPT_COST, a user's first sign-in from a stranger's
   * address keeps its IP slot: the one case that would otherwise take a 7th call.) With a device
   * token there is a round trip to spare, for old hourly counters on the user item; a password
   * change counted no IP slot and spends none.
   */
  private async bookkeeping({ user, device, reservation }: VerifiedPassword, rehash: string | undefined): Promise<void> {
    if (rehash !== undefined && needsRehash(user.passwordHash, this.deps.config.bcryptCost)) return this.rehash(user, rehash);
    if (reservation) return this.deps.attempts.giveBackIp(reservation);
    if (device) return this.deps.attempts.clearStaleCounters(user.id, device.trusted.staleCounters);
  }

  /**
   * Reserve every counter the attempt is held to (the device token's alone when one is live), or
   * throw 429 `too_many_attempts`. The stranger's reservation; undefined with a device token.
   */
  private async hold(email: string, state: LoginState, caller: Caller, now: Date, scope: LimitScope | undefined): Promise<Reservation | undefined> {
    const { attempts } = this.deps;
    const ip = caller.sourceIp ?? 'unknown';
    const device = state.device;
    let reservation: Reservation | undefined;
    let lock = attempts.settledLock(state, ip, now, scope);
    if (!lock && device) lock = await attempts.reserveDevice(device, now);
    if (!lock && !device) {
      reservation = await attempts.reserveStranger(email, ip, state, now, scope);
      lock = reservation.lock;
    }
    if (lock) {
      log.info('login_failed', { reason: 'locked', lockedBy: lock.by, userId: state.userId, device: device !== undefined, ...caller });
      throw lockedOut(lock);
    }
    return reservation;
  }

  /**
   * A new session for a verified password, with its device token, in one BatchWriteItem, and the
   * sign-in's bookkeeping beside it. `rehash`: replace a hash made at another bcrypt cost with
   * `password` (a sign-in); a password change has just written a new hash, so it passes nothing.
   * `cap`: apply MAX_SESSIONS_PER_USER (not after a password change, which ended every other session).
   * `amr`: how the session was signed in. After a second factor there is no password bookkeeping:
   * the pair counter its codes counted on is cleared, and a new device token is issued. `endsBy`:
   * the session ends then at the latest (epoch seconds), not a full lifetime from now.
   */
  async openSession(
    verified: VerifiedPassword | VerifiedSecondFactor,
    caller: Caller,
    { rehash, cap = true, amr = PASSWORD_ONLY, endsBy }: { rehash?: string; cap?: boolean; amr?: readonly AuthMethod[]; endsBy?: number } = {},
  ): Promise<{ signIn: SignIn; sessionId: string }> {
    const { config } = this.deps;
    const { user, ring, now } = verified;
    const sessionId = newSessionId();
    const secret = issueRefreshSecret(rotationKeysOf(ring).get(ring.currentKid)!, sessionId);
    const expiresAt = Math.min(epochSeconds(now) + config.refreshTokenTtlSeconds, endsBy ?? Infinity);
    const password = 'pairKey' in verified ? undefined : verified;
    // The device token presented is renewed (its failures cleared, its life restarted); without
    // one, the client gets a new one. A success clears the pair's consecutive failures: a
    // stranger's, or the pair a second factor's codes counted on.
    const presented = password?.device;
    const issued = presented ? { ...presented.trusted.token, token: presented.presented } : newDeviceToken(user.id);
    const pairKey = password ? password.reservation?.pairKey : (verified as VerifiedSecondFactor).pairKey;
    const writes: BatchWrite[] = [
      this.deviceWrite(issued, user.sessionEpoch, presented?.trusted.item.created_at ?? now.toISOString(), now),
      this.deps.users.lastLoginWrite(user.id, now),
      ...(pairKey ? [this.deps.attempts.pairClearing(pairKey)] : []),
    ];
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
          expiresAt,
          amr: [...amr],
        },
        writes,
      ),
      password ? this.bookkeeping(password, rehash) : undefined,
      // Read beside the write: the new session is left out of the count whether the index shows it yet or not.
      cap && config.sessionPolicy.maxPerUser > 0 ? this.deps.sessions.listLive(user, now, { idleSeconds: config.sessionPolicy.idleSeconds, limit: Infinity, maxAgeSeconds: config.refreshTokenTtlSeconds }) : [],
    ]);
    if (created.status === 'rejected') throw created.reason;
    if (kept.status === 'rejected') log.warn('login_bookkeeping_failed', { userId: user.id, sessionId, ...describeError(kept.reason) });
    if (others.status === 'rejected') log.warn('session_cap_failed', { userId: user.id, sessionId, ...describeError(others.reason) });
    else await this.endLeastRecentlyUsed(user, others.value.filter((session) => session.id !== sessionId), now, caller);
    const pair = await issueTokenPair(this.deps.tokens, { ...user, lastLogin: now.toISOString() }, { id: sessionId, amr: [...amr] }, secret, expiresAt - epochSeconds(now));
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
export const loginService = oncePer((app: App) => new LoginService({ ...app, mfaTokens: new MfaTokensRepository(app.db, app.config.attemptsTable) }));
