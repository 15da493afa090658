import type { App } from '../app.js';
import type { AuthService, Caller } from './auth-service.js';
import type { Config } from '../platform/config.js';
import { ApiError, bearerError } from '../platform/errors.js';
import { log } from '../platform/log.js';
import { METRIC, countMetric } from '../platform/metrics.js';
import { oncePer } from '../platform/memo.js';
import { credentials, type Credentials } from './credentials.js';
import type { KeyRing } from './signing-keys.js';
import type { Clock } from './tokens.js';
import type { UsersRepository } from '../store/users.js';
import { loginService, ssoRequired, type LoginService, type SignIn } from './login-service.js';
import { passwordPolicyProblem } from './password-policy.js';
import { bcryptHash } from './passwords.js';

export interface PasswordServiceDeps {
  config: Pick<Config, 'bcryptCost' | 'passwordMinLength'>;
  keyRing: KeyRing;
  auth: AuthService;
  login: LoginService;
  credentials: Credentials;
  users: UsersRepository;
  clock: Clock;
}

/**
 * A signed-in user changing their password. Kept apart from the login service so that only this
 * function bundles the common-passwords list.
 */
export class PasswordService {
  constructor(private readonly deps: PasswordServiceDeps) {}

  /**
   * The caller's live session, then the policy (400 `weak_password`, before any attempt is spent
   * or bcrypt runs), then the current password, held to this session's own count of wrong ones
   * (lib/auth/credentials.ts: 5 in a row lock this session's checks for LOGIN_LOCKOUT_SECONDS; a
   * wrong one is 401 `invalid_credentials` and counts), never to the counters strangers can fill.
   * Then the new hash with a new session epoch in one conditional write, so every session of the
   * user ends, the caller's included, and so do the device tokens. The answer is a new session:
   * the login success shape. DynamoDB calls: 4 (the session, the session's count, the password
   * write, the new session's batch; docs/design.md).
   */
  async changePassword(accessToken: string, currentPassword: string, newPassword: string, caller: Caller): Promise<SignIn> {
    const standing = await this.deps.auth.authenticate(accessToken);
    const { user, sessionId, amr, expiresAt } = standing;
    // A domain that signs in through its IdP keeps its passwords there: none is set here.
    if (await this.deps.login.ssoEnforced(user.email)) {
      log.info('password_change_refused', { userId: user.id, sessionId, reason: 'sso_required', ...caller });
      throw ssoRequired(403);
    }
    const problem = passwordPolicyProblem(newPassword, { minLength: this.deps.config.passwordMinLength, email: user.email, currentPassword });
    if (problem) {
      log.info('password_change_refused', { userId: user.id, sessionId, reason: 'weak_password', ...caller });
      throw new ApiError('weak_password', problem);
    }
    await this.deps.credentials.currentPassword(standing, currentPassword, caller, { action: 'password_change', sessionEnds: true });
    const ring = await this.deps.keyRing.current();
    const now = this.deps.clock();
    const newHash = await bcryptHash(newPassword, this.deps.config.bcryptCost);
    const changed = await this.deps.users.replacePassword(user.id, user, newHash, now);
    if (!changed) {
      // Another change (or a global logout) won the race: this session has ended with the others.
      log.info('password_change_refused', { userId: user.id, sessionId, reason: 'session_ended', ...caller });
      throw bearerError('invalid_token', true);
    }
    // No session cap to apply: every other session has just ended. The new session keeps the
    // caller's `amr`: a second factor proven at its sign-in still stands, the password is proven
    // again. A session that owes a second factor (TOTP on, or the role requires it, and the session
    // was signed in without one) ends when the caller's would have: a password change never
    // extends a way around the second factor.
    const owesSecondFactor = this.deps.login.secondFactorDue(changed) !== undefined && !amr.includes('otp');
    const { signIn, sessionId: newSessionId } = await this.deps.login.openSession({ user: changed, ring, now }, caller, {
      cap: false,
      amr,
      endsBy: owesSecondFactor ? expiresAt : undefined,
    });
    countMetric(METRIC.passwordChanged);
    log.info('password_changed', { userId: user.id, sessionId: newSessionId, previousSessionId: sessionId, ...caller });
    return signIn;
  }
}

/** The password service over an app (one per app). */
export const passwordService = oncePer((app: App) => new PasswordService({ ...app, login: loginService(app), credentials: credentials(app) }));
