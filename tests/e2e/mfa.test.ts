import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { auditLine, runScript } from '../support/cli.js';
import { Authenticator } from '../support/authenticator.js';
import { apiEnv, apiUrl } from '../support/context.js';
import { call, expectError, requestFrom, type ApiResponse, type SourcedReply } from '../support/http.js';
import { createUser } from '../support/store.js';
import { e2eApp } from '../support/http.js';
import { userItem } from '../support/counters.js';

const amrOf = (token: string) => decodeJwt(token).amr;
const auth = (token: string) => ({ authorization: `Bearer ${token}` });

async function newUser(role: 'admin' | 'user' = 'user') {
  return createUser(e2eApp(), { role });
}

async function signIn(email: string, password: string): Promise<ApiResponse> {
  return call('POST', '/login', { body: { email, password } });
}

/** Sign in (no TOTP yet), set TOTP up and activate it from that session. */
async function enrolled(role: 'admin' | 'user' = 'user') {
  const user = await newUser(role);
  const session = await signIn(user.email, user.password);
  expect(session.status, session.text).toBe(200);
  const setup = await call('POST', '/mfa/totp/setup', { token: session.body.token, body: { current_password: user.password } });
  expect(setup.status, setup.text).toBe(200);
  const app = new Authenticator(setup.body.secret);
  const activated = await call('POST', '/mfa/totp/activate', { token: session.body.token, body: { code: await app.next() } });
  expect(activated.status, activated.text).toBe(200);
  return { user, app, token: session.body.token as string, recoveryCodes: activated.body.recovery_codes as string[] };
}

/** The right password of a user with TOTP: the challenge's mfa_token. */
async function challenged(email: string, password: string): Promise<string> {
  const response = await signIn(email, password);
  expect(response.status, response.text).toBe(401);
  expect(response.body).toEqual({ success: false, error: { code: 'mfa_required', message: expect.any(String) }, mfa_token: expect.stringMatching(/^mt_/), mfa_expires_in: 300 });
  return response.body.mfa_token;
}

