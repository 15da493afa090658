import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { apiUrl } from '../support/context.js';
import { call, e2eApp, expectCommonHeaders, expectError, requestFrom, type SourcedReply } from '../support/http.js';
import { stageApi } from '../support/stage-api.js';
import { createUser } from '../support/store.js';

const NEW_PASSWORD = 'a fresh and long passphrase';
const sidOf = (token: string) => decodeJwt(token).sid as string;

/** A sign-in over HTTP with a chosen User-Agent (and source address, for the races). */
async function signIn(email: string, password: string, userAgent: string, options: { ip?: string; baseUrl?: string } = {}): Promise<SourcedReply> {
  const reply = await requestFrom(options.ip ?? '127.0.0.1', 'POST', '/login', {
    body: JSON.stringify({ email, password }),
    headers: { 'content-type': 'application/json', 'user-agent': userAgent },
    baseUrl: options.baseUrl,
  });
  expect(reply.status, reply.text).toBe(200);
  return reply;
}

function listFrom(token: string, baseUrl?: string): Promise<SourcedReply> {
  return requestFrom('127.0.0.1', 'GET', '/sessions', { headers: { authorization: `Bearer ${token}` }, baseUrl });
}

function changePassword(token: string, current: string, next: string, ip = '127.0.0.1'): Promise<SourcedReply> {
  return requestFrom(ip, 'POST', '/password', {
    body: JSON.stringify({ current_password: current, new_password: next }),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'user-agent': 'Settings/1.0' },
  });
}

async function protectedRoute(token: string): Promise<number> {
  return (await fetch(`${apiUrl()}/v1/example/protected`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(20_000) })).status;
}

describe('GET /v1/auth/sessions', () => {
  it('lists the sessions of several sign-ins from different user agents, newest first, the caller marked current', async () => {
    // Prepare
    const user = await createUser(e2eApp());
    const laptop = await signIn(user.email, user.password, 'Laptop/1.0 (VPN client)');
    const phone = await signIn(user.email, user.password, `Phone/2.0 ${'x'.repeat(300)}`);
    const other = await createUser(e2eApp());
    await signIn(other.email, other.password, 'Other/1.0');

    // Act
    const response = await call('GET', '/sessions', { token: laptop.body.token });

    // Assess
    expect(response.status).toBe(200);
    expectCommonHeaders(response);
    const sessions = response.body.sessions as Array<Record<string, unknown>>;
    expect(sessions.map((session) => session.id)).toEqual([sidOf(phone.body.token), sidOf(laptop.body.token)]);
    expect(sessions[0]).toMatchObject({ user_agent: `Phone/2.0 ${'x'.repeat(246)}`, ip: '127.0.0.1', current: false });
    expect(sessions[1]).toMatchObject({ user_agent: 'Laptop/1.0 (VPN client)', ip: '127.0.0.1', current: true });
    expect(Date.parse(sessions[1]!.created_at as string)).toBeLessThanOrEqual(Date.parse(sessions[0]!.created_at as string));
    expect(sessions[1]!.last_used_at).toBe(sessions[1]!.created_at);
  });

  it('moves last_used_at with a refresh', async () => {
    const user = await createUser(e2eApp());
    const first = await signIn(user.email, user.password, 'Laptop/1.0');
    await new Promise((resolveWait) => setTimeout(resolveWait, 20));
    const refreshed = await call('POST', '/refresh', { body: { refresh_token: first.body.refresh_token } });
    const [session] = (await call('GET', '/sessions', { token: refreshed.body.token })).body.sessions;
    expect(Date.parse(session.last_used_at)).toBeGreaterThan(Date.parse(session.created_at));
  });

  it('needs a live session, like /auth/me', async () => {
    expectError(await call('GET', '/sessions'), 401, 'invalid_token');
    expectError(await call('GET', '/sessions', { token: 'not-a-jwt' }), 401, 'invalid_token');
  });
});

