import type { App } from '../app.js';
import type { AuthService, Caller } from '../auth/auth-service.js';
import { loginService, type LoginService, type SignIn } from '../auth/login-service.js';
import { credentials, SecondFactorChecks, type Credentials, type SecondFactor, type SecondFactorMatcher } from '../auth/credentials.js';
import type { KeyRing } from '../auth/signing-keys.js';
import type { Clock } from '../auth/tokens.js';
import { ConfigError, type Config } from '../platform/config.js';
import { ApiError, bearerError, unavailable } from '../platform/errors.js';
import { log } from '../platform/log.js';
import { oncePer } from '../platform/memo.js';
import { METRIC, countMetric } from '../platform/metrics.js';
import { MfaRepository } from '../store/mfa.js';
import { MfaTokensRepository, isMfaTokenUsable, parseMfaToken, type MfaToken, type MfaTokenPurpose, type MfaTokenState } from '../store/mfa-tokens.js';
import { epochSeconds, type AuthMethod, type IdpSession, type SessionsRepository } from '../store/sessions.js';
import { SsoRepository, loggedOutSince } from '../store/sso.js';
import type { BatchWrite } from '../platform/dynamo.js';
import type { LoginAttempts } from '../store/login-attempts.js';
import type { User, UsersRepository } from '../store/users.js';
import { matchRecoveryCode, newRecoveryCodes, storedRecoveryCodes } from './recovery-codes.js';
import { open, seal, sealedKid, type MfaKeys } from './secret-box.js';
import { matchTotp, newTotpSecret, otpauthUrl } from './totp.js';

export interface MfaServiceDeps {
  config: Pick<Config, 'mfa' | 'refreshTokenTtlSeconds'>;
  /** The IdP session's item (issuer, sid) -> user, written with a federated session, for a logout token that names only the sid. */
  idpSessions: Pick<SsoRepository, 'idpSessionWrite'>;
  /** The JWT signing keys (a new session's tokens). */
  keyRing: KeyRing;
  mfaKeyRing: KeyRing;
  auth: AuthService;
  login: LoginService;
  /** The current password (a set-up by session). */
  credentials: Credentials;
  /** Every code (lib/auth/credentials.ts). */
  secondFactors: SecondFactorChecks;
  attempts: LoginAttempts;
  users: UsersRepository;
  sessions: SessionsRepository;
  mfa: MfaRepository;
  mfaTokens: MfaTokensRepository;
  clock: Clock;
}

/**
 * How a request to setup or activate is authenticated: a signed-in user's access token (for a
 * setup, with the current password: a stolen token alone must not enrol an attacker's
 * authenticator), or the `mfa_token` of a sign-in that must enrol first (earned with the password
 * moments ago).
 */
export type EnrolmentAuth = { accessToken: string } | { mfaToken: string };
export type SetupAuth = { accessToken: string; currentPassword: string | undefined } | { mfaToken: string };

/** A session signed in with a password and a second factor (RFC 8176). */
const PASSWORD_AND_OTP: readonly AuthMethod[] = ['pwd', 'otp'];


const invalidMfaToken = () => new ApiError('invalid_mfa_token');
const invalidCode = () => new ApiError('invalid_mfa_code');

/**
 * Two-factor sign-in: TOTP set up and proven (`setup`, `activate`), the second step of a sign-in
 * (`verify`), recovery codes, turning TOTP off. Secrets are sealed and recovery codes kept as
 * MACs under the MFA key ring (lib/mfa/secret-box.ts); the state is on the user item
 * (lib/store/mfa.ts), each change one conditional write; the `mfa_token` of a sign-in that owes a
 * second factor is lib/store/mfa-tokens.ts. Every failure leaves as an ApiError.
 */
export class MfaService {
  constructor(private readonly deps: MfaServiceDeps) {}

  /**
   * How a session opened by our second factor was signed in: a password and a code, or a company
   * IdP (single sign-on) and a code; then, as the SSO token exchange does, the IdP session's item
   * is written with the session, so that a logout token naming only its sid finds the user.
   */
  private signedInWithCode(federated: IdpSession | undefined, userId: string, now: Date): { amr: readonly AuthMethod[]; idp?: IdpSession; alsoWrite?: BatchWrite[] } {
    if (!federated) return { amr: PASSWORD_AND_OTP };
    const ends = epochSeconds(now) + this.deps.config.refreshTokenTtlSeconds;
    return { amr: ['fed', 'otp'], idp: federated, alsoWrite: federated.sid ? [this.deps.idpSessions.idpSessionWrite(federated.issuer, federated.sid, userId, ends)] : [] };
  }

