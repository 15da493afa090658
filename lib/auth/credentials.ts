import { createHash } from 'node:crypto';
import type { App } from '../app.js';
import type { Caller, StandingSession } from './auth-service.js';
import { oncePer } from '../platform/memo.js';
import type { Config } from '../platform/config.js';
import { isDeviceLive, parseDeviceToken } from '../store/device-tokens.js';
import { ApiError, bearerError } from '../platform/errors.js';
import { digestsEqual, parseApiKey } from '../platform/ids.js';
import { describeError, log } from '../platform/log.js';
import type { Role } from '../platform/config.js';
import { isApiKeyLive, isUseDue, type ApiKey, type ApiKeysRepository } from '../store/api-keys.js';
import { METRIC, countMetric } from '../platform/metrics.js';
import type { Lock, LoginAttempts, LoginState, Reservation, TrustedDevice } from '../store/login-attempts.js';
import type { CodeLimits, MfaRepository } from '../store/mfa.js';
import { MAX_MFA_TOKEN_ATTEMPTS, type MfaToken, type MfaTokensRepository, type MfaTokenState } from '../store/mfa-tokens.js';
import type { User } from '../store/users.js';
import { verifyPassword } from './passwords.js';
import type { KeyRing } from './signing-keys.js';
import type { SigningKeys } from '../platform/config.js';
import type { Clock } from './tokens.js';
import { epochSeconds } from '../store/sessions.js';
import { IdentityTakenError, loggedOutSince, parseSsoCode, type Connection, type FederatedGrant, type SsoRepository } from '../store/sso.js';
import { EmailTakenError, normalizeEmail, type UsersRepository } from '../store/users.js';
import { isEmail } from '../http/validation.js';

/**
 * The one module that checks a credential, and the one place that says which counters each check
 * is held to. Every counter is reserved before the credential is looked at (so racing attempts
 * cannot outnumber it), a wrong credential stays counted, and a refused attempt moves none: what it
 * reserved elsewhere is given back.
 *
 * | credential | where | counters | who can move them |
 * |---|---|---|---|
 * | password, no live device token | sign-in | account+IP pair (5 in a row), IP's window (100 / 15 min), account's hour (100, successes too) | anyone: a stranger can fill them, and they refuse only this path |
 * | password, live device token | sign-in | that token's own (5 in a row) | whoever holds the token |
 * | current password | password change, TOTP set-up by a session | that session's own (5 in a row) | whoever holds the session |
 * | TOTP code | sign-in's second step, TOTP off, new recovery codes, proving a pending secret (activation) | the mfa_token's (5, at sign-in), the account's wrong codes in a row (MFA_MAX_FAILURES, locks doubling), the device token presented at the sign-in (its own) | whoever holds the password or a session |
 * | recovery code | sign-in's second step | the mfa_token's, the account's wrong recovery codes in a row (MFA_MAX_FAILURES; a right recovery code or an unlock resets it: past the limit, only an unlock) | whoever holds the password |
 * | API key | the authorizer, /auth/me | no counter: 256 random bits, and a bad checksum costs no read | nothing a stranger could fill |
 * | IdP assertion (an ID token) | SSO callback | no counter: checked by openid-client (the IdP's JWKS signature, asymmetric algorithms only, iss, aud = our client id, the nonce, exp/iat), for a code redeemed with our PKCE verifier of a flow we began (its state single use, 10 min); then a verified email of the connection's domain, and an active user | nobody: nothing to guess, and a refused assertion moves nothing |
 * | SSO one-time code | POST sso/token | no counter: 256 random bits, 60 s, single use (a conditional write), redeemable only with the PKCE verifier of the challenge it was issued for | nobody: a wrong verifier leaves the code as it was |
 *
 * So a stranger, who has no password, session or device token, can fill only the first row's
 * counters, and none of them ever refuses a device token, a session or a second factor.
 *
 * Two classes: `Credentials` (passwords) and `SecondFactorChecks` (codes, given the MFA stores and
 * lib/mfa's arithmetic by the MFA service), so that the functions that check passwords alone bundle
 * nothing of the second factor.
 */
