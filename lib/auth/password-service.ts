import type { App } from '../app.js';
import type { AuthService, Caller } from './auth-service.js';
import type { Config } from '../platform/config.js';
import { ApiError, bearerError } from '../platform/errors.js';
import { log } from '../platform/log.js';
import { METRIC, countMetric } from '../platform/metrics.js';
import { oncePer } from '../platform/memo.js';
import type { LoginAttempts } from '../store/login-attempts.js';
import type { UsersRepository } from '../store/users.js';
import { loginService, type LoginService, type SignIn } from './login-service.js';
import { passwordPolicyProblem } from './password-policy.js';
import { bcryptHash } from './passwords.js';

export interface PasswordServiceDeps {
  config: Pick<Config, 'bcryptCost' | 'passwordMinLength'>;
  auth: AuthService;
  login: LoginService;
  users: UsersRepository;
  attempts: LoginAttempts;
}

/**
 * A signed-in user changing their password. Kept apart from the login service so that only this
 * function bundles the common-passwords list.
 */
export class PasswordService {
  constructor(private readonly deps: PasswordServiceDeps) {}

  /**
   * The caller's live session, then the policy (400 `weak_password`, before any attempt is spent
   * or bcrypt runs), then the current password checked exactly as a sign-in checks it (the same
   * limits, 429 once locked; a wrong one is 401 `invalid_credentials` and counts), then the new
   * hash with a new session epoch in one conditional write, so every session of the user ends,
   * the caller's included, and so do the device tokens. The answer is a new session: the login
   * success shape. The limits are the account's (the account+IP pair, the account's hour), not
   * the IP's window, which is for strangers. DynamoDB calls: at most 6 (the session, the attempts
   * read, 2 reservations, the password write, the new session's batch; docs/design.md); the
   * session cap has nothing to end, so its Query is not made.
   */
  async changePassword(accessToken: string, currentPassword: string, newPassword: string, caller: Caller): Promise<SignIn> {
    const { user, sessionId, amr, expiresAt } = await this.deps.auth.authenticate(accessToken);
    const problem = passwordPolicyProblem(newPassword, { minLength: this.deps.config.passwordMinLength, email: user.email, currentPassword });
    if (problem) {
      log.info('password_change_refused', { userId: user.id, sessionId, reason: 'weak_password', ...caller });
      throw new ApiError('weak_password', problem);
    }
    let verified;
    try {
      verified = await this.deps.login.verify(user.email, currentPassword, caller, { scope: { ip: false }, sessionEpoch: user.sessionEpoch });
    } catch (error) {
      if (error instanceof ApiError && error.status < 500) {
        const reason = error.code === 'invalid_credentials' ? 'bad_password' : error.code === 'too_many_attempts' ? 'locked' : 'session_ended';
        log.info('password_change_refused', { userId: user.id, sessionId, reason, ...caller });
      }
      if (error instanceof ApiError && error.code === 'invalid_credentials') throw new ApiError('invalid_credentials', 'The current password is incorrect.');
      throw error;
    }
    const newHash = await bcryptHash(newPassword, this.deps.config.bcryptCost);
    const changed = verified.user.id === user.id ? await this.deps.users.replacePassword(user.id, verified.user, newHash, verified.now) : undefined;
    if (!changed) {
      // Another change (or a global logout) won the race: this session has ended with the others.
      await this.deps.attempts.giveBackAll(verified.reservation!);
      log.info('password_change_refused', { userId: user.id, sessionId, reason: 'session_ended', ...caller });
      throw bearerError('invalid_token', true);
    }
    // No session cap to apply: every other session has just ended. The new session keeps the
    // caller's `amr`: a second factor proven at its sign-in still stands, the password is proven
    // again. A session that owes a second factor (TOTP on, or the role requires it, and the session
    // was signed in without one) ends when the caller's would have: a password change never
    // extends a way around the second factor.
    const owesSecondFactor = this.deps.login.secondFactorDue(changed) !== undefined && !amr.includes('otp');
    const { signIn, sessionId: newSessionId } = await this.deps.login.openSession({ ...verified, user: changed }, caller, {
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
export const passwordService = oncePer((app: App) => new PasswordService({ config: app.config, auth: app.auth, login: loginService(app), users: app.users, attempts: app.attempts }));