  /**
   * A new secret, pending until a code proves it: `{secret, otpauth_url}`. A setup replaces a
   * pending one; with TOTP active it is 409 `mfa_already_enabled`. By access token, the current
   * password is checked as a password change checks it (lib/auth/credentials.ts: the session's own
   * count of wrong ones): 4 DynamoDB calls; by an enrolment `mfa_token`: 2 (the token and the user
   * read together, then the write).
   */
  async setup(auth: SetupAuth, caller: Caller): Promise<{ secret: string; otpauth_url: string }> {
    const keys = await this.deps.mfaKeyRing.current();
    const standing = 'accessToken' in auth ? await this.deps.auth.authenticate(auth.accessToken) : undefined;
    const { user } = standing ?? (await this.enrolling((auth as { mfaToken: string }).mfaToken, { reserve: false }));
    const currentPassword = standing ? (auth as { currentPassword?: unknown }).currentPassword : undefined;
    // A user without a password (made by single sign-on) proves it with a fresh federated sign-in instead.
    const federatedProof = standing !== undefined && currentPassword === undefined && this.deps.credentials.freshFederatedSignIn(standing);
    if (standing && !federatedProof && typeof currentPassword !== 'string') throw new ApiError('invalid_request', 'The field "current_password" is required with a Bearer token (a user without a password: sign in with single sign-on again, then set up within 10 minutes).');
    if (user.totp?.status === 'active') throw new ApiError('mfa_already_enabled');
    if (standing && !federatedProof) await this.deps.credentials.currentPassword(standing, currentPassword as string, caller, { action: 'mfa_setup' });
    const secret = newTotpSecret();
    if (!(await this.deps.mfa.savePending(user.id, seal(keys, secret, user.id)))) throw new ApiError('mfa_already_enabled');
    log.info('mfa_setup', { userId: user.id, by: 'accessToken' in auth ? 'session' : 'mfa_token', ...caller });
    return { secret, otpauth_url: otpauthUrl(user.email, secret) };
  }

  /**
   * The pending secret proven by a code: TOTP active, ten recovery codes (shown this once), and a
   * new session epoch, so every other session and device token of the user ends. By access token
   * the caller's own session is carried over to the new epoch; by an enrolment `mfa_token` (one of
   * its five attempts taken per code, spent by the success) the answer also holds a new session
   * signed in with `pwd` and `otp`, the login success shape.
   */
  async activate(auth: EnrolmentAuth, code: string, caller: Caller): Promise<{ recovery_codes: string[] } & Partial<SignIn>> {
    const keys = await this.deps.mfaKeyRing.current();
    const now = this.deps.clock();
    const signedIn = 'accessToken' in auth ? await this.deps.auth.authenticate(auth.accessToken) : undefined;
    const enrolment = signedIn ? undefined : await this.enrolling((auth as { mfaToken: string }).mfaToken, { reserve: true });
    const user = (signedIn ?? enrolment)!.user;
    if (user.totp?.status === 'active') throw new ApiError('mfa_already_enabled');
    if (!user.totp) throw new ApiError('mfa_not_enabled', 'No authenticator is set up: POST /v1/auth/mfa/totp/setup first.');
    // Held to the account's count of wrong codes, as any code is (an abandoned pending secret must not
    // be guessable); by an enrolment token, a refusal gives its attempt back.
    const step = await this.deps.secondFactors.sessionCode(user, code, this.matcher(keys, user), caller, { token: enrolment?.token });
    // The token is spent before the activation it leads to, so the codes shown once cannot be lost to a race.
    if (enrolment && !(await this.deps.mfaTokens.spend(enrolment.token, now))) throw invalidMfaToken();
    const codes = newRecoveryCodes();
    const activated = await this.deps.mfa.activate(user.id, { sealedSecret: user.totp.sealedSecret, step, recovery: storedRecoveryCodes(keys, codes), epoch: user.sessionEpoch, at: now, keepSession: signedIn?.sessionId });
    if (!activated) {
      // Another activation, a new setup or the end of every session got there first.
      const current = await this.deps.users.get(user.id);
      log.info('mfa_activation_failed', { userId: user.id, reason: 'lost_race', ...caller });
      if (current?.totp?.status === 'active') throw new ApiError('mfa_already_enabled');
      if (signedIn && current?.sessionEpoch !== user.sessionEpoch) throw bearerError('invalid_token', true);
      throw enrolment ? invalidMfaToken() : invalidCode();
    }
    countMetric(METRIC.secondFactorChanged, { name: 'reason', value: 'activated' });
    if (signedIn) {
      const epochs = { from: user.sessionEpoch, to: activated.sessionEpoch };
      const [kept] = await Promise.all([
        this.deps.sessions.carryOver(signedIn.sessionId, user.id, epochs),
        // Its device token too, so that this device keeps its exemption from the account's limits.
        signedIn.deviceHash ? this.deps.attempts.carryDeviceOver(signedIn.deviceHash, signedIn.sessionId, epochs) : undefined,
      ]);
      log.info('mfa_activated', { userId: user.id, sessionId: signedIn.sessionId, sessionKept: kept, ...caller });
      return { recovery_codes: codes };
    }
    const ring = await this.deps.keyRing.current();
    const { signIn, sessionId } = await this.deps.login.openSession({ user: activated, ring, now }, caller, { cap: false, ...this.signedInWithCode(enrolment?.federated, activated.id, now) });
    log.info('mfa_activated', { userId: user.id, sessionId, ...caller });
    countMetric(METRIC.signInSucceeded);
    return { recovery_codes: codes, ...signIn };
  }