describe('two-factor sign-in (TOTP) over HTTP', () => {
  it('enrols from a session, then signs in with password and code; the token says both, the authorizer passes it on', async () => {
    // Prepare: a signed-in user, and a second session that activation will end
    const user = await newUser();
    const session = await signIn(user.email, user.password);
    const other = await signIn(user.email, user.password);
    expect(amrOf(session.body.token)).toEqual(['pwd']);
    expect((await call('GET', '/me', { token: session.body.token })).body.user.mfa_enabled).toBe(false);

    // Act: set up twice (the second replaces the first), activate with a code of the second
    const first = await call('POST', '/mfa/totp/setup', { token: session.body.token, body: { current_password: user.password } });
    const setup = await call('POST', '/mfa/totp/setup', { token: session.body.token, body: { current_password: user.password } });
    const stale = new Authenticator(first.body.secret);
    const app = new Authenticator(setup.body.secret);

    // Assess: the secret and the URL an app scans
    expect(setup.status).toBe(200);
    expect(setup.body.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(setup.body.secret).not.toBe(first.body.secret);
    expect(setup.body.otpauth_url).toBe(
      `otpauth://totp/VPN%20Enterprise:${user.email}?secret=${setup.body.secret}&issuer=VPN%20Enterprise&algorithm=SHA1&digits=6&period=30`,
    );
    expectError(await call('POST', '/mfa/totp/activate', { token: session.body.token, body: { code: await stale.next() } }), 401, 'invalid_mfa_code');
    expectError(await call('POST', '/mfa/totp/activate', { token: session.body.token, body: { code: app.wrong() } }), 401, 'invalid_mfa_code');
    const activated = await call('POST', '/mfa/totp/activate', { token: session.body.token, body: { code: await app.next() } });
    expect(activated.status, activated.text).toBe(200);
    expect(Object.keys(activated.body).sort()).toEqual(['recovery_codes', 'success']);
    expect(new Set(activated.body.recovery_codes).size).toBe(10);
    // Every other session ended; the caller's stands, and now shows TOTP on
    expectError(await call('GET', '/me', { token: other.body.token }), 401, 'invalid_token');
    expectError(await call('POST', '/refresh', { body: { refresh_token: other.body.refresh_token } }), 401, 'invalid_refresh_token');
    expect((await call('GET', '/me', { token: session.body.token })).body.user.mfa_enabled).toBe(true);
    expectError(await call('POST', '/mfa/totp/setup', { token: session.body.token, body: { current_password: user.password } }), 409, 'mfa_already_enabled');

    // Act: a wrong password says nothing of a second factor; the right one is a challenge
    const wrong = await signIn(user.email, 'not the password');
    expectError(wrong, 401, 'invalid_credentials');
    const mfaToken = await challenged(user.email, user.password);
    const verified = await call('POST', '/mfa/verify', { body: { mfa_token: mfaToken, code: await app.next() } });

    // Assess: exactly a sign-in's answer, signed in with both factors, kept by a refresh
    expect(verified.status, verified.text).toBe(200);
    expect(verified.body).toMatchObject({ success: true, token_type: 'Bearer', user: { id: user.id, mfa_enabled: true }, device_token: expect.stringMatching(/^dt_/) });
    expect(verified.body.recovery_codes_left).toBeUndefined();
    expect(amrOf(verified.body.token)).toEqual(['pwd', 'otp']);
    const refreshed = await call('POST', '/refresh', { body: { refresh_token: verified.body.refresh_token } });
    expect(amrOf(refreshed.body.token)).toEqual(['pwd', 'otp']);
    const example = await fetch(`${apiUrl()}/v1/example/protected`, { headers: auth(refreshed.body.token) });
    expect(((await example.json()) as { caller: { amr: string } }).caller.amr).toBe('pwd,otp');
    // The token is spent; a device token does not skip the second factor
    expectError(await call('POST', '/mfa/verify', { body: { mfa_token: mfaToken, code: await app.next() } }), 401, 'invalid_mfa_token');
    const withDevice = await call('POST', '/login', { body: { email: user.email, password: user.password, device_token: verified.body.device_token } });
    expect({ status: withDevice.status, code: withDevice.body.error.code }).toEqual({ status: 401, code: 'mfa_required' });
  });

  it('refuses a code accepted once (replay), and ends an mfa_token at its 5th wrong code, counting them for the account, not the address', async () => {
    // Prepare
    const { user, app } = await enrolled();
    const ip = '127.0.31.1';
    const verify = (body: Record<string, unknown>) => requestFrom(ip, 'POST', '/mfa/verify', { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const signInFrom = () => requestFrom(ip, 'POST', '/login', { body: JSON.stringify({ email: user.email, password: user.password }), headers: { 'content-type': 'application/json' } });
    const code = await app.next();
    const first = (await signInFrom()).body.mfa_token;
    expect((await verify({ mfa_token: first, code })).status).toBe(200);

    // Act: the same code again, inside its window
    const second = (await signInFrom()).body.mfa_token;
    const replayed = await verify({ mfa_token: second, code });

    // Assess
    expect({ status: replayed.status, code: replayed.body.error.code }).toEqual({ status: 401, code: 'invalid_mfa_code' });

    // Act: four more wrong codes (five in all on this token), then the right one
    const wrongs: SourcedReply[] = [];
    for (let i = 0; i < 4; i++) wrongs.push(await verify({ mfa_token: second, code: app.wrong() }));
    const lateCode = await app.next();
    const late = await verify({ mfa_token: second, code: lateCode });

    // Assess: every wrong code 401 invalid_mfa_code; then the token is over, like an unknown one
    expect(wrongs.map((reply) => reply.body.error.code)).toEqual(Array(4).fill('invalid_mfa_code'));
    expect({ status: late.status, code: late.body.error.code }).toEqual({ status: 401, code: 'invalid_mfa_token' });
    const unknown = await verify({ mfa_token: `mt_${'A'.repeat(64)}`, code: '123456' });
    expect({ status: unknown.status, code: unknown.body.error.code }).toEqual({ status: 401, code: 'invalid_mfa_token' });
    // Five wrong codes (the replay among them) are the account's count (MFA_MAX_FAILURES=10), not
    // this address's: a sign-in from here is still a challenge, and a right code signs in and ends the count
    expect((await userItem(e2eApp(), user.id))?.code_failures).toBe(5);
    const next = await signInFrom();
    expect({ status: next.status, code: next.body.error.code }).toEqual({ status: 401, code: 'mfa_required' });
    expect((await verify({ mfa_token: next.body.mfa_token, code: lateCode })).status).toBe(200);
    expect((await userItem(e2eApp(), user.id))?.code_failures).toBeUndefined();
  });

  it('takes a recovery code once, says how many are left, and makes new ones only from a session signed in with a code', async () => {
    // Prepare
    const { user, app, token: passwordSession, recoveryCodes } = await enrolled();
    const [code, another] = recoveryCodes;

    // Act
    const used = await call('POST', '/mfa/verify', { body: { mfa_token: await challenged(user.email, user.password), recovery_code: code!.toUpperCase() } });
    const again = await call('POST', '/mfa/verify', { body: { mfa_token: await challenged(user.email, user.password), recovery_code: code } });

    // Assess
    expect(used.status, used.text).toBe(200);
    expect(used.body.recovery_codes_left).toBe(9);
    expect(amrOf(used.body.token)).toEqual(['pwd', 'otp']);
    expectError(again, 401, 'invalid_mfa_code');

    // Act: new codes, with a current code, from the session the recovery code opened; not from a password-only one
    expectError(await call('POST', '/mfa/recovery-codes', { token: passwordSession, body: { code: app.wrong() } }), 403, 'otp_session_required');
    const renewed = await call('POST', '/mfa/recovery-codes', { token: used.body.token, body: { code: await app.next() } });

    // Assess: ten new ones; the old ones are dead, the new ones work
    expect(renewed.status, renewed.text).toBe(200);
    expect(renewed.body.recovery_codes).toHaveLength(10);
    expect(renewed.body.recovery_codes).not.toContain(another);
    expectError(await call('POST', '/mfa/verify', { body: { mfa_token: await challenged(user.email, user.password), recovery_code: another } }), 401, 'invalid_mfa_code');
    const fresh = await call('POST', '/mfa/verify', { body: { mfa_token: await challenged(user.email, user.password), recovery_code: renewed.body.recovery_codes[0] } });
    expect(fresh.body.recovery_codes_left).toBe(9);
  });

  it('turns TOTP off with a current code only; then the password alone signs in again', async () => {
    // Prepare
    const { user, app, token } = await enrolled();

    // Act + Assess
    expectError(await call('DELETE', '/mfa/totp', { token, body: { code: app.wrong() } }), 401, 'invalid_mfa_code');
    expectError(await call('DELETE', '/mfa/totp', { token, body: { code: 'abcdef' } }), 400, 'invalid_request');
    const off = await call('DELETE', '/mfa/totp', { token, body: { code: await app.next() } });
    expect(off.status, off.text).toBe(200);
    expectError(await call('DELETE', '/mfa/totp', { token, body: { code: await app.next() } }), 409, 'mfa_not_enabled');
    const plain = await signIn(user.email, user.password);
    expect(plain.status).toBe(200);
    expect(plain.body.user.mfa_enabled).toBe(false);
    expect(amrOf(plain.body.token)).toEqual(['pwd']);
  });

  it('never refuses a code for a locked account+IP pair, at verify and at turning off: strangers can fill the pair', async () => {
    // Prepare: five wrong passwords from one address lock the account's pair there; a challenge from another
    const { user, app, token } = await enrolled();
    const locked = '127.0.32.1';
    const json = { 'content-type': 'application/json' };
    for (let i = 0; i < 5; i++) await requestFrom(locked, 'POST', '/login', { body: JSON.stringify({ email: user.email, password: `guess-${i}` }), headers: json });
    const refused = await requestFrom(locked, 'POST', '/login', { body: JSON.stringify({ email: user.email, password: user.password }), headers: json });
    const fresh = (await requestFrom('127.0.32.2', 'POST', '/login', { body: JSON.stringify({ email: user.email, password: user.password }), headers: json })).body.mfa_token as string;

    // Act: right codes, from the locked address
    const verify = await requestFrom(locked, 'POST', '/mfa/verify', { body: JSON.stringify({ mfa_token: fresh, code: await app.next() }), headers: json });
    const off = await requestFrom(locked, 'DELETE', '/mfa/totp', { body: JSON.stringify({ code: await app.next() }), headers: { ...json, ...auth(token) } });

    // Assess: the pair refuses the password's path only
    expect(refused.status).toBe(429);
    expect(verify.status).toBe(200);
    expect(off.status).toBe(200);
  });

  it('answers malformed requests with 400 and missing credentials with 401, never a 500', async () => {
    const { user, token } = await enrolled();
    const mfaToken = await challenged(user.email, user.password);
    expectError(await call('POST', '/mfa/verify', { body: { mfa_token: mfaToken } }), 400, 'invalid_request');
    expectError(await call('POST', '/mfa/verify', { body: { mfa_token: mfaToken, code: '123456', recovery_code: 'abcd-efgh-jkmn' } }), 400, 'invalid_request');
    expectError(await call('POST', '/mfa/verify', { body: { mfa_token: mfaToken, code: 123456 } }), 400, 'invalid_request');
    expectError(await call('POST', '/mfa/verify', { body: { mfa_token: mfaToken, recovery_code: 'not a code!' } }), 400, 'invalid_request');
    expectError(await call('POST', '/mfa/verify', { body: { code: '123456' } }), 400, 'invalid_request');
    expectError(await call('POST', '/mfa/verify', { body: { mfa_token: 'mt_garbage', code: '123456' } }), 401, 'invalid_mfa_token');
    expectError(await call('POST', '/mfa/totp/setup', {}), 401, 'invalid_token');
    expectError(await call('POST', '/mfa/totp/setup', { body: { mfa_token: 42 } }), 400, 'invalid_request');
    expectError(await call('POST', '/mfa/totp/activate', { body: { mfa_token: 'mt_x', code: '123456' } }), 401, 'invalid_mfa_token');
    // A verify token is not an enrolment token
    expectError(await call('POST', '/mfa/totp/setup', { body: { mfa_token: mfaToken } }), 401, 'invalid_mfa_token');
    expectError(await call('POST', '/mfa/recovery-codes', {}), 401, 'invalid_token');
    // A session's setup takes its current password; new recovery codes, a current code
    expectError(await call('POST', '/mfa/totp/setup', { token }), 400, 'invalid_request');
    expectError(await call('POST', '/mfa/totp/setup', { token, body: { current_password: 42 } }), 400, 'invalid_request');
    expectError(await call('POST', '/mfa/recovery-codes', { token }), 400, 'invalid_request');
    expectError(await call('POST', '/mfa/recovery-codes', { token, body: { code: 'abcdef' } }), 400, 'invalid_request');
    expectError(await call('DELETE', '/mfa/totp', { body: { code: '123456' } }), 401, 'invalid_token');
  });

  it('lets exactly one of 20 racing verifies of one code win, and exactly one of 20 racing activations', async () => {
    // Prepare: 20 tokens of one user, and one code
    const { user, app } = await enrolled();
    // One after another: at once, sign-ins of one account from one address would queue for its pair's 5 slots.
    const tokens: string[] = [];
    for (let i = 0; i < 20; i++) tokens.push(await challenged(user.email, user.password));
    const code = await app.next();

    // Act
    const replies = await Promise.all(tokens.map((mfaToken) => call('POST', '/mfa/verify', { body: { mfa_token: mfaToken, code } })));

    // Assess
    // (each code is held to the account's count of wrong codes: at most MFA_MAX_FAILURES=10 in flight, the others 429)
    expect(replies.filter((reply) => reply.status === 200)).toHaveLength(1);
    for (const reply of replies.filter((candidate) => candidate.status !== 200)) expect(['401 invalid_mfa_code', '429 too_many_attempts']).toContain(`${reply.status} ${reply.body.error.code}`);

    // Prepare: another user with a pending secret
    const fresh = await newUser();
    const session = await signIn(fresh.email, fresh.password);
    const setup = await call('POST', '/mfa/totp/setup', { token: session.body.token, body: { current_password: fresh.password } });
    const activation = await new Authenticator(setup.body.secret).next();

    // Act
    const activations = await Promise.all(Array.from({ length: 20 }, () => call('POST', '/mfa/totp/activate', { token: session.body.token, body: { code: activation } })));

    // Assess: one set of recovery codes; the others are told TOTP is on, or (past the account's count of
    // codes in flight, MFA_MAX_FAILURES) to try again later
    expect(activations.filter((reply) => reply.status === 200)).toHaveLength(1);
    const others = activations.filter((reply) => reply.status !== 200).map((reply) => `${reply.status} ${reply.body.error.code}`);
    expect(others).toContain('409 mfa_already_enabled');
    for (const other of others) expect(['409 mfa_already_enabled', '429 too_many_attempts']).toContain(other);
  });

  it('holds under 20 requests at once: one token\'s five attempts, one recovery code, one code turning TOTP off', async () => {
    // Prepare
    const { user, app, token, recoveryCodes } = await enrolled();
    const outcomes = (replies: Array<{ status: number; body: any }>) => replies.map((reply) => (reply.status === 200 ? '200' : `${reply.status} ${reply.body.error.code}`)).sort();
    const oneToken = await challenged(user.email, user.password);
    const tokens: string[] = [];
    for (let i = 0; i < 20; i++) tokens.push(await challenged(user.email, user.password));

    // Act: 20 wrong codes at once on one token; one recovery code on 20 tokens at once
    const wrongs = await Promise.all(Array.from({ length: 20 }, () => call('POST', '/mfa/verify', { body: { mfa_token: oneToken, code: app.wrong() } })));
    const recoveries = await Promise.all(
      tokens.map((mfaToken) => requestFrom('127.0.31.3', 'POST', '/mfa/verify', { body: JSON.stringify({ mfa_token: mfaToken, recovery_code: recoveryCodes[0] }), headers: { 'content-type': 'application/json' } })),
    );

    // Assess: exactly five attempts were taken; the recovery code worked once
    expect(outcomes(wrongs)).toEqual([...Array(5).fill('401 invalid_mfa_code'), ...Array(15).fill('401 invalid_mfa_token')]);
    expect(outcomes(recoveries).filter((outcome) => outcome === '200')).toHaveLength(1);
    for (const outcome of outcomes(recoveries).filter((candidate) => candidate !== '200')) expect(['401 invalid_mfa_code', '429 too_many_attempts']).toContain(outcome);

    // Act: one code turning TOTP off, 20 times at once (held to the account's count of wrong codes, whatever the address)
    const code = await app.next();
    const offs = await Promise.all(
      Array.from({ length: 20 }, () => requestFrom('127.0.31.2', 'DELETE', '/mfa/totp', { body: JSON.stringify({ code }), headers: { 'content-type': 'application/json', ...auth(token) } })),
    );

    // Assess: off once; the others were refused, never a 5xx
    expect(offs.filter((reply) => reply.status === 200)).toHaveLength(1);
    for (const reply of offs.filter((candidate) => candidate.status !== 200)) expect(['401 invalid_mfa_code', '409 mfa_not_enabled', '429 too_many_attempts']).toContain(`${reply.status} ${reply.body.error.code}`);
    expect((await call('GET', '/me', { token })).body.user.mfa_enabled).toBe(false);
  });

  it('mfa-reset (users CLI) removes TOTP and ends every session; list shows who has TOTP', async () => {
    // Prepare
    const { user, token } = await enrolled();
    const cli = (args: string[]) => runScript('scripts/users.ts', args, { env: apiEnv() });
    const before = await cli(['list']);
    expect(before.stdout).toMatch(new RegExp(`${user.email.replace(/\./g, '\\.')}\\s+"Test User"\\s+user\\s+active\\s+totp\\s`));

    // Act
    const reset = await cli(['mfa-reset', '--email', user.email]);

    // Assess
    expect(reset.code, reset.stderr).toBe(0);
    expect(auditLine(reset.stderr, 'mfa_reset')).toMatchObject({ userId: user.id, had: 'totp' });
    expectError(await call('GET', '/me', { token }), 401, 'invalid_token');
    const plain = await signIn(user.email, user.password);
    expect(plain.status).toBe(200);
    expect(plain.body.user.mfa_enabled).toBe(false);
    expect((await cli(['list'])).stdout).toMatch(new RegExp(`${user.email.replace(/\./g, '\\.')}\\s+"Test User"\\s+user\\s+active\\s+no-totp\\s`));
    expect((await cli(['mfa-reset', '--email', `nobody-${user.email}`])).code).toBe(1);
  });
});
