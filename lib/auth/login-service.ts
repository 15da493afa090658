import type { App } from '../app.js';
import { endSession, issueTokenPair, type Caller, type TokenPair } from './auth-service.js';
import type { Config } from '../platform/config.js';
import { deviceItem, isDeviceAging, newDeviceToken, type DeviceToken } from '../store/device-tokens.js';
import { MFA_TOKEN_TTL_SECONDS, newMfaToken, type MfaTokenPurpose, MfaTokensRepository } from '../store/mfa-tokens.js';
import type { BatchWrite } from '../platform/dynamo.js';
import { ApiError } from '../platform/errors.js';
import { newSessionId } from '../platform/ids.js';
import { describeError, log } from '../platform/log.js';
import { METRIC, countMetric } from '../platform/metrics.js';
import type { LoginAttempts } from '../store/login-attempts.js';
import { credentials, type Credentials, type VerifiedPassword } from './credentials.js';
import { oncePer } from '../platform/memo.js';
import { bcryptHash, needsRehash } from './passwords.js';
import { PASSWORD_ONLY, epochSeconds, type AuthMethod, type IdpSession, type SessionSummary, type SessionsRepository } from '../store/sessions.js';
import type { KeyRing } from './signing-keys.js';
import type { SigningKeys } from '../platform/config.js';
import { hashRefreshSecret, issueRefreshSecret, rotationKeysOf, type AccessTokens, type Clock } from './tokens.js';
import type { User, UsersRepository } from '../store/users.js';
import { ConnectionEnforcement, EnforcedDomains } from '../store/sso-enforcement.js';

export interface LoginServiceDeps {
  config: Pick<Config, 'bcryptCost' | 'refreshTokenTtlSeconds' | 'deviceTokenTtlSeconds' | 'sessionPolicy' | 'mfa'>;
  keyRing: KeyRing;
  users: UsersRepository;
  sessions: SessionsRepository;
  attempts: LoginAttempts;
  mfaTokens: MfaTokensRepository;
  credentials: Credentials;
  tokens: AccessTokens;
  clock: Clock;
  /** Domains whose emails sign in only through their IdP (`sso add --enforce`). */
  enforcedDomains: EnforcedDomains;
}

/** A password sign-in (401) or change (403) for an email whose domain must use single sign-on. */
export function ssoRequired(status: 401 | 403): ApiError {
  return new ApiError('sso_required', undefined, {}, {}, status);
}

/** A sign-in's answer: a token pair and the device token to present at the next sign-in. */
export type SignIn = TokenPair & { device_token: string };

/** A user signed in by a second factor (lib/mfa/mfa-service.ts) or a password change: no sign-in password checked in this request. */
export interface VerifiedSecondFactor {
  user: User;
  ring: SigningKeys;
  now: Date;
}

/**
 * Signing in: a password checked (by lib/auth/credentials.ts, the one place that checks
 * credentials), then a session opened, or a second factor's challenge. Every new session is opened
 * here (openSession: device token, bookkeeping, the session cap), after a password, a second factor
 * or a password change. Everything that can go wrong leaves as an ApiError.
 */
export class LoginService {
  constructor(private readonly deps: LoginServiceDeps) {}

  /**
   * The password checked (lib/auth/credentials.ts: the limits, reserved before bcrypt; 401 or 429),
   * then a session, or the challenge of a second factor. DynamoDB calls: at most 6 without a
   * device token (7 when a hash at another cost is replaced), at most 4 with one, and with
   * MAX_SESSIONS_PER_USER one Query more, plus one write per session it ends (docs/design.md,
   * "A request, in DynamoDB calls"); more reads while it waits for attempts in flight.
   */
  async login(email: string, password: string, caller: Caller, presentedDevice?: string): Promise<SignIn> {
    // Before any counter or bcrypt: the domain's SSO is no secret, and a refusal here costs a cached
    // read. After the keys: while they cannot be read (503) a sign-in makes no DynamoDB call at all.
    await this.deps.keyRing.current();
    if (await this.ssoEnforced(email)) {
      log.info('login_failed', { reason: 'sso_required', ...caller });
      throw ssoRequired(401);
    }
    const verified = await this.deps.credentials.password(email, password, caller, { presentedDevice });
    const due = this.secondFactorDue(verified.user);
    if (due) throw await this.challenge(verified, due, caller, password);
    const { signIn, sessionId } = await this.openSession(verified, caller, { rehash: password });
    countMetric(METRIC.signInSucceeded);
    log.info('login_succeeded', { userId: verified.user.id, sessionId, device: verified.device !== undefined, ...caller });
    return signIn;
  }

  /** Whether the email's domain signs in only through its IdP (`sso add --enforce`): no password sign-in, no password change. */
  ssoEnforced(email: string): Promise<boolean> {
    return this.deps.enforcedDomains.enforces(email);
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
    // A stranger's pair is cleared (the password was right). A device token is not renewed: the
    // right password is no failure of it (its slot is given back), but its failures stand until the
    // second factor is proven, which is held to its counter too (the token names it).
    const writes: BatchWrite[] = verified.reservation ? [this.deps.attempts.pairClearing(verified.reservation.pairKey)] : [];
    const deviceHash = verified.device?.trusted.token.hash;
    const [created, kept] = await Promise.allSettled([
      this.deps.mfaTokens.create(token, { purpose, userEpoch: user.sessionEpoch, at: now, deviceHash }, writes),
      Promise.all([this.bookkeeping(verified, password), this.deps.credentials.passwordOwesSecondFactor(verified)]),
    ]);
    if (created.status === 'rejected') throw created.reason;
    if (kept.status === 'rejected') log.warn('login_bookkeeping_failed', { userId: user.id, ...describeError(kept.reason) });
    countMetric(METRIC.secondFactorRequired, { name: 'reason', value: purpose });
    log.info('login_second_factor_due', { userId: user.id, purpose, device: verified.device !== undefined, ...caller });
    return new ApiError(purpose === 'verify' ? 'mfa_required' : 'mfa_enrollment_required', undefined, {}, { mfa_token: token.token, mfa_expires_in: MFA_TOKEN_TTL_SECONDS });
  }