  /**
   * The second step of a sign-in: a TOTP code or a recovery code for the `mfa_token` the right
   * password got. Three round trips (four when the sign-in presented a device token):
   * 1. one of the token's attempts is taken (five in all: the fifth wrong code ends it), the user
   *    read beside it;
   * 2. the code is checked by lib/auth/credentials.ts: the account's own count of wrong codes (and
   *    the device token's, when the sign-in presented one) reserved first, never the counters
   *    strangers can fill; 429 once locked, 401 for a wrong code (counted);
   * 3. the code is spent (a TOTP step claimed, never accepted twice; a recovery code removed; either
   *    ends the account's wrong-code counts and a lock in force), the token spent and the new
   *    session written, side by side; should the code or the token have been spent by another
   *    request first, the session just written is ended and the answer is 401.
   * DynamoDB calls: 7 on success, 3 for a wrong code.
   */
  async verify(mfaToken: string, proof: SecondFactor, caller: Caller): Promise<SignIn & { recovery_codes_left?: number }> {
    const keys = await this.deps.mfaKeyRing.current();
    const token = parseMfaToken(mfaToken);
    const now = this.deps.clock();
    if (!token) throw this.tokenRefused(undefined, 'malformed', caller);
    const [state, read] = await Promise.all([this.deps.mfaTokens.reserveAttempt(token, now), this.deps.users.get(token.userId)]);
    const problem = tokenProblem(state, read, 'verify');
    if (problem) throw this.tokenRefused(token.userId, problem, caller);
    const user = read!;
    if (user.totp?.status !== 'active') throw this.tokenRefused(token.userId, 'no_totp', caller);
    const matched = await this.deps.secondFactors.signInSecondFactor(
      user,
      proof,
      { token, tokenState: state!, matcher: this.matcher(keys, user) },
      caller,
    );
    const ring = await this.deps.keyRing.current();
    const [spending, claiming, opening] = await Promise.allSettled([
      this.deps.mfaTokens.spend(token, now),
      matched.kind === 'code' ? this.deps.mfa.claimStep(user.id, matched.step) : this.deps.mfa.useRecoveryCode(user.id, matched.mac),
      this.deps.login.openSession({ user, ring, now }, caller, this.signedInWithCode(state!.federated, user.id, now)),
    ]);
    if (opening.status === 'rejected') throw opening.reason;
    const opened = opening.value;
    const claimed = claiming.status === 'fulfilled' && claiming.value !== false && claiming.value !== undefined;
    const spent = spending.status === 'fulfilled' && spending.value;
    if (!claimed || !spent) {
      // Another request won the code or the token (or a write failed): the session just opened must
      // not outlive the refusal; a token this request spent for a code that did not hold is
      // restored (a replayed code is a wrong code: it takes one attempt, not the token).
      await Promise.allSettled([
        this.deps.sessions.revoke(opened.sessionId, user.id, now, 'mfa_token_spent'),
        spent ? this.deps.mfaTokens.unspend(token, now) : undefined,
      ]);
      for (const settled of [claiming, spending]) if (settled.status === 'rejected') throw settled.reason;
      throw claimed ? this.tokenRefused(user.id, 'spent', caller) : this.deps.secondFactors.spentElsewhere(user, proof, caller);
    }
    // The device token the sign-in presented is replaced by the one handed out now.
    if (state!.deviceHash) await this.deps.attempts.forgetDevice(state!.deviceHash);
    const left = matched.kind === 'recovery_code' ? (claiming as PromiseFulfilledResult<number>).value : undefined;
    countMetric(METRIC.secondFactorSucceeded, { name: 'reason', value: matched.kind });
    countMetric(METRIC.signInSucceeded);
    log.info('login_succeeded', { userId: user.id, sessionId: opened.sessionId, secondFactor: matched.kind, recoveryCodesLeft: left, ...caller });
    return left === undefined ? opened.signIn : { ...opened.signIn, recovery_codes_left: left };
  }

