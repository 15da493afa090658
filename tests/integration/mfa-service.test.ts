import { randomBytes } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, vi } from 'vitest';
import type { Caller } from '../../lib/auth/auth-service.js';
import { createApp } from '../../lib/app.js';
import { loginService } from '../../lib/auth/login-service.js';
import { passwordService } from '../../lib/auth/password-service.js';
import { mfaService } from '../../lib/mfa/mfa-service.js';
import { totpCode } from '../../lib/mfa/totp.js';
import type { ApiError } from '../../lib/platform/errors.js';
import { userKey } from '../../lib/store/users.js';
import { unlockAccount } from '../../lib/store/login-attempts.js';
import { clearCodeFailures } from '../../lib/store/mfa.js';
import { createUser, testApp } from '../support/store.js';
import { captureLog } from '../support/log-capture.js';

const caller: Caller = { requestId: 'req', sourceIp: '198.51.100.70', userAgent: 'vitest' };
const STEP_MS = 30_000;

/** The code an authenticator shows `steps` steps from the app's now. */
const codeAt = (secret: string, now: Date, steps: number) => totpCode(secret, new Date(now.getTime() + steps * STEP_MS));

async function failure(action: Promise<unknown>): Promise<ApiError> {
  return action.then(
    () => expect.fail('expected an ApiError'),
    (error: ApiError) => error,
  );
}

/** A user with TOTP active (set up and activated from a session), and how to sign in as them. */
async function enrolled(env: Record<string, string> = {}) {
  const app = await testApp(undefined, { MFA_KEY: randomBytes(32).toString('base64url'), ...env });
  const user = await createUser(app);
  const mfa = mfaService(app);
  const session = await loginService(app).login(user.email, user.password, caller);
  const { secret } = await mfa.setup({ accessToken: session.token, currentPassword: user.password }, caller);
  const { recovery_codes: recoveryCodes } = await mfa.activate({ accessToken: session.token }, codeAt(secret, app.clock(), 0), caller);
  const challenge = async () => ((await failure(loginService(app).login(user.email, user.password, caller))).fields.mfa_token as string);
  return { app, user, mfa, secret, recoveryCodes, session, challenge };
}

