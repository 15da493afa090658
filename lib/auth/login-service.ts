import type { App } from '../app.js';
import { issueTokenPair, type Caller, type TokenPair } from './auth-service.js';
import type { Config } from '../platform/config.js';
import { deviceItem, newDeviceToken, parseDeviceToken } from '../store/device-tokens.js';
import type { BatchWrite } from '../platform/dynamo.js';
import { ApiError } from '../platform/errors.js';
import { newSessionId } from '../platform/ids.js';
import { describeError, log } from '../platform/log.js';
import { METRIC, countMetric } from '../platform/metrics.js';
import type { Lock, LoginAttempts, Reservation } from '../store/login-attempts.js';
import { oncePer } from '../platform/memo.js';
import { bcryptHash, needsRehash, verifyPassword } from './passwords.js';
import { epochSeconds, type SessionsRepository } from '../store/sessions.js';
import type { KeyRing } from './signing-keys.js';
import { hashRefreshSecret, issueRefreshSecret, rotationKeysOf, type AccessTokens, type Clock } from './tokens.js';
import type { User, UsersRepository } from '../store/users.js';

export interface LoginServiceDeps {
  config: Pick<Config, 'bcryptCost' | 'refreshTokenTtlSeconds' | 'deviceTokenTtlSeconds'>;
  keyRing: KeyRing;
  users: UsersRepository;
  sessions: SessionsRepository;
  attempts: LoginAttempts;
  tokens: AccessTokens;
  clock: Clock;
}

/** A sign-in's answer: a token pair and the device token to present at the next sign-in. */
export type SignIn = TokenPair & { device_token: string };

function tooManyAttempts(lock: Lock): ApiError {
  return new ApiError('too_many_attempts', undefined, { 'Retry-After': String(Math.max(1, lock.retryAfterSeconds)) });
}

/**
 * Signing in: the one place that checks a password. Kept apart from AuthService so that only
 * the login function bundles bcrypt; everything that can go wrong leaves as an ApiError.
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
   * token, at most 4 with one (docs/design.md, "A request, in DynamoDB calls").
   */
  async login(email: string, password: string, caller: Caller, presentedDevice?: string): Promise<SignIn> {
    const { attempts, config } = this.deps;
    // First: while the signing keys cannot be read (503), no attempt is spent and no bcrypt runs.
    const ring = await this.deps.keyRing.current();
    const now = this.deps.clock();
    const ip = caller.sourceIp ?? 'unknown';
    // A malformed, unknown, expired, ended or another account's device token is no token at all.
    const state = await attempts.read(email, ip, presentedDevice === undefined ? undefined : parseDeviceToken(presentedDevice), now);
    const device = state.device;
    let reservation: Reservation | undefined;
    let lock = attempts.settledLock(state, ip, now);
    if (!lock && device) lock = await attempts.reserveDevice(device, now);
    if (!lock && !device) {
      reservation = await attempts.reserveStranger(email, ip, state, now);
      lock = reservation.lock;
    }
    if (lock) {
      countMetric(METRIC.signInLockedOut, { name: 'limit', value: lock.by });
      log.info('login_failed', { reason: 'locked', lockedBy: lock.by, userId: state.userId, device: device !== undefined, ...caller });
      throw tooManyAttempts(lock);
    }
    const user = device ? device.user : reservation!.user;
    const passwordMatches = await verifyPassword(password, user?.passwordHash, config.bcryptCost);
    const staleCounters = device ? device.staleCounters : reservation!.staleCounters;
    if (!user || !passwordMatches || user.status !== 'active') {
      // Already counted: the reservation was the failure's count. A failure has a round trip to
      // spare for clearing old hourly counters from the user item.
      if (user) await attempts.clearStaleCounters(user.id, staleCounters);
      const reason = !user ? 'unknown_user' : !passwordMatches ? 'bad_password' : 'disabled';
      countMetric(METRIC.signInFailed, { name: 'reason', value: reason });
      log.info('login_failed', { reason, userId: user?.id, device: device !== undefined, ...caller });
      throw new ApiError('invalid_credentials');
    }

    const sessionId = newSessionId();
    const secret = issueRefreshSecret(rotationKeysOf(ring).get(ring.currentKid)!, sessionId);
    const expiresAt = epochSeconds(now) + config.deviceTokenTtlSeconds;
    // The device token presented is renewed (its failures cleared, its life restarted); without
    // one, the client gets a new one.
    const issued = device ? { ...device.token, token: presentedDevice! } : newDeviceToken(user.id);
    const writes: BatchWrite[] = [
      this.deps.users.lastLoginWrite(user.id, now),
      { table: attempts.table, put: { ...deviceItem(issued, user.sessionEpoch, device?.item.created_at ?? now.toISOString(), expiresAt) } },
    ];
    // A stranger's success gives its pair slot back: the pair's consecutive failures are over.
    if (reservation) writes.push({ table: attempts.table, deleteKey: reservation.pairKey });
    // One more write besides the session's batch: a hash at another cost is replaced, or else a
    // stranger's IP slot is given back. (After a change of BCRYPT_COST, a user's first sign-in
    // from a stranger's address keeps its IP slot: the one case that would otherwise take a 7th call.)
    // With a device token there is a round trip to spare, for old hourly counters on the user item.
    const bookkeeping = needsRehash(user.passwordHash, config.bcryptCost)
      ? this.rehash(user, password)
      : reservation
        ? attempts.giveBackIp(reservation)
        : attempts.clearStaleCounters(user.id, staleCounters);
    const [created, kept] = await Promise.allSettled([
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
    ]);
    if (created.status === 'rejected') throw created.reason;
    if (kept.status === 'rejected') log.warn('login_bookkeeping_failed', { userId: user.id, sessionId, ...describeError(kept.reason) });
    countMetric(METRIC.signInSucceeded);
    log.info('login_succeeded', { userId: user.id, sessionId, device: device !== undefined, ...caller });
    const pair = await issueTokenPair(this.deps.tokens, { ...user, lastLogin: now.toISOString() }, sessionId, secret, config.refreshTokenTtlSeconds);
    return { ...pair, device_token: issued.token };
  }

  /** The same password at the configured cost, written only over the hash it replaces (never over a newer one). */
  private async rehash(user: User, password: string): Promise<void> {
    const written = await this.deps.users.rehashPassword(user.id, user, await bcryptHash(password, this.deps.config.bcryptCost));
    if (!written) log.info('rehash_skipped', { userId: user.id, reason: 'password_changed' });
  }
}

/** The login service over an app's repositories and keys (one per app). */
export const loginService = oncePer((app: App) => new LoginService(app));