  /**
   * Ten new recovery codes; the old ones die. Only from a session signed in with a second factor,
   * and with a current TOTP code (lib/auth/credentials.ts: the account's own count of wrong codes),
   * whose step is spent by the very write that replaces the codes: a stolen access token alone
   * cannot mint a lasting second factor. 3 DynamoDB calls.
   */
  async replaceRecoveryCodes(accessToken: string, code: string, caller: Caller): Promise<{ recovery_codes: string[] }> {
    const keys = await this.deps.mfaKeyRing.current();
    const { user, sessionId, amr } = await this.deps.auth.authenticate(accessToken);
    if (user.totp?.status !== 'active') throw new ApiError('mfa_not_enabled');
    if (!amr.includes('otp')) throw new ApiError('otp_session_required');
    const step = await this.deps.secondFactors.sessionCode(user, code, this.matcher(keys, user), caller);
    const codes = newRecoveryCodes();
    if (!(await this.deps.mfa.replaceRecoveryCodes(user.id, storedRecoveryCodes(keys, codes), step))) throw this.deps.secondFactors.spentElsewhere(user, { code }, caller);
    countMetric(METRIC.secondFactorChanged, { name: 'reason', value: 'recovery_codes_replaced' });
    log.info('mfa_recovery_codes_replaced', { userId: user.id, sessionId, ...caller });
    return { recovery_codes: codes };
  }

  /**
   * TOTP off, with a current code: 403 `mfa_required_by_policy` when the user's role must have it.
   * The code is checked by lib/auth/credentials.ts (the account's own count of wrong codes, 429
   * once locked; a wrong code stays counted), and its step is spent by the very write that removes
   * TOTP. Sessions stand. 3 DynamoDB calls.
   */
  async turnOff(accessToken: string, code: string, caller: Caller): Promise<void> {
    const keys = await this.deps.mfaKeyRing.current();
    const { user, sessionId } = await this.deps.auth.authenticate(accessToken);
    if (this.deps.config.mfa.requiredRoles.includes(user.role)) throw new ApiError('mfa_required_by_policy');
    if (user.totp?.status !== 'active') throw new ApiError('mfa_not_enabled');
    const step = await this.deps.secondFactors.sessionCode(user, code, this.matcher(keys, user), caller);
    if (!(await this.deps.mfa.turnOff(user.id, step))) throw this.deps.secondFactors.spentElsewhere(user, { code }, caller);
    countMetric(METRIC.secondFactorChanged, { name: 'reason', value: 'turned_off' });
    log.info('mfa_turned_off', { userId: user.id, sessionId, ...caller });
  }