export interface CredentialsDeps {
  config: Pick<Config, 'bcryptCost'>;
  keyRing: KeyRing;
  attempts: LoginAttempts;
  clock: Clock;
}

export interface SecondFactorChecksDeps {
  config: Pick<Config, 'mfa' | 'deviceTokenTtlSeconds'>;
  attempts: LoginAttempts;
  mfa: MfaRepository;
  mfaTokens: MfaTokensRepository;
  clock: Clock;
}

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

/** An API key that checked out: its owner as stored now, and the role it acts with. */
export interface VerifiedApiKey {
  user: User;
  key: ApiKey;
  /** The lower of the key's role and its owner's role now. */
  role: Role;
}

export const ROLE_RANK: Record<Role, number> = { user: 1, admin: 2 };

/** How a second factor is proven. */
export type SecondFactor = { code: string } | { recoveryCode: string };

/**
 * How this user's second factors compare, called only once their counters are reserved: the
 * arithmetic of lib/mfa (TOTP, recovery-code MACs), handed in by the MFA service, so that only the
 * MFA functions bundle it and read the MFA keys.
 */
export interface SecondFactorMatcher {
  /** The step of a TOTP code that matches at `at` (±1 step), or undefined. */
  code(code: string, at: Date): Promise<number | undefined>;
  /** The MAC of a recovery code that is one of the user's, or undefined. */
  recoveryCode(typed: string): Promise<string | undefined>;
}

/**
 * A second factor that matched, its counters reserved: the caller makes the write that spends it
 * (a TOTP code's step, a recovery code's MAC), which also ends the account's wrong-code counts.
 */
export type MatchedSecondFactor = { kind: 'code'; step: number } | { kind: 'recovery_code'; mac: string };

/** 429 for a lock, saying when to try again; counted by the limit that refused. */
export function lockedOut(lock: Lock): ApiError {
  countMetric(METRIC.signInLockedOut, { name: 'limit', value: lock.by });
  return new ApiError('too_many_attempts', undefined, { 'Retry-After': String(Math.max(1, lock.retryAfterSeconds)) });
}

/** A recovery-code lock does not run out: an operator's unlock ends it. Clients are told to come back in a day. */
const RECOVERY_LOCK_RETRY_AFTER_SECONDS = 86_400;

/** Passwords: a sign-in's, and a signed-in user's current one. */
export class Credentials {
  constructor(private readonly deps: CredentialsDeps) {}

  /**
   * A sign-in's password. Unknown email, wrong password, over-long password and disabled account
   * all end in the same 401 after the same single bcrypt comparison. Brute force is stopped
   * before bcrypt runs: every counter the attempt is held to is reserved first, and a refusal is
   * 429. With a live device token for the account only that token's own counter applies, so
   * strangers exhausting the account's or an IP's attempts cannot lock the owner's device out.
   */
  async password(email: string, password: string, caller: Caller, { presentedDevice }: { presentedDevice?: string } = {}): Promise<VerifiedPassword> {
    const { attempts, config } = this.deps;
    // First: while the signing keys cannot be read (503), no attempt is spent and no bcrypt runs.
    const ring = await this.deps.keyRing.current();
    const now = this.deps.clock();
    const ip = caller.sourceIp ?? 'unknown';
    // A malformed, unknown, expired, ended or another account's device token is no token at all.
    const state = await attempts.read(email, ip, presentedDevice === undefined ? undefined : parseDeviceToken(presentedDevice), now);
    const { device, reservation } = await this.holdPassword(email, state, caller, now);
    const user = device ? device.user : reservation!.user;
    const passwordMatches = await verifyPassword(password, user?.passwordHash, config.bcryptCost);
    if (!user || !passwordMatches || user.status !== 'active') {
      // Already counted: the reservation was the failure's count; it is no longer in flight. A
      // failure has a round trip to spare for clearing old hourly counters from the user item.
      await Promise.all([
        device ? attempts.settleDevice(device.token.hash, now) : attempts.settleStranger(reservation!, now),
        user ? attempts.clearStaleCounters(user.id, device ? device.staleCounters : reservation!.staleCounters) : undefined,
      ]);
      const reason = !user ? 'unknown_user' : !passwordMatches ? 'bad_password' : 'disabled';
      countMetric(METRIC.signInFailed, { name: 'reason', value: reason });
      log.info('login_failed', { reason, userId: user?.id, device: device !== undefined, ...caller });
      throw new ApiError('invalid_credentials');
    }
    return { user, ring, now, device: device ? { trusted: device, presented: presentedDevice! } : undefined, reservation };
  }