  /**
   * A federated sign-in (lib/auth/sso-service.ts) of a user who owes our second factor: no session
   * yet, an `mfa_token` that remembers the IdP, so that the session its code opens is signed in
   * with `fed` and `otp` and is ended by that IdP's back-channel logout. One write.
   */
  async federatedChallenge(user: User, purpose: MfaTokenPurpose, idp: IdpSession, now: Date, caller: Caller): Promise<ApiError> {
    const token = newMfaToken(user.id);
    await this.deps.mfaTokens.create(token, { purpose, userEpoch: user.sessionEpoch, at: now, federated: idp });
    countMetric(METRIC.secondFactorRequired, { name: 'reason', value: purpose });
    log.info('login_second_factor_due', { userId: user.id, purpose, federated: true, ...caller });
    return new ApiError(purpose === 'verify' ? 'mfa_required' : 'mfa_enrollment_required', undefined, {}, { mfa_token: token.token, mfa_expires_in: MFA_TOKEN_TTL_SECONDS });
  }

  /**
   * A device token's item for this session: its life is fixed from its first issue
   * (DEVICE_TOKEN_TTL_SECONDS), and it names the session it was handed out with, which ends it.
   */
  private deviceWrite(token: DeviceToken, userEpoch: number, createdAt: string, sessionId: string): BatchWrite {
    const expiresAt = Math.floor(Date.parse(createdAt) / 1000) + this.deps.config.deviceTokenTtlSeconds;
    return { table: this.deps.attempts.table, put: { ...deviceItem(token, userEpoch, createdAt, expiresAt, sessionId) } };
  }

  /**
   * Besides the batch: a stranger's IP slot is given back, and a hash at another cost replaced
   * beside it (after a change of BCRYPT_COST, a user's first sign-in takes a 7th call). With a
   * device token there is a round trip to spare, for old hourly counters on the user item.
   */
  private async bookkeeping({ user, device, reservation }: VerifiedPassword, rehash: string | undefined, { replacedDevice = false } = {}): Promise<void> {
    await Promise.all([
      rehash !== undefined && needsRehash(user.passwordHash, this.deps.config.bcryptCost) ? this.rehash(user, rehash) : undefined,
      reservation ? this.deps.attempts.giveBackIp(reservation) : undefined,
      device ? this.deps.attempts.clearStaleCounters(user.id, device.trusted.staleCounters) : undefined,
      // A token past half its life is not renewed (a fresh one is handed out): its success still clears its counts.
      device && replacedDevice ? this.deps.attempts.clearDevice(device.trusted.token.hash) : undefined,
    ]);
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
    { rehash, cap = true, amr = PASSWORD_ONLY, endsBy, idp, alsoWrite = [] }: { rehash?: string; cap?: boolean; amr?: readonly AuthMethod[]; endsBy?: number; idp?: IdpSession; alsoWrite?: BatchWrite[] } = {},
  ): Promise<{ signIn: SignIn; sessionId: string }> {
    const { config } = this.deps;
    const { user, ring, now } = verified;
    const sessionId = newSessionId();
    const secret = issueRefreshSecret(rotationKeysOf(ring).get(ring.currentKid)!, sessionId);
    const expiresAt = Math.min(epochSeconds(now) + config.refreshTokenTtlSeconds, endsBy ?? Infinity);
    const password = 'reservation' in verified ? verified : undefined;
    // The device token presented is renewed (its failures cleared, bound to this session) while
    // more than half its fixed life is left; past that, and without one, the client gets a new one
    // (an older token still stands until its own end). A stranger's success clears the pair's
    // consecutive failures. A second factor's sign-in replaces the token its password presented.
    const presented = password?.device && !isDeviceAging(password.device.trusted.item, epochSeconds(now)) ? password.device : undefined;
    const issued = presented ? { ...presented.trusted.token, token: presented.presented } : newDeviceToken(user.id);
    const pairKey = password?.reservation?.pairKey;
    const writes: BatchWrite[] = [
      this.deviceWrite(issued, user.sessionEpoch, presented?.trusted.item.created_at ?? now.toISOString(), sessionId),
      this.deps.users.lastLoginWrite(user.id, now),
      ...(pairKey ? [this.deps.attempts.pairClearing(pairKey)] : []),
      ...alsoWrite,
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
          deviceHash: issued.hash,
          ...(idp ? { idp } : {}),
        },
        writes,
      ),
      password ? this.bookkeeping(password, rehash, { replacedDevice: password.device !== undefined && presented === undefined }) : undefined,
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
    const ended = await Promise.allSettled(ending.map((session) => endSession(this.deps, session.id, user.id, now, 'session_limit')));
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
export const loginService = oncePer(
  (app: App) =>
    new LoginService({
      ...app,
      mfaTokens: new MfaTokensRepository(app.db, app.config.attemptsTable),
      credentials: credentials(app),
      enforcedDomains: new EnforcedDomains(new ConnectionEnforcement(app.db, app.config.usersTable)),
    }),
);
