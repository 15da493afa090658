import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../lib/auth/auth-service.js';
import { loginService } from '../../lib/auth/login-service.js';
import { passwordService } from '../../lib/auth/password-service.js';
import { parseRefreshToken } from '../../lib/auth/tokens.js';
import { hashPassword } from '../../lib/auth/passwords.js';
import { TEST_BCRYPT_COST } from '../support/context.js';
import { mfaService } from '../../lib/mfa/mfa-service.js';
import { totpCode } from '../../lib/mfa/totp.js';
import type { ApiError } from '../../lib/platform/errors.js';
import { countCalls, createUser, testApp, uniqueEmail } from '../support/store.js';

/**
 * The DynamoDB round-trip budget per request, counted at the SDK boundary over the real
 * dynalite (every command the app's client sends, retries included). A change that adds a
 * call to a hot path fails here; the README lists what each call is.
 */
const BUDGET = {
  me: 1, refresh: 2, logoutLocal: 2, login: 6, loginRehash: 7, loginWithDevice: 4, listSessions: 2, endSession: 3, changePassword: 4,
  // Two-factor sign-in (README, "Two-factor sign-in")
  mfaSetup: 4, mfaActivate: 6, mfaVerify: 7, mfaVerifyWrong: 3, mfaRecoveryCodes: 3, mfaTurnOff: 3,
};

const caller = (ip: string): Caller => ({ requestId: 'req', sourceIp: ip, userAgent: 'vitest' });

/** The calls an action makes, and that it fails with `code` (or succeeds, without one). */
function measuring(counter: ReturnType<typeof countCalls>) {
  return async (action: () => Promise<unknown>, code?: string): Promise<string[]> => {
    counter.reset();
    const error = await action().then(
      () => undefined,
      (failure: { code?: string }) => failure,
    );
    expect(error?.code).toBe(code);
    return [...counter.calls];
  };
}