  /**
   * A right password whose sign-in goes no further now (a second factor is owed): for a device
   * token it is neither a failure nor a success, so its slot is given back (the second factor is
   * then held to the token's counter too). A stranger's slots are settled as at a success, by the
   * sign-in's own writes (the pair cleared, the IP's slot given back).
   */
  async passwordOwesSecondFactor(verified: VerifiedPassword): Promise<void> {
    if (verified.device) await this.deps.attempts.giveBackDevice(verified.device.trusted.token.hash);
  }

  /**
   * Reserve every counter a sign-in's password is held to (the device token's alone when one is
   * live), or throw 429 `too_many_attempts`. The stranger's reservation; undefined with a device token.
   */
  private async holdPassword(email: string, state: LoginState, caller: Caller, now: Date): Promise<{ device: TrustedDevice | undefined; reservation: Reservation | undefined }> {
    const { attempts } = this.deps;
    const ip = caller.sourceIp ?? 'unknown';
    let device = state.device;
    let reservation: Reservation | undefined;
    let lock = attempts.settledLock(state, ip, now);
    if (!lock && device) {
      const held = await attempts.reserveDevice(device, now);
      // Ended between the read and the reservation (a logout elsewhere): no token at all.
      if (held === 'gone') device = undefined;
      else lock = held;
    }
    if (!lock && !device) {
      reservation = await attempts.reserveStranger(email, ip, state, now);
      lock = reservation.lock;
    }
    if (lock) {
      log.info('login_failed', { reason: 'locked', lockedBy: lock.by, userId: state.userId, device: device !== undefined, ...caller });
      throw lockedOut(lock);
    }
    return { device, reservation };
  }

  /**
   * A signed-in user's current password (a password change, a TOTP set-up by a session): held to
   * that session's own count of wrong ones (LOGIN_MAX_FAILURES in a row lock it for
   * LOGIN_LOCKOUT_SECONDS), reserved before bcrypt runs; nothing a stranger can fill. A wrong one
   * is 401 `invalid_credentials` and stays counted; a right one clears the count (not needed when
   * the session is about to end: `sessionEnds`). 1 or 2 DynamoDB calls.
   */
  async currentPassword(session: StandingSession, password: string, caller: Caller, { action, sessionEnds = false }: { action: string; sessionEnds?: boolean }): Promise<void> {
    const now = this.deps.clock();
    const lock = await this.deps.attempts.reserveSessionPassword(session.sessionId, session.user.id, session.passwordFailures, now);
    if (lock) {
      log.info(`${action}_refused`, { userId: session.user.id, sessionId: session.sessionId, reason: 'locked', ...caller });
      throw lockedOut(lock);
    }
    if (!(await verifyPassword(password, session.user.passwordHash, this.deps.config.bcryptCost))) {
      countMetric(METRIC.signInFailed, { name: 'reason', value: 'bad_password' });
      log.info(`${action}_refused`, { userId: session.user.id, sessionId: session.sessionId, reason: 'bad_password', ...caller });
      throw new ApiError('invalid_credentials', 'The current password is incorrect.');
    }
    if (!sessionEnds) await this.deps.attempts.clearSessionPassword(session.sessionId);
  }