describe('two-factor sign-in rules, with an injected clock, against dynalite', () => {
  it('accepts the codes of one step either side of now, and none further', async () => {
    // Prepare
    const { app, mfa, secret, challenge } = await enrolled();
    app.testClock.advance(300);
    const now = app.clock();

    // Act
    const tooOld = await failure(mfa.verify(await challenge(), { code: codeAt(secret, now, -2) }, caller));
    const tooNew = await failure(mfa.verify(await challenge(), { code: codeAt(secret, now, 2) }, caller));
    const behind = await mfa.verify(await challenge(), { code: codeAt(secret, now, -1) }, caller);
    const current = await mfa.verify(await challenge(), { code: codeAt(secret, now, 0) }, caller);
    const ahead = await mfa.verify(await challenge(), { code: codeAt(secret, now, 1) }, caller);
    // A step accepted once is spent, and so is every earlier one
    const replayed = await failure(mfa.verify(await challenge(), { code: codeAt(secret, now, 0) }, caller));

    // Assess
    expect([tooOld.code, tooNew.code, replayed.code]).toEqual(['invalid_mfa_code', 'invalid_mfa_code', 'invalid_mfa_code']);
    for (const signIn of [behind, current, ahead]) expect(signIn.user.mfa_enabled).toBe(true);
  });

  it('ends an mfa_token after 300 s, and when the sessions end meanwhile (a password change, a global logout)', async () => {
    // Prepare
    const { app, user, mfa, secret, challenge } = await enrolled();
    const expiring = await challenge();
    const outlived = await challenge();

    // Act
    app.testClock.advance(301);
    const expired = await failure(mfa.verify(expiring, { code: codeAt(secret, app.clock(), 0) }, caller));
    const fresh = await challenge();
    await app.users.revokeAllSessions(user.id, app.clock());
    const afterLogout = await failure(mfa.verify(fresh, { code: codeAt(secret, app.clock(), 1) }, caller));

    // Assess
    expect(expired.code).toBe('invalid_mfa_token');
    expect(afterLogout.code).toBe('invalid_mfa_token');
    expect((await failure(mfa.verify(outlived, { code: codeAt(secret, app.clock(), 1) }, caller))).code).toBe('invalid_mfa_token');
    // Neither refusal spent the step: a fresh token takes it
    expect((await mfa.verify(await challenge(), { code: codeAt(secret, app.clock(), 1) }, caller)).user.id).toBe(user.id);
  });

  it('lets one mfa_token open one session, even when two right proofs race on it', async () => {
    // Prepare
    const { app, user, mfa, secret, recoveryCodes, challenge, session } = await enrolled();
    const sessionOf = async (accessToken: string) => (await app.tokens.verify(accessToken)).sid;
    const signedIn: string[] = [];

    for (let round = 0; round < 3; round++) {
      // Act: a right TOTP code and a right recovery code, at once, on one token
      app.testClock.advance(30);
      const token = await challenge();
      const results = await Promise.allSettled([
        mfa.verify(token, { code: codeAt(secret, app.clock(), 0) }, caller),
        mfa.verify(token, { recoveryCode: recoveryCodes[round]! }, caller),
      ]);

      // Assess: one sign-in; the other refused, the token being spent
      const outcomes = results.map((result) => (result.status === 'fulfilled' ? 'signed-in' : (result.reason as ApiError).code));
      expect(outcomes.sort()).toEqual(['invalid_mfa_token', 'signed-in']);
      signedIn.push(await sessionOf((results.find((result) => result.status === 'fulfilled') as PromiseFulfilledResult<{ token: string }>).value.token));
    }

    // Assess: the loser's session, written beside the spend, was ended: the live ones are the activating one and the winners'
    const live = await app.sessions.listLive((await app.users.get(user.id))!, app.clock(), { idleSeconds: 0, limit: Infinity, maxAgeSeconds: 86_400 });
    expect(live.map((listed) => listed.id).sort()).toEqual([await sessionOf(session.token), ...signedIn].sort());
  });

  it('refuses a disabled user, and a token of the other purpose', async () => {
    // Prepare
    const { app, user, mfa, secret, challenge } = await enrolled();
    const token = await challenge();

    // Act + Assess: a verify token is not for setup or activation
    expect((await failure(mfa.setup({ mfaToken: token }, caller))).code).toBe('invalid_mfa_token');
    expect((await failure(mfa.activate({ mfaToken: token }, codeAt(secret, app.clock(), 1), caller))).code).toBe('invalid_mfa_token');
    await app.users.setStatus(user.id, 'disabled', app.clock());
    expect((await failure(mfa.verify(token, { code: codeAt(secret, app.clock(), 1) }, caller))).code).toBe('invalid_mfa_token');
  });

  it('keeps no secret or recovery code in the tables: the secret sealed under the MFA key, the codes as MACs', async () => {
    // Prepare
    const { app, user, secret, recoveryCodes } = await enrolled();

    // Act
    const { Item } = await app.db.send(new GetCommand({ TableName: app.config.usersTable, Key: userKey(user.id) }));
    const dump = JSON.stringify(Item, (_key, value: unknown) => (value instanceof Set ? [...value] : value));

    // Assess
    expect(Item?.totp_secret).toMatch(/^v1\./);
    expect(dump).not.toContain(secret);
    for (const code of recoveryCodes) {
      expect(dump).not.toContain(code);
      expect(dump).not.toContain(code.replace(/-/g, ''));
    }
  });

  it('signs a user whose role must have TOTP in only through enrolment, and keeps it on for them', async () => {
    // Prepare
    const app = await testApp(undefined, { MFA_KEY: randomBytes(32).toString('base64url'), MFA_REQUIRED_ROLES: 'admin' });
    const admin = await createUser(app, { role: 'admin' });
    const mfa = mfaService(app);

    // Act
    const refused = await failure(loginService(app).login(admin.email, admin.password, caller));
    const enrolment = refused.fields.mfa_token as string;
    const { secret } = await mfa.setup({ mfaToken: enrolment }, caller);
    const wrong = await failure(mfa.activate({ mfaToken: enrolment }, codeAt(secret, app.clock(), 5), caller));
    const activated = await mfa.activate({ mfaToken: enrolment }, codeAt(secret, app.clock(), 0), caller);

    // Assess
    expect(refused.code).toBe('mfa_enrollment_required');
    expect(refused.fields.mfa_expires_in).toBe(300);
    expect(wrong.code).toBe('invalid_mfa_code');
    expect(activated.recovery_codes).toHaveLength(10);
    expect(activated.token).toBeDefined();
    expect((await app.tokens.verify(activated.token!)).amr).toEqual(['pwd', 'otp']);
    expect((await failure(mfa.turnOff(activated.token!, codeAt(secret, app.clock(), 1), caller))).code).toBe('mfa_required_by_policy');
  });

  it('holds codes only to counters strangers cannot fill: a spent hour and a locked pair refuse no code', async () => {
    // Prepare: a user with TOTP and a device token; strangers spend the account's hour and lock the owner's pair
    const { app, user, mfa, secret, challenge } = await enrolled({ LOGIN_ACCOUNT_MAX_FAILURES: '12' });
    const device = (await mfa.verify(await challenge(), { code: codeAt(secret, app.clock(), 1) }, caller)).device_token;
    for (let i = 0; i < 12; i++) await failure(loginService(app).login(user.email, `guess-${i}`, { ...caller, sourceIp: `203.0.113.${i % 3}` }));
    for (let i = 0; i < 5; i++) await failure(loginService(app).login(user.email, `guess-${i}`, caller));
    const strangerRefused = await failure(loginService(app).login(user.email, user.password, { ...caller, sourceIp: '203.0.113.99' }));

    // Act: the owner, with the password and the device token, from the locked address (a minute on: a code of a new step)
    app.testClock.advance(60);
    const challenges = [];
    for (let i = 0; i < 6; i++) challenges.push(await failure(loginService(app).login(user.email, user.password, caller, device)));
    const signIn = await mfa.verify(challenges[5]!.fields.mfa_token as string, { code: codeAt(secret, app.clock(), 0) }, caller);

    // Assess: the strangers' counters refuse the strangers' path only; six right passwords do not lock the device token
    expect(strangerRefused.code).toBe('too_many_attempts');
    expect(challenges.map((refusal) => refusal.code)).toEqual(Array(6).fill('mfa_required'));
    expect(signIn.user.id).toBe(user.id);
  });

  it('locks TOTP codes after MFA_MAX_FAILURES wrong in a row across tokens and addresses, for MFA_LOCKOUT_SECONDS doubling; recovery codes still work and end the lock', async () => {
    // Prepare
    const { app, user, mfa, secret, recoveryCodes, challenge } = await enrolled({ MFA_MAX_FAILURES: '4', MFA_LOCKOUT_SECONDS: '600' });
    const wrong = () => ({ code: codeAt(secret, app.clock(), 10) });
    const from = (ip: string): Caller => ({ ...caller, sourceIp: ip });
    app.testClock.advance(60);

    // Act: four wrong codes on two tokens from two addresses, a right password in between
    const logged = captureLog();
    const first = await challenge();
    const wrongs = [await failure(mfa.verify(first, wrong(), from('203.0.113.30'))), await failure(mfa.verify(first, wrong(), from('203.0.113.30')))];
    const second = await challenge();
    wrongs.push(await failure(mfa.verify(second, wrong(), from('203.0.113.31'))), await failure(mfa.verify(second, wrong(), from('203.0.113.31'))));
    const third = await challenge();
    const right = await failure(mfa.verify(third, { code: codeAt(secret, app.clock(), 0) }, from('203.0.113.32')));
    const stored = await app.users.get(user.id);

    // Assess: the fifth code, right though it is, is refused for the lock's length; the lock is counted
    expect(wrongs.map((error) => error.code)).toEqual(Array(4).fill('invalid_mfa_code'));
    expect(right.code).toBe('too_many_attempts');
    expect(Number(right.headers['Retry-After'])).toBe(600);
    expect(stored?.codeFailures).toMatchObject({ codes: 4, locks: 1 });
    // The lock is audited once, naming the account (and counted as SecondFactorLocked)
    const locks = logged().filter((line) => line.message === 'second_factor_locked');
    vi.restoreAllMocks();
    expect(locks).toEqual([expect.objectContaining({ level: 'WARN', userId: user.id, email: user.email, kind: 'code', lockedForSeconds: 600 })]);

    // Act: a recovery code during the lock signs in and ends it; then a right code works again
    const recovered = await mfa.verify(third, { recoveryCode: recoveryCodes[0]! }, from('203.0.113.32'));
    app.testClock.advance(60);
    const afterRecovery = await mfa.verify(await challenge(), { code: codeAt(secret, app.clock(), 0) }, caller);

    // Assess
    expect(recovered.recovery_codes_left).toBe(9);
    expect(afterRecovery.user.id).toBe(user.id);
    expect((await app.users.get(user.id))?.codeFailures).toMatchObject({ codes: 0, locks: 1 });

    // Act: the next lock lasts twice as long; once it has run out, codes are counted from one again
    const tokens = [await challenge(), await challenge()];
    const burst = [];
    for (let i = 0; i < 4; i++) burst.push(await failure(mfa.verify(tokens[i % 2]!, wrong(), caller)));
    const locked = await failure(mfa.verify(await challenge(), { code: codeAt(secret, app.clock(), 1) }, caller));
    app.testClock.advance(1201);
    const stale = (await app.users.get(user.id))?.codeFailures;
    const later = await mfa.verify(await challenge(), { code: codeAt(secret, app.clock(), 0) }, caller);

    // Assess
    expect(burst.map((error) => error.code)).toEqual(Array(4).fill('invalid_mfa_code'));
    expect(locked.code).toBe('too_many_attempts');
    expect(Number(locked.headers['Retry-After'])).toBe(1200);
    expect(stale).toMatchObject({ codes: 4, locks: 2 });
    expect(later.user.id).toBe(user.id);
  });

  it('does not let a right password reset the wrong-code count', async () => {
    // Prepare
    const { app, mfa, secret, challenge } = await enrolled({ MFA_MAX_FAILURES: '3' });
    const wrong = () => ({ code: codeAt(secret, app.clock(), 10) });

    // Act: a wrong code on each of three tokens, each earned with the right password
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await failure(mfa.verify(await challenge(), wrong(), caller))).code);
    const refused = await failure(mfa.verify(await challenge(), { code: codeAt(secret, app.clock(), 0) }, caller));

    // Assess
    expect(codes).toEqual(Array(3).fill('invalid_mfa_code'));
    expect(refused.code).toBe('too_many_attempts');
  });

  it('locks recovery codes after MFA_MAX_FAILURES wrong ones, until an operator\'s unlock', async () => {
    // Prepare
    const { app, user, mfa, recoveryCodes, challenge } = await enrolled({ MFA_MAX_FAILURES: '2' });
    const token = await challenge();

    // Act
    const wrong = [];
    for (let i = 0; i < 2; i++) wrong.push((await failure(mfa.verify(token, { recoveryCode: 'aaaa-bbbb-cccc' }, caller))).code);
    const refused = await failure(mfa.verify(token, { recoveryCode: recoveryCodes[0]! }, caller));
    app.testClock.advance(86_400 * 3);
    const stillRefused = await failure(mfa.verify(await challenge(), { recoveryCode: recoveryCodes[0]! }, caller));
    await Promise.all([unlockAccount(app.db, app.config, user.email, user.id), clearCodeFailures(app.db, app.config.usersTable, user.id)]);
    const unlocked = await mfa.verify(await challenge(), { recoveryCode: recoveryCodes[0]! }, caller);

    // Assess
    expect(wrong).toEqual(['invalid_mfa_code', 'invalid_mfa_code']);
    expect(refused.code).toBe('too_many_attempts');
    expect(stillRefused.code).toBe('too_many_attempts');
    expect(unlocked.recovery_codes_left).toBe(9);
  });

  it('counts a code of a sign-in that presented a device token on that token too, and gives a refused code\'s attempts back', async () => {
    // Prepare
    const { app, user, mfa, secret, challenge } = await enrolled({ MFA_MAX_FAILURES: '20' });
    const device = (await mfa.verify(await challenge(), { code: codeAt(secret, app.clock(), 1) }, caller)).device_token;
    const withDevice = async () => (await failure(loginService(app).login(user.email, user.password, caller, device))).fields.mfa_token as string;
    const wrong = () => ({ code: codeAt(secret, app.clock(), 10) });

    // Act: five wrong codes over two sign-ins with the device token lock it; the next code is refused by it
    const first = await withDevice();
    for (let i = 0; i < 3; i++) await failure(mfa.verify(first, wrong(), caller));
    const second = await withDevice();
    for (let i = 0; i < 2; i++) await failure(mfa.verify(second, wrong(), caller));
    const before = await app.users.get(user.id);
    const refused = await failure(mfa.verify(second, { code: codeAt(secret, app.clock(), 0) }, caller));
    const after = await app.users.get(user.id);
    const third = await failure(mfa.verify(second, { code: codeAt(secret, app.clock(), 0) }, caller));

    // Assess: 429 by the device; the refused code moved no count (the account's, the token's attempts)
    expect(refused.code).toBe('too_many_attempts');
    expect(after?.codeFailures.codes).toBe(before?.codeFailures.codes);
    expect(third.code).toBe('too_many_attempts');
  });

  it('never lets a password change extend a session that owes a second factor', async () => {
    // Prepare: an admin signed in before MFA_REQUIRED_ROLES listed admins
    const lax = await testApp(undefined, { MFA_KEY: randomBytes(32).toString('base64url') });
    const admin = await createUser(lax, { role: 'admin' });
    const old = await loginService(lax).login(admin.email, admin.password, caller);
    lax.testClock.advance(1800);
    const strict = createApp({ ...lax.config, mfa: { ...lax.config.mfa, requiredRoles: ['admin'] } }, lax.testClock.now);

    // Act
    const changed = await passwordService(strict).changePassword(old.token, admin.password, 'a long enough new passphrase', caller);

    // Assess: a working session, but it ends when the old one would have, not 30 days from now
    expect(changed.refresh_expires_in).toBe(old.refresh_expires_in - 1800);
    expect((await failure(loginService(strict).login(admin.email, 'a long enough new passphrase', caller))).code).toBe('mfa_enrollment_required');
  });
});