describe('DynamoDB round trips per request', () => {
  it('stays within budget on every path', async () => {
    // Prepare: and an app with an account cap of 3, so that a refusal by that cap is quick to reach
    const app = await testApp();
    const counter = countCalls(app);
    const user = await createUser(app);
    const capped = await createUser(app);
    const cappedApp = await testApp(undefined, { LOGIN_ACCOUNT_MAX_FAILURES: '3' });
    const cappedCounter = countCalls(cappedApp);
    const cappedUser = await createUser(cappedApp);
    const measure = async (action: () => Promise<unknown>) => {
      counter.reset();
      await action().catch(() => undefined);
      return [...counter.calls];
    };
    const login = (email: string, password: string, ip: string, device?: string) => loginService(app).login(email, password, caller(ip), device);

    // Act
    let pair = await login(user.email, user.password, '198.51.100.80');
    const device = pair.device_token;
    const loginSuccess = await measure(async () => (pair = await login(user.email, user.password, '198.51.100.80')));
    const loginWrongPassword = await measure(() => login(user.email, 'wrong-password', '198.51.100.81'));
    const loginUnknown = await measure(() => login(uniqueEmail('nobody'), 'wrong-password', '198.51.100.82'));
    for (let i = 0; i < 5; i++) await login(user.email, 'wrong-password', '198.51.100.83').catch(() => undefined);
    const loginLocked = await measure(() => login(user.email, user.password, '198.51.100.83'));
    const loginAfterFailures = await measure(() => login(user.email, user.password, '198.51.100.81'));
    const loginForeignDevice = await measure(() => login(capped.email, capped.password, '198.51.100.84', device));
    const withDevice = await measure(() => login(user.email, user.password, '198.51.100.85', device));
    const withDeviceWrong = await measure(() => login(user.email, 'wrong-password', '198.51.100.85', device));
    for (let i = 0; i < 4; i++) await login(user.email, 'wrong-password', '198.51.100.85', device).catch(() => undefined);
    const withDeviceLocked = await measure(() => login(user.email, user.password, '198.51.100.85', device));
    for (let i = 0; i < 3; i++) await loginService(cappedApp).login(cappedUser.email, 'wrong-password', caller(`198.51.100.${90 + i}`)).catch(() => undefined);
    cappedCounter.reset();
    await loginService(cappedApp).login(cappedUser.email, cappedUser.password, caller('198.51.100.95')).catch(() => undefined);
    const overAccountCap = [...cappedCounter.calls];
    // A hash made at another cost is replaced at sign-in: the path with one more write
    const oldCost = await createUser(app);
    await app.users.setPasswordHash(oldCost.id, await hashPassword(oldCost.password, TEST_BCRYPT_COST + 1), app.clock());
    const rehashStranger = await measure(() => login(oldCost.email, oldCost.password, '198.51.100.96'));
    await app.users.setPasswordHash(oldCost.id, await hashPassword(oldCost.password, TEST_BCRYPT_COST + 1), app.clock());
    const oldCostDevice = (await login(oldCost.email, oldCost.password, '198.51.100.97').catch(() => undefined))?.device_token;
    await app.users.rehashPassword(oldCost.id, (await app.users.get(oldCost.id))!, await hashPassword(oldCost.password, TEST_BCRYPT_COST + 1));
    const rehashDevice = await measure(() => login(oldCost.email, oldCost.password, '198.51.100.97', oldCostDevice));
    const me = await measure(() => app.auth.me(pair.token));
    const refresh = await measure(async () => (pair = { ...(await app.auth.refresh(pair.refresh_token, caller('198.51.100.80'))), device_token: device }));
    const logout = await measure(() => app.auth.logout(pair.token, 'local', caller('198.51.100.80')));

    // Assess
    expect(me).toEqual(['BatchGetItemCommand']);
    expect(refresh).toEqual(['BatchGetItemCommand', 'UpdateItemCommand']);
    expect(logout.length).toBeLessThanOrEqual(BUDGET.logoutLocal);
    expect(rehashStranger.length).toBeLessThanOrEqual(BUDGET.loginRehash);
    for (const path of [loginSuccess, loginWrongPassword, loginUnknown, loginLocked, loginAfterFailures, loginForeignDevice, overAccountCap]) {
      expect(path.length).toBeGreaterThan(0);
      expect(path.length).toBeLessThanOrEqual(BUDGET.login);
    }
    for (const path of [withDevice, withDeviceWrong, withDeviceLocked, rehashDevice]) {
      expect(path.length).toBeGreaterThan(0);
      expect(path.length).toBeLessThanOrEqual(BUDGET.loginWithDevice);
    }
    // The paths as the README lists them
    // (calls made in parallel may come in either order)
    expect([...loginSuccess].sort()).toEqual(['BatchGetItemCommand', 'BatchWriteItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    // A failure: the read, the three reservations, and the pair's and IP's attempts settled (no longer in flight), as many as a success
    expect(loginWrongPassword).toHaveLength(6);
    expect(loginUnknown).toHaveLength(6);
    expect(loginLocked).toEqual(['BatchGetItemCommand']);
    // The account's hour is reserved first: a spent one refuses without a write, before the pair and IP are touched
    expect(overAccountCap).toEqual(['BatchGetItemCommand', 'UpdateItemCommand']);
    expect(rehashStranger).toHaveLength(7);
    expect([...withDevice].sort()).toEqual(['BatchGetItemCommand', 'BatchWriteItemCommand', 'UpdateItemCommand']);
    expect(withDeviceWrong).toEqual(['BatchGetItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    expect(withDeviceLocked).toEqual(['BatchGetItemCommand']);
    expect(rehashDevice).toHaveLength(4);
    expect(me.length).toBe(BUDGET.me);
    expect(refresh.length).toBe(BUDGET.refresh);
  });

  it('keeps the session endpoints and the password change within budget', async () => {
    // Prepare: a user with three sessions; and an app with a session cap of 2
    const app = await testApp();
    const counter = countCalls(app);
    const user = await createUser(app);
    const login = () => loginService(app).login(user.email, user.password, caller('198.51.100.60'));
    const [first, second, third] = [await login(), await login(), await login()];
    const capped = await testApp(undefined, { MAX_SESSIONS_PER_USER: '2' });
    const cappedCounter = countCalls(capped);
    const cappedUser = await createUser(capped);
    const cappedLogin = () => loginService(capped).login(cappedUser.email, cappedUser.password, caller('198.51.100.61'));
    await cappedLogin();
    await cappedLogin();
    const measure = measuring(counter);
    const newPassword = 'a fresh and long passphrase';

    // Act
    const list = await measure(() => app.auth.listSessions(first.token, caller('198.51.100.60')));
    const end = await measure(() => app.auth.endSession(first.token, parseRefreshToken(second.refresh_token)!.sessionId, caller('198.51.100.60')));
    const endMalformed = await measure(() => app.auth.endSession(first.token, 'not-a-session', caller('198.51.100.60')), 'session_not_found');
    const wrongCurrent = await measure(() => passwordService(app).changePassword(third.token, 'not-the-password', newPassword, caller('198.51.100.62')), 'invalid_credentials');
    const weak = await measure(() => passwordService(app).changePassword(third.token, user.password, 'password1234', caller('198.51.100.62')), 'weak_password');
    const change = await measure(() => passwordService(app).changePassword(third.token, user.password, newPassword, caller('198.51.100.62')));
    cappedCounter.reset();
    await cappedLogin();
    const cappedLoginCalls = [...cappedCounter.calls];

    // Assess
    expect([...list].sort()).toEqual(['BatchGetItemCommand', 'QueryCommand']);
    // The session ended, then the device token handed out with it
    expect(end).toEqual(['BatchGetItemCommand', 'UpdateItemCommand', 'DeleteItemCommand']);
    expect(endMalformed).toEqual(['BatchGetItemCommand']);
    expect(weak).toEqual(['BatchGetItemCommand']);
    // The session; its own count of wrong current passwords
    expect(wrongCurrent).toEqual(['BatchGetItemCommand', 'UpdateItemCommand']);
    // ... then the new hash and epoch, and the new session's batch
    expect(change).toEqual(['BatchGetItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'BatchWriteItemCommand']);
    expect(change.length).toBeLessThanOrEqual(BUDGET.changePassword);
    // With MAX_SESSIONS_PER_USER: the login's own 6, a Query beside its batch, and one write per session it ends
    // (the session it ends takes its device token with it: a DeleteItem)
    expect([...cappedLoginCalls].sort()).toEqual(['BatchGetItemCommand', 'BatchWriteItemCommand', 'DeleteItemCommand', 'QueryCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    expect(list.length).toBeLessThanOrEqual(BUDGET.listSessions);
    expect(end.length).toBeLessThanOrEqual(BUDGET.endSession);
  });

  it('keeps the two-factor paths within budget', async () => {
    // Prepare: a signed-in user; an app that requires TOTP of admins
    const app = await testApp(undefined, { MFA_KEY: randomBytes(32).toString('base64url') });
    const counter = countCalls(app);
    const user = await createUser(app);
    const mfa = mfaService(app);
    const at = (ip: string) => caller(ip);
    const pair = await loginService(app).login(user.email, user.password, at('198.51.100.40'));
    const measure = measuring(counter);
    const nextCode = (secret: string) => {
      app.testClock.advance(30);
      return totpCode(secret, app.clock());
    };
    let secret = '';
    let codes: string[] = [];
    let mfaToken = '';
    let signIn: { token: string } = pair;
    const challenge = async () => {
      const refused = await loginService(app).login(user.email, user.password, at('198.51.100.41')).catch((error: ApiError) => error);
      return (refused as ApiError).fields.mfa_token as string;
    };

    // Act
    const setup = await measure(async () => (secret = (await mfa.setup({ accessToken: pair.token, currentPassword: user.password }, at('198.51.100.40'))).secret));
    const activate = await measure(async () => (codes = (await mfa.activate({ accessToken: pair.token }, nextCode(secret), at('198.51.100.40'))).recovery_codes));
    const loginChallenge = await measure(async () => (mfaToken = await challenge()));
    const verifyWrong = await measure(() => mfa.verify(mfaToken, { code: totpCode(secret, new Date(app.clock().getTime() + 300_000)) }, at('198.51.100.41')), 'invalid_mfa_code');
    const verify = await measure(async () => (signIn = await mfa.verify(mfaToken, { code: nextCode(secret) }, at('198.51.100.41'))));
    mfaToken = await challenge();
    const verifyRecovery = await measure(() => mfa.verify(mfaToken, { recoveryCode: codes[0]! }, at('198.51.100.41')));
    const recoveryCodes = await measure(() => mfa.replaceRecoveryCodes(signIn.token, nextCode(secret), at('198.51.100.41')));
    const turnOff = await measure(() => mfa.turnOff(signIn.token, nextCode(secret), at('198.51.100.41')));
    // An admin who must enrol at sign-in: setup and activate by the enrolment token
    const strict = await testApp(undefined, { MFA_KEY: randomBytes(32).toString('base64url'), MFA_REQUIRED_ROLES: 'admin' });
    const strictCounter = countCalls(strict);
    const admin = await createUser(strict, { role: 'admin' });
    const enrolment = ((await loginService(strict).login(admin.email, admin.password, at('198.51.100.42')).catch((error: ApiError) => error)) as ApiError).fields.mfa_token as string;
    strictCounter.reset();
    const adminSecret = (await mfaService(strict).setup({ mfaToken: enrolment }, at('198.51.100.42'))).secret;
    const enrolSetup = [...strictCounter.calls];
    strictCounter.reset();
    strict.testClock.advance(30);
    await mfaService(strict).activate({ mfaToken: enrolment }, totpCode(adminSecret, strict.clock()), at('198.51.100.42'));
    const enrolActivate = [...strictCounter.calls];

    // Assess
    // The session; its count of wrong current passwords reserved, then cleared; the pending secret
    expect(setup).toEqual(['BatchGetItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    // The session; the code's attempt on the account's count; the activation; the session and its device token carried over
    expect(activate).toEqual(['BatchGetItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    // The right password of a user with TOTP costs what a sign-in does: the token is written in the session's stead
    expect([...loginChallenge].sort()).toEqual(['BatchGetItemCommand', 'BatchWriteItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    // The token's attempt ‖ the user; then the code's attempt on the account's own count (a wrong code stays counted)
    expect([...verifyWrong].sort()).toEqual(['BatchGetItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    // ... then the step claimed (ending the count) ‖ the token spent ‖ the session's batch: 3 round trips
    expect([...verify].sort()).toEqual(['BatchGetItemCommand', 'BatchWriteItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    expect(verify.slice(0, 2).sort()).toEqual(['BatchGetItemCommand', 'UpdateItemCommand']);
    expect(verify.slice(2, 3)).toEqual(['UpdateItemCommand']);
    expect(verify.slice(3).sort()).toEqual(['BatchWriteItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    // A recovery code: the same calls (removed from the set in the claim's stead)
    expect([...verifyRecovery].sort()).toEqual([...verify].sort());
    // The session; the code's attempt on the account's count; the codes replaced with the step spent
    expect(recoveryCodes).toEqual(['BatchGetItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    // The session; the code's attempt on the account's count; TOTP removed with the step spent
    expect(turnOff).toEqual(['BatchGetItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    expect([...enrolSetup].sort()).toEqual(['BatchGetItemCommand', 'GetItemCommand', 'UpdateItemCommand']);
    // The token's attempt ‖ the user; the code's attempt on the account's count; the token spent; the activation; the new session
    expect([...enrolActivate].sort()).toEqual(['BatchGetItemCommand', 'BatchWriteItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    for (const [path, budget] of [
      [setup, BUDGET.mfaSetup], [enrolSetup, BUDGET.mfaSetup], [activate, BUDGET.mfaActivate], [enrolActivate, BUDGET.mfaActivate],
      [loginChallenge, BUDGET.login], [verifyRecovery, BUDGET.mfaVerify], [verify, BUDGET.mfaVerify], [verifyRecovery, BUDGET.mfaVerify], [verifyWrong, BUDGET.mfaVerifyWrong],
      [recoveryCodes, BUDGET.mfaRecoveryCodes], [turnOff, BUDGET.mfaTurnOff],
    ] as const) {
      expect(path.length).toBeGreaterThan(0);
      expect(path.length).toBeLessThanOrEqual(budget);
    }
  });
});