  /**
   * Whether a session stands in for a current password it cannot have: the user has no password
   * (an account made just in time by single sign-on) and the session was signed in through the
   * company IdP (`fed`) at most FRESH_FEDERATED_SIGN_IN_SECONDS ago. Then the IdP's sign-in is
   * the recent proof a password would have been (a TOTP set-up); no counter is involved.
   */
  freshFederatedSignIn(session: StandingSession): boolean {
    const age = this.deps.clock().getTime() - Date.parse(session.createdAt);
    return session.user.passwordHash === '' && session.amr.includes('fed') && age >= 0 && age <= FRESH_FEDERATED_SIGN_IN_SECONDS * 1000;
  }

}

/**
 * Second factors: TOTP codes and recovery codes, wherever one is given. A class of its own in this
 * module so that only the MFA functions bundle it (the functions that check passwords alone don't).
 */
export class SecondFactorChecks {
  constructor(private readonly deps: SecondFactorChecksDeps) {}

  private get codeLimits(): CodeLimits {
    return this.deps.config.mfa;
  }

  /**
   * A second factor for the `mfa_token` of a sign-in. The token's attempt was taken with the user's
   * read (`tokenState`); here the account's own count (and the device token's, when the sign-in
   * presented one: `deviceHash`) is reserved, then the code compared. A refusal gives back the
   * token's attempt and whatever else was reserved (429); a wrong code stays counted everywhere
   * (401 `invalid_mfa_code`). A match is returned for the caller to spend.
   */
  async signInSecondFactor(
    user: User,
    proof: SecondFactor,
    { token, tokenState, matcher }: { token: MfaToken; tokenState: MfaTokenState; matcher: SecondFactorMatcher },
    caller: Caller,
  ): Promise<MatchedSecondFactor> {
    const now = this.deps.clock();
    const deviceHash = tokenState.deviceHash;
    const [own, onDevice] = await Promise.allSettled([this.reserveSecondFactor(user, proof, now), deviceHash ? this.reserveDevice(deviceHash, user, now) : undefined]);
    const ownLock = own.status === 'fulfilled' ? own.value.lock : undefined;
    const deviceLock = onDevice.status === 'fulfilled' ? onDevice.value?.lock : undefined;
    const deviceTaken = onDevice.status === 'fulfilled' && onDevice.value !== undefined && !deviceLock;
    if (own.status === 'rejected' || onDevice.status === 'rejected' || ownLock || deviceLock) {
      await Promise.allSettled([
        this.deps.mfaTokens.giveBackAttempt(token),
        own.status === 'fulfilled' && !ownLock ? this.deps.mfa.giveBackCode(user.id, kindOf(proof)) : undefined,
        deviceTaken ? this.deps.attempts.giveBackDevice(deviceHash!) : undefined,
      ]);
      for (const settled of [own, onDevice]) if (settled.status === 'rejected') throw settled.reason;
      throw this.codeRefused(user, (ownLock ?? deviceLock)!, caller);
    }
    const matched = await this.match(proof, matcher, now);
    // A right code's device attempt needs nothing: the sign-in replaces that token. A wrong one settles as its failure.
    if (!matched) {
      const [refusal] = await Promise.all([
        this.wrongSecondFactor(user, proof, (own as PromiseFulfilledResult<Reserved>).value, caller, { attemptsLeft: MAX_MFA_TOKEN_ATTEMPTS - tokenState.attempts }),
        deviceTaken ? this.deps.attempts.settleDevice(deviceHash!, now) : undefined,
      ]);
      throw refusal;
    }
    return matched;
  }