describe('DELETE /v1/auth/sessions/{id}', () => {
  it('ends that session at once: /auth/me and the authorizer refuse its token, its refresh token is dead', async () => {
    // Prepare
    const user = await createUser(e2eApp());
    const laptop = await signIn(user.email, user.password, 'Laptop/1.0');
    const lost = await signIn(user.email, user.password, 'Lost phone/1.0');
    expect(await protectedRoute(lost.body.token)).toBe(200);

    // Act
    const response = await call('DELETE', `/sessions/${sidOf(lost.body.token)}`, { token: laptop.body.token });

    // Assess
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ success: true });
    expectCommonHeaders(response);
    expectError(await call('GET', '/me', { token: lost.body.token }), 401, 'invalid_token');
    expect(await protectedRoute(lost.body.token)).toBe(403);
    expectError(await call('POST', '/refresh', { body: { refresh_token: lost.body.refresh_token } }), 401, 'invalid_refresh_token');
    expect((await call('GET', '/me', { token: laptop.body.token })).status).toBe(200);
    expect((await call('GET', '/sessions', { token: laptop.body.token })).body.sessions.map((session: { id: string }) => session.id)).toEqual([sidOf(laptop.body.token)]);
    // Ended already: 200 again
    expect((await call('DELETE', `/sessions/${sidOf(lost.body.token)}`, { token: laptop.body.token })).status).toBe(200);
  });

  it("answers the same 404 session_not_found for an unknown id, a malformed one and another user's", async () => {
    // Prepare
    const user = await createUser(e2eApp());
    const mine = await signIn(user.email, user.password, 'Laptop/1.0');
    const stranger = await createUser(e2eApp());
    const theirs = await signIn(stranger.email, stranger.password, 'Other/1.0');

    // Act
    const replies = await Promise.all(
      ['AAAAAAAAAAAAAAAAAAAAAA', 'not%20a%20session', 'x'.repeat(300), sidOf(theirs.body.token)].map((id) => call('DELETE', `/sessions/${id}`, { token: mine.body.token })),
    );

    // Assess
    for (const reply of replies) expectError(reply, 404, 'session_not_found');
    expect(new Set(replies.map((reply) => reply.text)).size).toBe(1);
    expect((await call('GET', '/me', { token: theirs.body.token })).status).toBe(200);
  });

  it("ends the caller's own session as a local logout", async () => {
    const user = await createUser(e2eApp());
    const pair = await signIn(user.email, user.password, 'Laptop/1.0');
    expect((await call('DELETE', `/sessions/${sidOf(pair.body.token)}`, { token: pair.body.token })).status).toBe(200);
    expectError(await call('GET', '/me', { token: pair.body.token }), 401, 'invalid_token');
  });

  it('holds under 20 requests at once: one session ended 20 times, and 20 sessions ended at once', async () => {
    // Prepare
    const user = await createUser(e2eApp());
    const keeper = await signIn(user.email, user.password, 'Keeper/1.0');
    // (From 20 addresses: 20 sign-ins of one account from one address would meet its pair limit.)
    const others = await Promise.all(Array.from({ length: 20 }, (_, i) => signIn(user.email, user.password, `Device/${i}`, { ip: `127.0.5.${i + 1}` })));
    const target = sidOf(others[0]!.body.token);

    // Act
    const same = await Promise.all(Array.from({ length: 20 }, () => call('DELETE', `/sessions/${target}`, { token: keeper.body.token })));
    const each = await Promise.all(others.slice(1).map((other) => call('DELETE', `/sessions/${sidOf(other.body.token)}`, { token: keeper.body.token })));

    // Assess
    expect(same.map((reply) => reply.status)).toEqual(Array(20).fill(200));
    expect(each.map((reply) => reply.status)).toEqual(Array(19).fill(200));
    expect((await call('GET', '/sessions', { token: keeper.body.token })).body.sessions.map((session: { id: string }) => session.id)).toEqual([sidOf(keeper.body.token)]);
    for (const other of others) expectError(await call('GET', '/me', { token: other.body.token }), 401, 'invalid_token');
  });
});