  /** The user and token of an enrolment `mfa_token`: read (setup), or with one of its attempts taken (activate). */
  private async enrolling(mfaToken: string, { reserve }: { reserve: boolean }): Promise<{ user: User; token: MfaToken; federated: IdpSession | undefined }> {
    const token = parseMfaToken(mfaToken);
    if (!token) throw this.tokenRefused(undefined, 'malformed');
    const now = this.deps.clock();
    const [state, user] = await Promise.all([reserve ? this.deps.mfaTokens.reserveAttempt(token, now) : this.deps.mfaTokens.get(token), this.deps.users.get(token.userId)]);
    // A reservation holds only for a usable token; a read is held to the same rule.
    const problem = reserve || isMfaTokenUsable(state, now) ? tokenProblem(state, user, 'enroll') : 'unusable';
    if (problem) throw this.tokenRefused(token.userId, problem);
    return { user: user!, token, federated: state!.federated };
  }

  private tokenRefused(userId: string | undefined, reason: string, caller?: Caller): ApiError {
    countMetric(METRIC.secondFactorFailed, { name: 'reason', value: 'token' });
    log.info('mfa_token_refused', { userId, reason, ...caller });
    return invalidMfaToken();
  }

  /** How this user's codes compare (lib/mfa's arithmetic), for lib/auth/credentials.ts to call once their counters are reserved. */
  private matcher(keys: MfaKeys, user: User): SecondFactorMatcher {
    return {
      code: async (code, at) => matchTotp(await this.openSecret(keys, user), code, at),
      recoveryCode: async (typed) => {
        const stored = user.totp?.recovery;
        return stored && matchRecoveryCode(await this.keysHolding(keys, stored.kid), stored, typed);
      },
    };
  }

  /** The user's TOTP secret in clear. A secret the MFA ring cannot open (its key was retired) is an operator's fault: 503, logged. */
  private async openSecret(keys: MfaKeys, user: User): Promise<string> {
    const sealed = user.totp!.sealedSecret;
    const secret = open(await this.keysHolding(keys, sealedKid(sealed)), sealed, user.id);
    if (secret === undefined) {
      log.error('mfa_secret_unreadable', { userId: user.id, kid: sealedKid(sealed) });
      throw unavailable();
    }
    return secret;
  }

  /**
   * The ring, read again first when it lacks `kid`: a secret resealed, or codes made, under a key
   * this container has not seen yet (`npm run keys -- rotate --ring mfa`, then `reseal`).
   */
  private async keysHolding(keys: MfaKeys, kid: string | undefined): Promise<MfaKeys> {
    return kid === undefined || keys.keys.has(kid) ? keys : this.deps.mfaKeyRing.including(kid);
  }
}

/** Why a token (as reserved or read) does not stand for this user and purpose; undefined when it does. */
function tokenProblem(state: MfaTokenState | undefined, user: User | undefined, purpose: MfaTokenPurpose): string | undefined {
  if (!state) return 'unusable';
  if (state.purpose !== purpose) return 'wrong_purpose';
  if (!user || user.id !== state.userId || user.status !== 'active') return 'no_user';
  // A password change, a global logout or an activation since the password was checked.
  if (user.sessionEpoch !== state.userEpoch) return 'sessions_ended';
  // The IdP logged the user out (back-channel) since the federated sign-in that made it.
  if (state.federated && loggedOutSince(user, state.federated, state.createdAt)) return 'idp_logged_out';
  return undefined;
}

/** The MFA service over an app (one per app); MFA_KEY or MFA_KEY_PARAMETER must be set. */
export const mfaService = oncePer((app: App) => {
  if (!app.mfaKeyRing) throw new ConfigError('MFA_KEY', 'is required (or MFA_KEY_PARAMETER, the SSM parameter that holds the MFA keys)');
  return new MfaService({
    ...app,
    mfaKeyRing: app.mfaKeyRing,
    login: loginService(app),
    credentials: credentials(app),
    secondFactors: new SecondFactorChecks({ ...app, mfa: new MfaRepository(app.db, app.config.usersTable), mfaTokens: new MfaTokensRepository(app.db, app.config.attemptsTable) }),
    mfa: new MfaRepository(app.db, app.config.usersTable),
    mfaTokens: new MfaTokensRepository(app.db, app.config.attemptsTable),
    idpSessions: new SsoRepository(app.db, app.config.usersTable, app.config.attemptsTable),
  });
});