  /** The device token presented at the sign-in, when it is still live for this user: one of its attempts (or its lock). */
  private async reserveDevice(hash: string, user: User, now: Date): Promise<{ lock: Lock | undefined } | undefined> {
    const item = await this.deps.attempts.readDevice(hash);
    if (!item || !isDeviceLive(item, user, epochSeconds(now), this.deps.config.deviceTokenTtlSeconds)) return undefined;
    const held = await this.deps.attempts.reserveDeviceByHash(hash, item, now);
    return held === 'gone' ? undefined : { lock: held };
  }

  /**
   * A TOTP code outside a sign-in's second step: turning TOTP off, new recovery codes (from a
   * session), or proving a pending secret at activation (from a session, or an enrolment
   * `mfa_token`, whose attempt was taken with the user's read: `token`). The account's own count is
   * reserved, then the code compared. 429 when locked (nothing moved: the token's attempt given
   * back), 401 `invalid_mfa_code` when wrong (counted); the matching step for the caller to spend
   * by the write that also ends the count.
   */
  async sessionCode(user: User, code: string, matcher: SecondFactorMatcher, caller: Caller, { token }: { token?: MfaToken } = {}): Promise<number> {
    const now = this.deps.clock();
    const reserved = await this.reserveSecondFactor(user, { code }, now);
    if (reserved.lock) {
      if (token) await this.deps.mfaTokens.giveBackAttempt(token);
      throw this.codeRefused(user, reserved.lock, caller);
    }
    const step = await matcher.code(code, now);
    if (step === undefined) throw await this.wrongSecondFactor(user, { code }, reserved, caller, {});
    return step;
  }

  /**
   * A spend that failed after the code matched (its step was claimed by a racing request, or a
   * replay): a wrong code, as counted.
   */
  spentElsewhere(user: User, proof: SecondFactor, caller: Caller): ApiError {
    const kind = kindOf(proof);
    countMetric(METRIC.secondFactorFailed, { name: 'reason', value: kind });
    log.info('mfa_code_failed', { userId: user.id, reason: `spent_${kind}`, ...caller });
    return new ApiError('invalid_mfa_code');
  }

  /** One attempt of the account's own count for this kind of second factor: the count it made, or the lock that refused it. */
  private async reserveSecondFactor(user: User, proof: SecondFactor, now: Date): Promise<Reserved> {
    if ('recoveryCode' in proof) {
      const count = await this.deps.mfa.reserveRecoveryCode(user.id, this.codeLimits);
      return count === undefined ? { count: 0, lock: { by: 'recovery_code', retryAfterSeconds: RECOVERY_LOCK_RETRY_AFTER_SECONDS } } : { count };
    }
    const reserved = await this.deps.mfa.reserveCode(user.id, user.codeFailures, this.codeLimits, now);
    return reserved.taken ? { count: reserved.count, lockSeconds: reserved.lockSeconds } : { count: 0, lock: { by: 'code', retryAfterSeconds: reserved.retryAfterSeconds } };
  }

  private async match(proof: SecondFactor, matcher: SecondFactorMatcher, now: Date): Promise<MatchedSecondFactor | undefined> {
    if ('code' in proof) {
      const step = await matcher.code(proof.code, now);
      return step === undefined ? undefined : { kind: 'code', step };
    }
    const mac = await matcher.recoveryCode(proof.recoveryCode);
    return mac === undefined ? undefined : { kind: 'recovery_code', mac };
  }