describe('POST /v1/auth/password', () => {
  it('answers a working pair in the login shape and ends every other session, the old one included', async () => {
    // Prepare
    const user = await createUser(e2eApp());
    const laptop = await signIn(user.email, user.password, 'Laptop/1.0');
    const phone = await signIn(user.email, user.password, 'Phone/2.0');

    // Act
    const response = await call('POST', '/password', { token: laptop.body.token, body: { current_password: user.password, new_password: NEW_PASSWORD } });

    // Assess
    expect(response.status, response.text).toBe(200);
    expectCommonHeaders(response);
    expect(Object.keys(response.body).sort()).toEqual(['device_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'success', 'token', 'token_type', 'user']);
    expect((await call('GET', '/me', { token: response.body.token })).status).toBe(200);
    expect((await call('POST', '/refresh', { body: { refresh_token: response.body.refresh_token } })).status).toBe(200);
    for (const old of [laptop, phone]) {
      expectError(await call('GET', '/me', { token: old.body.token }), 401, 'invalid_token');
      expect(await protectedRoute(old.body.token)).toBe(403);
      expectError(await call('POST', '/refresh', { body: { refresh_token: old.body.refresh_token } }), 401, 'invalid_refresh_token');
    }
    expectError(await call('POST', '/login', { body: { email: user.email, password: user.password } }), 401, 'invalid_credentials');
    expect((await call('POST', '/login', { body: { email: user.email, password: NEW_PASSWORD } })).status).toBe(200);
  });

  it('refuses a wrong current password as invalid_credentials, counted for that session: 429 once locked, no other session or sign-in held to it', async () => {
    // Prepare
    const user = await createUser(e2eApp());
    const pair = await signIn(user.email, user.password, 'Laptop/1.0', { ip: '127.0.3.1' });
    const phone = await signIn(user.email, user.password, 'Phone/2.0', { ip: '127.0.3.1' });

    // Act
    const wrong = [];
    for (let i = 0; i < 5; i++) wrong.push(await changePassword(pair.body.token, `wrong-${i}`, NEW_PASSWORD, '127.0.3.1'));
    const locked = await changePassword(pair.body.token, user.password, NEW_PASSWORD, '127.0.3.1');

    // Assess
    for (const reply of wrong) expect({ status: reply.status, code: reply.body.error.code }).toEqual({ status: 401, code: 'invalid_credentials' });
    expect({ status: locked.status, code: locked.body.error.code }).toEqual({ status: 429, code: 'too_many_attempts' });
    // LOGIN_LOCKOUT_SECONDS (900)
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(890);
    // The count is the session's own: a sign-in from that address is not held to it, nor is another session
    const signInHere = await requestFrom('127.0.3.1', 'POST', '/login', { body: JSON.stringify({ email: user.email, password: user.password }), headers: { 'content-type': 'application/json' } });
    expect(signInHere.status, signInHere.text).toBe(200);
    const fromPhone = await changePassword(phone.body.token, user.password, NEW_PASSWORD, '127.0.3.1');
    expect(fromPhone.status, fromPhone.text).toBe(200);
  });

  it('refuses weak passwords with 400 weak_password naming the rule, and bad input with a clear 4xx', async () => {
    // Prepare
    const user = await createUser(e2eApp());
    const pair = await signIn(user.email, user.password, 'Laptop/1.0');
    const localPart = user.email.split('@')[0]!;
    const attempt = (body: unknown) => call('POST', '/password', { token: pair.body.token, body });

    // Act + Assess
    for (const [next, rule] of [
      ['eleven-char', /at least 12 characters/],
      ['é'.repeat(37), /at most 72 bytes/],
      [user.password, /must differ from the current/],
      [`my ${localPart.toUpperCase()} passphrase`, /email/],
      ['Password1234', /too common/],
    ] as const) {
      const reply = await attempt({ current_password: user.password, new_password: next });
      expectError(reply, 400, 'weak_password');
      expect(reply.body.error.message).toMatch(rule);
    }
    expectError(await attempt({ current_password: user.password }), 400, 'invalid_request');
    expectError(await attempt({ current_password: 5, new_password: NEW_PASSWORD }), 400, 'invalid_request');
    expectError(await call('POST', '/password', { token: pair.body.token, rawBody: 'current_password=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
    expectError(await call('POST', '/password', { body: { current_password: user.password, new_password: NEW_PASSWORD } }), 401, 'invalid_token');
    // None of that spent an attempt or changed anything
    expect((await attempt({ current_password: user.password, new_password: NEW_PASSWORD })).status).toBe(200);
  });

  it('lets exactly one of 20 simultaneous changes win; the old password is dead, the winner works', async () => {
    // Prepare
    const user = await createUser(e2eApp());
    const pair = await signIn(user.email, user.password, 'Laptop/1.0', { ip: '127.0.3.2' });
    const candidates = Array.from({ length: 20 }, (_, i) => `${NEW_PASSWORD} number ${i}`);

    // Act
    const replies = await Promise.all(candidates.map((next) => changePassword(pair.body.token, user.password, next, '127.0.3.2')));

    // Assess
    const statuses = replies.map((reply) => reply.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    for (const reply of replies.filter((candidate) => candidate.status !== 200)) {
      expect(['invalid_token', 'too_many_attempts']).toContain(reply.body.error.code);
    }
    const winner = candidates[statuses.indexOf(200)]!;
    expectError(await call('POST', '/login', { body: { email: user.email, password: user.password } }), 401, 'invalid_credentials');
    expect((await call('POST', '/login', { body: { email: user.email, password: winner } })).status).toBe(200);
    expect((await call('GET', '/me', { token: replies[statuses.indexOf(200)]!.body.token })).status).toBe(200);
  });

  it('counts 20 simultaneous wrong current passwords against the session: at most LOGIN_MAX_FAILURES get 401', async () => {
    const user = await createUser(e2eApp());
    const pair = await signIn(user.email, user.password, 'Laptop/1.0', { ip: '127.0.3.3' });
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => changePassword(pair.body.token, `wrong-${i}`, NEW_PASSWORD, '127.0.3.3')));
    const codes = replies.map((reply) => reply.body.error.code as string);
    expect(codes.filter((code) => code === 'invalid_credentials').length).toBeLessThanOrEqual(5);
    expect(codes.every((code) => code === 'invalid_credentials' || code === 'too_many_attempts')).toBe(true);
    expect((await call('GET', '/me', { token: pair.body.token })).status).toBe(200);
    // Not the address's: a sign-in from there gets in
    expect((await signIn(user.email, user.password, 'Laptop/1.0', { ip: '127.0.3.3' })).status).toBe(200);
  });
});

/**
 * The idle timeout and the session cap, on an API of their own: SESSION_IDLE_SECONDS=3,
 * MAX_SESSIONS_PER_USER=2.
 */
describe('idle timeout and session cap, over HTTP', () => {
  const api = stageApi('sessions', { SESSION_IDLE_SECONDS: '3', MAX_SESSIONS_PER_USER: '2' });
  const sessionsApp = () => api.app();

  it('ends a session not refreshed for SESSION_IDLE_SECONDS: refresh refused, off the list, its access token refused', async () => {
    // Prepare: two sessions; one is refreshed after 2 s, the other never
    const user = await createUser(sessionsApp());
    const idle = await signIn(user.email, user.password, 'Idle/1.0', { baseUrl: api.url });
    const active = await signIn(user.email, user.password, 'Active/1.0', { baseUrl: api.url });
    await new Promise((resolveWait) => setTimeout(resolveWait, 2000));
    const refresh = (token: string) => requestFrom('127.0.0.1', 'POST', '/refresh', { body: JSON.stringify({ refresh_token: token }), headers: { 'content-type': 'application/json' }, baseUrl: api.url });
    const kept = await refresh(active.body.refresh_token);
    expect(kept.status).toBe(200);
    await new Promise((resolveWait) => setTimeout(resolveWait, 1200));

    // Act
    const refused = await refresh(idle.body.refresh_token);
    const listed = await listFrom(kept.body.token, api.url);
    const me = await requestFrom('127.0.0.1', 'GET', '/me', { headers: { authorization: `Bearer ${idle.body.token}` }, baseUrl: api.url });

    // Assess
    expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status: 401, code: 'invalid_refresh_token' });
    expect(listed.body.sessions.map((session: { id: string }) => session.id)).toEqual([sidOf(active.body.token)]);
    expect({ status: me.status, code: me.body.error.code }).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('refuses an idle session at every endpoint that authenticates it, the authorizer included; a fresh session is served', async () => {
    // Prepare: a session left idle past SESSION_IDLE_SECONDS (3 s)
    const user = await createUser(sessionsApp());
    const idle = (await signIn(user.email, user.password, 'Idle/1.0', { baseUrl: api.url })).body.token as string;
    await new Promise((resolveWait) => setTimeout(resolveWait, 3200));
    const send = (token: string, method: string, path: string, body?: unknown) =>
      requestFrom('127.0.0.1', method, path, {
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        baseUrl: api.url,
      });
    const endpoints: Array<[string, string, unknown?]> = [
      ['GET', '/me'],
      ['GET', '/sessions'],
      ['DELETE', `/sessions/${sidOf(idle)}`],
      ['POST', '/password', { current_password: user.password, new_password: NEW_PASSWORD }],
      ['POST', '/mfa/totp/setup', { current_password: user.password }],
      ['POST', '/mfa/totp/activate', { code: '123456' }],
      ['POST', '/mfa/recovery-codes', { code: '123456' }],
      ['DELETE', '/mfa/totp', { code: '123456' }],
      ['POST', '/logout', { scope: 'global' }],
    ];

    // Act
    const refused = [];
    for (const [method, path, body] of endpoints) refused.push(await send(idle, method, path, body));
    const protectedIdle = await fetch(`${api.url}/v1/example/protected`, { headers: { authorization: `Bearer ${idle}` }, signal: AbortSignal.timeout(20_000) });
    // A fresh session of the same user, used at once (well inside its own 3 s)
    const fresh = (await signIn(user.email, user.password, 'Fresh/1.0', { baseUrl: api.url })).body.token as string;
    const [protectedFresh, ...served] = await Promise.all([
      fetch(`${api.url}/v1/example/protected`, { headers: { authorization: `Bearer ${fresh}` }, signal: AbortSignal.timeout(20_000) }),
      send(fresh, 'GET', '/me'),
      send(fresh, 'GET', '/sessions'),
      send(fresh, 'POST', '/mfa/totp/setup', { current_password: user.password }),
    ]);

    // Assess
    expect(refused.map((reply, i) => `${endpoints[i]![0]} ${endpoints[i]![1]} ${reply.status} ${reply.body?.error?.code}`)).toEqual(
      endpoints.map(([method, path]) => `${method} ${path} 401 invalid_token`),
    );
    expect(protectedIdle.status).toBe(403);
    expect(served.map((reply) => reply.status)).toEqual([200, 200, 200]);
    expect(served[1]!.body.sessions.map((session: { id: string }) => session.id)).toEqual([sidOf(fresh)]);
    expect(protectedFresh.status).toBe(200);
  });

  it('keeps MAX_SESSIONS_PER_USER=2 by ending the least recently used; after 20 sign-ins at once the next one trims to 2', async () => {
    // Prepare
    const user = await createUser(sessionsApp());
    const first = await signIn(user.email, user.password, 'First/1.0', { baseUrl: api.url });
    const second = await signIn(user.email, user.password, 'Second/1.0', { baseUrl: api.url });

    // Act
    const third = await signIn(user.email, user.password, 'Third/1.0', { baseUrl: api.url });

    // Assess: the first, least recently used, has ended
    const me = (token: string) => requestFrom('127.0.0.1', 'GET', '/me', { headers: { authorization: `Bearer ${token}` }, baseUrl: api.url });
    expect((await me(first.body.token)).status).toBe(401);
    expect((await me(second.body.token)).status).toBe(200);
    expect((await listFrom(third.body.token, api.url)).body.sessions.map((session: { id: string }) => session.id)).toEqual([sidOf(third.body.token), sidOf(second.body.token)]);

    // Act: 20 at once (each may miss the others in the index), then one more
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => signIn(user.email, user.password, `Burst/${i}`, { ip: `127.0.4.${i + 1}`, baseUrl: api.url })));
    const last = await signIn(user.email, user.password, 'Last/1.0', { baseUrl: api.url });

    // Assess
    expect(burst.every((reply) => reply.status === 200)).toBe(true);
    const listed = (await listFrom(last.body.token, api.url)).body.sessions as Array<{ id: string; current: boolean }>;
    expect(listed.length).toBeLessThanOrEqual(2);
    expect(listed.find((session) => session.current)?.id).toBe(sidOf(last.body.token));
  });
});