  /**
   * A wrong second factor, counted: 401. When its reservation was the one that reached
   * MFA_MAX_FAILURES, a lock begins: counted (SecondFactorLocked), audited with the account.
   */
  private async wrongSecondFactor(user: User, proof: SecondFactor, { count, lockSeconds }: Reserved, caller: Caller, detail: Record<string, unknown>): Promise<ApiError> {
    const kind = kindOf(proof);
    countMetric(METRIC.secondFactorFailed, { name: 'reason', value: kind });
    log.info('mfa_code_failed', { userId: user.id, reason: `bad_${kind}`, ...detail, ...caller });
    if (count === this.codeLimits.maxFailures) {
      if (kind === 'code') await this.deps.mfa.countLock(user.id).catch(() => undefined);
      countMetric(METRIC.secondFactorLocked, { name: 'reason', value: kind });
      log.warn('second_factor_locked', {
        userId: user.id,
        email: user.email,
        kind,
        // A TOTP lock runs out (doubling each time); a recovery-code lock waits for an operator's unlock.
        lockedForSeconds: kind === 'code' ? lockSeconds : undefined,
        ...caller,
      });
    }
    return new ApiError('invalid_mfa_code');
  }

  private codeRefused(user: User, lock: Lock, caller: Caller): ApiError {
    log.info('mfa_code_refused', { userId: user.id, reason: 'locked', lockedBy: lock.by, ...caller });
    return lockedOut(lock);
  }
}

/** A reservation of an account's second-factor count: the count it made, or the lock that refused it. */
interface Reserved {
  count: number;
  /** How long the lock this count would complete lasts (TOTP codes). */
  lockSeconds?: number;
  lock?: Lock;
}

const kindOf = (proof: SecondFactor): 'code' | 'recovery_code' => ('code' in proof ? 'code' : 'recovery_code');


/**
 * An API key (`vak_…`): its shape and checksum first (no I/O: noise costs no read), then one
 * BatchGetItem of its slot and its owner, the hash compared in constant time; refused unless the
 * key is live (not revoked, not expired by the clock, of the owner's current `api_key_epoch`) and
 * the owner active. No counter: a key is 256 random bits, so there is nothing to guess and
 * nothing a stranger could fill. A use records `last_used_at` at most once an hour, best effort.
 * Refused: 401 `invalid_token`, with the challenge of a bad access token.
 */
export async function checkApiKey(
  deps: { apiKeys: ApiKeysRepository; clock: Clock },
  presented: string,
  caller: Partial<Caller> = {},
  { lastLogin = false } = {},
): Promise<VerifiedApiKey> {
  const parsed = parseApiKey(presented);
  // The user id is the key's own claim until its hash has matched: logged as such.
  const refuse = (reason: string, keyId?: string) => {
    log.info('api_key_refused', { reason, keyId, ...(keyId ? { userId: parsed?.userId } : { claimedUserId: parsed?.userId }), ...caller });
    return bearerError('invalid_token', true);
  };
  if (!parsed) throw refuse('malformed');
  const { key, user } = await deps.apiKeys.getWithUser(parsed.userId, parsed.slot, { lastLogin });
  const now = deps.clock();
  if (!key || !user || key.id !== parsed.keyId || !digestsEqual(parsed.hash, key.keyHash)) throw refuse('unknown_key');
  if (!isApiKeyLive(key, user, now)) throw refuse(key.revokedAt ? 'revoked' : key.apiKeyEpoch !== user.apiKeyEpoch ? 'ended' : 'expired', key.id);
  if (user.status !== 'active') throw refuse('user_disabled', key.id);
  if (isUseDue(key, now)) {
    // Bookkeeping: a failure here must not refuse a good key.
    await deps.apiKeys.touch(key, now).catch((error: unknown) => log.warn('api_key_use_not_recorded', { keyId: key.id, ...describeError(error) }));
  }
  return { user, key, role: ROLE_RANK[key.role] <= ROLE_RANK[user.role] ? key.role : user.role };
}

/** The password checks over an app's repositories (one per app); the MFA service makes its own, with the second factor's stores. */
export const credentials = oncePer((app: App) => new Credentials(app));


/** How recent a federated sign-in must be to stand in for a password the user does not have (a TOTP set-up). */
export const FRESH_FEDERATED_SIGN_IN_SECONDS = 600;

/** The ID token's claims as openid-client returns them once it has checked the token. */
export type IdTokenClaims = Record<string, unknown> & { iss: string; sub: string };

/** A federated sign-in refused after the flow's redirect URI is known: the reason goes to the log and, worded, to the client. */
export class AssertionRefused extends Error {
  constructor(
    readonly reason: string,
    readonly description: string,
  ) {
    super(description);
    this.name = 'AssertionRefused';
  }
}

/** RFC 8176 values that say the IdP proved more than a password: its `amr` holding one of them is its MFA. */
const IDP_SECOND_FACTORS = new Set(['mfa', 'otp', 'hwk', 'swk', 'sms', 'tel', 'sc', 'fpt', 'face', 'iris', 'retina', 'vbm']);

/** An assertion that checked out: our user (linked, or made just in time), and what the IdP said of its session. */
export interface VerifiedAssertion {
  user: User;
  /** The IdP's own session id (`sid`), which its back-channel logout may name. */
  idpSid: string | undefined;
  /** The IdP did a second factor. */
  idpMfa: boolean;
  created: boolean;
}

/**
 * Single sign-on's credentials: an IdP's assertion (the ID token of a code exchange, the exchange
 * handed in by the SSO service so that only the SSO functions bundle openid-client), and our own
 * one-time code for it. Neither is held to a counter (the table above).
 */
export class FederatedCredentials {
  constructor(private readonly deps: { users: UsersRepository; sso: SsoRepository; clock: Clock }) {}

  /**
   * The assertion of `connection`'s IdP: `exchange` redeems the code and checks the ID token
   * (openid-client: the JWKS signature, as lib/auth/identity-providers.ts enables it, one pinned
   * asymmetric algorithm, iss, aud, nonce, exp/iat) or throws. Then a verified
   * email of the connection's domain; the user linked to (issuer, sub), else the user of that
   * email (linked now), else one made just in time; a disabled user is refused. With an admin
   * group, the role follows the groups claim at every sign-in.
   */
  async assertion(connection: Connection, exchange: () => Promise<IdTokenClaims>, caller: Partial<Caller>): Promise<VerifiedAssertion> {
    let claims: IdTokenClaims;
    try {
      claims = await exchange();
    } catch (error) {
      throw this.refuse('idp_exchange_failed', 'The identity provider\'s answer could not be verified.', caller, { domain: connection.domain, ...describeError(error) });
    }
    const { iss, sub } = claims;
    const rawEmail = claims.email;
    if (typeof rawEmail !== 'string' || rawEmail.trim() === '') throw this.refuse('no_email', 'The identity provider sent no email address.', caller, { domain: connection.domain });
    if (claims.email_verified !== true) throw this.refuse('email_not_verified', 'The identity provider has not verified this email address.', caller, { domain: connection.domain });
    const email = normalizeEmail(rawEmail);
    // The same rule as an email typed at sign-in: `a@b@domain` is no address of `domain`.
    if (!isEmail(email)) throw this.refuse('malformed_email', 'The identity provider sent an email address that is not valid.', caller, { domain: connection.domain });
    if (email.slice(email.lastIndexOf('@') + 1) !== connection.domain) throw this.refuse('wrong_domain', `The email address is not of the domain ${connection.domain}.`, caller, { domain: connection.domain });
    const now = this.deps.clock();
    const role = roleFromGroups(connection, claims);
    let created = false;
    let user: User | undefined;
    const linked = await this.deps.sso.linkedUser(iss, sub);
    if (linked) user = await this.deps.users.get(linked);
    if (!user) {
      user = await this.deps.users.findByEmail(email);
      if (!user) {
        const name = typeof claims.name === 'string' && claims.name.trim() !== '' ? claims.name.trim().slice(0, 200) : email;
        try {
          // No password: an empty hash, which no password ever matches (lib/auth/passwords.ts).
          user = await this.deps.users.create({ email, name, role: role ?? 'user', passwordHash: '' }, now);
          created = true;
        } catch (error) {
          if (!(error instanceof EmailTakenError)) throw error;
          user = await this.deps.users.findByEmail(email);
        }
      }
      if (!user) throw this.refuse('no_user', 'The account could not be made.', caller, { domain: connection.domain });
      let owner: string;
      try {
        owner = await this.deps.sso.link(iss, sub, user.id, now);
      } catch (error) {
        // The email's user is linked to another sub of this IdP: a recycled email (or a renamed
        // account) must not take it over. An operator who knows better runs `users sso unlink`.
        if (error instanceof IdentityTakenError) throw this.refuse('linked_to_another_subject', 'This email address belongs to an account linked to another identity at this provider. Ask an administrator.', caller, { userId: user.id, domain: connection.domain });
        throw error;
      }
      if (owner !== user.id) user = await this.deps.users.get(owner);
      if (!user) throw this.refuse('no_user', 'The account could not be found.', caller, { domain: connection.domain });
    }
    if (user.status !== 'active') throw this.refuse('disabled', 'This account is disabled.', caller, { userId: user.id, domain: connection.domain });
    if (role && role !== user.role) user = await this.deps.users.setRole(user.id, role, now);
    const amr = Array.isArray(claims.amr) ? claims.amr : [];
    const idpMfa = amr.some((method) => typeof method === 'string' && IDP_SECOND_FACTORS.has(method));
    log.info('sso_assertion_accepted', { userId: user.id, domain: connection.domain, created, idpMfa, ...caller });
    return { user, idpSid: typeof claims.sid === 'string' ? claims.sid : undefined, idpMfa, created };
  }

  /**
   * Our one-time code and its PKCE verifier: spent once (a conditional write, so of racing
   * requests exactly one gets the grant), only with the verifier of its challenge. Anything else
   * is 400 `invalid_grant`; the user is read beside the spend.
   */
  async ssoCode(code: string, verifier: string, caller: Partial<Caller>): Promise<{ grant: FederatedGrant; user: User }> {
    const parsed = parseSsoCode(code);
    if (!parsed) throw this.invalidGrant('malformed', caller);
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const [grant, user] = await Promise.all([this.deps.sso.spendCode(parsed, challenge, this.deps.clock()), this.deps.users.get(parsed.userId)]);
    if (!grant) throw this.invalidGrant('unusable', caller, parsed.userId);
    if (!user || user.status !== 'active') throw this.invalidGrant('disabled', caller, parsed.userId);
    // The IdP logged the user out (back-channel) after the callback made this code.
    if (loggedOutSince(user, { issuer: grant.issuer, sid: grant.idpSid }, grant.createdAt)) throw this.invalidGrant('idp_logged_out', caller, parsed.userId);
    return { grant, user };
  }

  private invalidGrant(reason: string, caller: Partial<Caller>, userId?: string): ApiError {
    countMetric(METRIC.signInFailed, { name: 'reason', value: `sso_${reason}` });
    log.info('sso_token_refused', { reason, userId, ...caller });
    return new ApiError('invalid_grant');
  }

  private refuse(reason: string, description: string, caller: Partial<Caller>, detail: Record<string, unknown>): AssertionRefused {
    countMetric(METRIC.signInFailed, { name: 'reason', value: `sso_${reason}` });
    log.info('sso_assertion_refused', { reason, ...detail, ...caller });
    return new AssertionRefused(reason, description);
  }
}

/** The role the groups claim gives, when the connection maps one (`--admin-group`); undefined keeps the user's. */
function roleFromGroups(connection: Connection, claims: IdTokenClaims): Role | undefined {
  if (!connection.adminGroup) return undefined;
  const groups = claims[connection.groupsClaim];
  const list = Array.isArray(groups) ? groups : typeof groups === 'string' ? [groups] : [];
  return list.includes(connection.adminGroup) ? 'admin' : 'user';
}
