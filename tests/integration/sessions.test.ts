import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SESSIONS_BY_USER_INDEX, tableNames } from '../../infra/tables.js';
import type { Caller } from '../../lib/auth/auth-service.js';
import { loginService } from '../../lib/auth/login-service.js';
import { passwordService } from '../../lib/auth/password-service.js';
import { formatRefreshToken, hashRefreshSecret, issueRefreshSecret, parseRefreshToken, rotationKeysOf } from '../../lib/auth/tokens.js';
import { newSessionId } from '../../lib/platform/ids.js';
import { ensureTables } from '../../scripts/local-stack.js';
import { dynamoEndpoint } from '../support/context.js';
import { createUser, testApp } from '../support/store.js';

const caller = (userAgent: string, ip = '198.51.100.7'): Caller => ({ requestId: `req-${userAgent}`, sourceIp: ip, userAgent });
const sessionOf = (pair: { refresh_token: string }) => parseRefreshToken(pair.refresh_token)!.sessionId;
const NEW_PASSWORD = 'a fresh and long passphrase';

async function signedIn(env: Record<string, string> = {}) {
  const app = await testApp(undefined, env);
  const user = await createUser(app);
  const login = (agent: string, ip?: string) => loginService(app).login(user.email, user.password, caller(agent, ip));
  return { app, user, login };
}

describe('listing sessions', () => {
  it("shows the caller's live sessions newest first, with where each came from and which is current", async () => {
    // Prepare: three sign-ins a minute apart, one of another user, one ended
    const { app, login } = await signedIn();
    const laptop = await login('Laptop/1.0', '198.51.100.1');
    app.testClock.advance(60);
    const phone = await login('Phone/2.0', '198.51.100.2');
    app.testClock.advance(60);
    const ended = await login('Tablet/3.0', '198.51.100.3');
    await app.auth.logout(ended.token, 'local', caller('Tablet/3.0'));
    const stranger = await createUser(app);
    await loginService(app).login(stranger.email, stranger.password, caller('Other/1.0'));

    // Act
    const sessions = await app.auth.listSessions(phone.token, caller('Phone/2.0'));

    // Assess
    expect(sessions).toEqual([
      { id: sessionOf(phone), created_at: '2026-01-15T10:31:00.000Z', last_used_at: '2026-01-15T10:31:00.000Z', ip: '198.51.100.2', user_agent: 'Phone/2.0', amr: ['pwd'], idp: null, current: true },
      { id: sessionOf(laptop), created_at: '2026-01-15T10:30:00.000Z', last_used_at: '2026-01-15T10:30:00.000Z', ip: '198.51.100.1', user_agent: 'Laptop/1.0', amr: ['pwd'], idp: null, current: false },
    ]);
  });

  it('moves last_used_at with every refresh, in the rotation write', async () => {
    // Prepare
    const { app, login } = await signedIn();
    const pair = await login('Laptop/1.0');
    app.testClock.advance(300);

    // Act
    await app.auth.refresh(pair.refresh_token, caller('Laptop/1.0'));

    // Assess
    const [session] = await app.auth.listSessions(pair.token, caller('Laptop/1.0'));
    expect(session).toMatchObject({ created_at: '2026-01-15T10:30:00.000Z', last_used_at: '2026-01-15T10:35:00.000Z' });
  });

  it('leaves out expired sessions and those of an older epoch (a global logout), and shows at most 100', async () => {
    // Prepare: 101 sessions of one user written directly, one of them expired
    const { app, user, login } = await signedIn();
    const now = app.clock();
    for (let i = 0; i < 101; i++) {
      await app.sessions.create({
        id: newSessionId(),
        userId: user.id,
        refreshHash: 'x',
        rotationKid: 'k1',
        userEpoch: 0,
        createdAt: new Date(now.getTime() - (i + 1) * 1000).toISOString(),
        expiresAt: Math.floor(now.getTime() / 1000) + (i === 0 ? 0 : 3600),
      });
    }
    const pair = await login('Laptop/1.0');

    // Act
    const listed = await app.auth.listSessions(pair.token, caller('Laptop/1.0'));

    // Assess
    expect(listed).toHaveLength(100);
    expect(listed[0]!.current).toBe(true);
    expect(listed.map((session) => session.created_at)).toEqual([...listed.map((session) => session.created_at)].sort().reverse());
    expect(listed.some((session) => session.created_at === new Date(now.getTime() - 1000).toISOString())).toBe(false);

    // Act: a global logout ends them all; the next sign-in is alone
    await app.auth.logout(pair.token, 'global', caller('Laptop/1.0'));
    const fresh = await login('Laptop/1.0');
    expect((await app.auth.listSessions(fresh.token, caller('Laptop/1.0'))).map((session) => session.id)).toEqual([sessionOf(fresh)]);
  });
});

describe('ending one session', () => {
  it('ends it at once: its access token is refused and its refresh token is dead; the others stand', async () => {
    // Prepare
    const { app, login } = await signedIn();
    const laptop = await login('Laptop/1.0');
    const phone = await login('Phone/2.0');

    // Act
    await app.auth.endSession(laptop.token, sessionOf(phone), caller('Laptop/1.0'));

    // Assess
    await expect(app.auth.me(phone.token)).rejects.toMatchObject({ code: 'invalid_token' });
    await expect(app.auth.authenticate(phone.token)).rejects.toMatchObject({ code: 'invalid_token' });
    await expect(app.auth.refresh(phone.refresh_token, caller('Phone/2.0'))).rejects.toMatchObject({ code: 'invalid_refresh_token' });
    await expect(app.auth.me(laptop.token)).resolves.toMatchObject({ email: expect.any(String) });
    expect((await app.auth.listSessions(laptop.token, caller('Laptop/1.0'))).map((session) => session.id)).toEqual([sessionOf(laptop)]);
  });

  it("answers one 404 for an unknown id, a malformed one and another user's; 200 again for one already ended", async () => {
    // Prepare
    const { app, login } = await signedIn();
    const mine = await login('Laptop/1.0');
    const other = await login('Phone/2.0');
    const stranger = await createUser(app);
    const theirs = await loginService(app).login(stranger.email, stranger.password, caller('Other/1.0'));

    // Act + Assess
    for (const id of [newSessionId(), 'not-a-session', '', `${sessionOf(theirs)}x`, sessionOf(theirs)]) {
      await expect(app.auth.endSession(mine.token, id, caller('Laptop/1.0')), id).rejects.toMatchObject({ code: 'session_not_found', status: 404, message: 'No such session.' });
    }
    await expect(app.auth.me(theirs.token)).resolves.toBeDefined();
    await app.auth.endSession(mine.token, sessionOf(other), caller('Laptop/1.0'));
    await expect(app.auth.endSession(mine.token, sessionOf(other), caller('Laptop/1.0'))).resolves.toBeUndefined();
  });

  it("may end the caller's own session, as a local logout", async () => {
    const { app, login } = await signedIn();
    const pair = await login('Laptop/1.0');
    await app.auth.endSession(pair.token, sessionOf(pair), caller('Laptop/1.0'));
    await expect(app.auth.me(pair.token)).rejects.toMatchObject({ code: 'invalid_token' });
    await expect(app.auth.refresh(pair.refresh_token, caller('Laptop/1.0'))).rejects.toMatchObject({ code: 'invalid_refresh_token' });
  });
});

describe('the idle timeout', () => {
  it('ends a session not refreshed for SESSION_IDLE_SECONDS: no refresh, off the list, its access token refused', async () => {
    // Prepare
    const { app, login } = await signedIn({ SESSION_IDLE_SECONDS: '600' });
    const idle = await login('Laptop/1.0');
    const active = await login('Phone/2.0');
    app.testClock.advance(500);
    const refreshed = await app.auth.refresh(active.refresh_token, caller('Phone/2.0'));
    app.testClock.advance(100);

    // Act + Assess: 600 s since the sign-in, never refreshed
    await expect(app.auth.refresh(idle.refresh_token, caller('Laptop/1.0'))).rejects.toMatchObject({ code: 'invalid_refresh_token' });
    expect((await app.auth.listSessions(refreshed.token, caller('Phone/2.0'))).map((session) => session.id)).toEqual([sessionOf(active)]);
    await expect(app.auth.me(idle.token)).rejects.toMatchObject({ code: 'invalid_token', status: 401 });
    await expect(app.auth.me(refreshed.token)).resolves.toBeDefined();
    // Counted from the last refresh: 599 s since it
    app.testClock.advance(499);
    await expect(app.auth.refresh(refreshed.refresh_token, caller('Phone/2.0'))).resolves.toMatchObject({ token_type: 'Bearer' });
  });

  it('refuses an idle session wherever its access token is checked, with the same call count', async () => {
    // Prepare
    const { app, login } = await signedIn({ SESSION_IDLE_SECONDS: '600' });
    const idle = await login('Laptop/1.0');
    app.testClock.advance(600);
    const fresh = await login('Phone/2.0');

    // Act + Assess: the one check (authenticate) and the global logout's own
    await expect(app.auth.authenticate(idle.token)).rejects.toMatchObject({ code: 'invalid_token', status: 401 });
    await expect(app.auth.listSessions(idle.token, caller('Laptop/1.0'))).rejects.toMatchObject({ code: 'invalid_token' });
    await expect(app.auth.endSession(idle.token, sessionOf(fresh), caller('Laptop/1.0'))).rejects.toMatchObject({ code: 'invalid_token' });
    await expect(passwordService(app).changePassword(idle.token, 'whatever it was', NEW_PASSWORD, caller('Laptop/1.0'))).rejects.toMatchObject({ code: 'invalid_token' });
    await expect(app.auth.logout(idle.token, 'global', caller('Laptop/1.0'))).rejects.toMatchObject({ code: 'invalid_token' });
    await expect(app.auth.me(fresh.token)).resolves.toBeDefined();
    // A local logout stays idempotent for an ended session
    await expect(app.auth.logout(idle.token, 'local', caller('Laptop/1.0'))).resolves.toBeUndefined();
  });

  it('never ends a session for idleness when SESSION_IDLE_SECONDS is 0', async () => {
    const { app, login } = await signedIn({ SESSION_IDLE_SECONDS: '0' });
    const pair = await login('Laptop/1.0');
    app.testClock.advance(20 * 86_400);
    await expect(app.auth.refresh(pair.refresh_token, caller('Laptop/1.0'))).resolves.toMatchObject({ token_type: 'Bearer' });
  });
});

describe('the session cap', () => {
  it('ends the least recently used sessions beyond MAX_SESSIONS_PER_USER at sign-in', async () => {
    // Prepare: two sessions; the older one refreshed last
    const { app, login } = await signedIn({ MAX_SESSIONS_PER_USER: '2' });
    const first = await login('Laptop/1.0');
    app.testClock.advance(10);
    const second = await login('Phone/2.0');
    app.testClock.advance(10);
    const firstAgain = await app.auth.refresh(first.refresh_token, caller('Laptop/1.0'));
    app.testClock.advance(10);

    // Act
    const third = await login('Tablet/3.0');

    // Assess: the phone, least recently used, has ended
    await expect(app.auth.refresh(second.refresh_token, caller('Phone/2.0'))).rejects.toMatchObject({ code: 'invalid_refresh_token' });
    await expect(app.auth.me(second.token)).rejects.toMatchObject({ code: 'invalid_token' });
    expect((await app.auth.listSessions(third.token, caller('Tablet/3.0'))).map((session) => session.id)).toEqual([sessionOf(third), sessionOf(first)]);
    await expect(app.auth.me(firstAgain.token)).resolves.toBeDefined();
  });
});

describe('changing the password', () => {
  it('answers a new session in the login shape and ends every other one, device tokens too', async () => {
    // Prepare
    const { app, user, login } = await signedIn();
    const laptop = await login('Laptop/1.0');
    const phone = await login('Phone/2.0');

    // Act
    const changed = await passwordService(app).changePassword(laptop.token, user.password, NEW_PASSWORD, caller('Laptop/1.0'));

    // Assess
    expect(Object.keys(changed).sort()).toEqual(['device_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token', 'token_type', 'user']);
    await expect(app.auth.me(changed.token)).resolves.toMatchObject({ id: user.id });
    for (const old of [laptop, phone]) {
      await expect(app.auth.me(old.token)).rejects.toMatchObject({ code: 'invalid_token' });
      await expect(app.auth.refresh(old.refresh_token, caller('x'))).rejects.toMatchObject({ code: 'invalid_refresh_token' });
    }
    await expect(loginService(app).login(user.email, user.password, caller('x', '198.51.100.90'))).rejects.toMatchObject({ code: 'invalid_credentials' });
    // The old device token has ended: it is no token at all (the stranger's limits apply), the new one works
    await expect(loginService(app).login(user.email, NEW_PASSWORD, caller('x', '198.51.100.91'), laptop.device_token)).resolves.not.toMatchObject({ device_token: laptop.device_token });
    await expect(loginService(app).login(user.email, NEW_PASSWORD, caller('x', '198.51.100.92'), changed.device_token)).resolves.toMatchObject({ device_token: changed.device_token });
    const listed = await app.auth.listSessions(changed.token, caller('Laptop/1.0'));
    expect(listed.find((session) => session.current)).toMatchObject({ id: sessionOf(changed), user_agent: 'Laptop/1.0' });
    expect(listed.map((session) => session.id)).not.toContain(sessionOf(laptop));
  });

  it('refuses a wrong current password as invalid_credentials, counted on the session alone: it locks after LOGIN_MAX_FAILURES, nothing else does', async () => {
    // Prepare: two sessions of one user, from one address
    const { app, user, login } = await signedIn();
    const pair = await login('Laptop/1.0');
    const other = await login('Phone/2.0');
    const change = (token: string, current: string) => passwordService(app).changePassword(token, current, NEW_PASSWORD, caller('Laptop/1.0'));

    // Act + Assess: five wrong lock this session's checks, even with the right password now
    for (let i = 0; i < 5; i++) {
      await expect(change(pair.token, 'not-the-password')).rejects.toMatchObject({ code: 'invalid_credentials', status: 401, message: 'The current password is incorrect.' });
    }
    await expect(change(pair.token, user.password)).rejects.toMatchObject({ code: 'too_many_attempts', status: 429, headers: { 'Retry-After': '900' } });
    // Neither a sign-in from that address nor the user's other session is held to it
    await expect(loginService(app).login(user.email, user.password, caller('Laptop/1.0'))).resolves.toMatchObject({ token_type: 'Bearer' });
    await expect(app.auth.me(pair.token)).resolves.toBeDefined();
    await expect(change(other.token, user.password)).resolves.toMatchObject({ token_type: 'Bearer' });
  });

  it('is not refused by counters strangers can fill: a locked pair and a spent hour leave a live session\'s change alone', async () => {
    // Prepare
    const { app, user, login } = await signedIn({ LOGIN_ACCOUNT_MAX_FAILURES: '5' });
    const pair = await login('Laptop/1.0');
    for (let i = 0; i < 6; i++) await loginService(app).login(user.email, `guess-${i}`, caller('Laptop/1.0')).catch(() => undefined);
    await expect(loginService(app).login(user.email, user.password, caller('Laptop/1.0'))).rejects.toMatchObject({ code: 'too_many_attempts' });

    // Act + Assess
    await expect(passwordService(app).changePassword(pair.token, user.password, NEW_PASSWORD, caller('Laptop/1.0'))).resolves.toMatchObject({ token_type: 'Bearer' });
  });

  it('refuses a weak new password with the rule it breaks, before spending an attempt', async () => {
    // Prepare
    const { app, user, login } = await signedIn();
    const pair = await login('Laptop/1.0');
    const localPart = user.email.split('@')[0]!;
    const change = (next: string) => passwordService(app).changePassword(pair.token, user.password, next, caller('Laptop/1.0'));

    // Act + Assess
    await expect(change('short')).rejects.toMatchObject({ code: 'weak_password', status: 400, message: 'The password must be at least 12 characters long.' });
    await expect(change('x'.repeat(73))).rejects.toMatchObject({ code: 'weak_password', message: expect.stringMatching(/at most 72 bytes/) });
    await expect(change(user.password)).rejects.toMatchObject({ code: 'weak_password', message: expect.stringMatching(/must differ/) });
    await expect(change(`${localPart}-and-more`)).rejects.toMatchObject({ code: 'weak_password', message: expect.stringMatching(/email/) });
    await expect(change('iloveyou1234')).rejects.toMatchObject({ code: 'weak_password', message: expect.stringMatching(/too common/) });
    for (let i = 0; i < 6; i++) await expect(change('short')).rejects.toMatchObject({ code: 'weak_password' });
    await expect(change(NEW_PASSWORD)).resolves.toMatchObject({ token_type: 'Bearer' });
  });

  it('lets exactly one of two racing changes win; the other finds its session ended', async () => {
    // Prepare
    const { app, user, login } = await signedIn();
    const pair = await login('Laptop/1.0');

    // Act
    const results = await Promise.allSettled([
      passwordService(app).changePassword(pair.token, user.password, 'first of the new passwords', caller('Laptop/1.0')),
      passwordService(app).changePassword(pair.token, user.password, 'second of the new passwords', caller('Laptop/1.0')),
    ]);

    // Assess
    const won = results.filter((result) => result.status === 'fulfilled');
    const lost = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost.map((result) => result.reason.code)).toEqual(['invalid_token']);
    const winner = results.indexOf(won[0]!) === 0 ? 'first of the new passwords' : 'second of the new passwords';
    await expect(loginService(app).login(user.email, winner, caller('x', '198.51.100.93'))).resolves.toBeDefined();
  });
});

describe('the local store upgrade', () => {
  it("adds the sessions index to a table made before it, keeping every item, and finishes an upgrade cut short", async () => {
    // Prepare: the sessions table as it was (no index), with a session in it
    const stage = `u${randomBytes(4).toString('hex')}`;
    const client = new DynamoDBClient({ endpoint: dynamoEndpoint(), region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const db = DynamoDBDocumentClient.from(client);
    const table = tableNames(stage).sessions;
    const oldDefinition = { AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' as const }], KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' as const }], BillingMode: 'PAY_PER_REQUEST' as const };
    await client.send(new CreateTableCommand({ TableName: table, ...oldDefinition }));
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
    const item = { pk: 'SESSION#kept', id: 'kept', user_id: 'usr_1', created_at: '2026-01-01T00:00:00.000Z', refresh_hash: 'h', expires_at: 2_000_000_000 };
    await db.send(new PutCommand({ TableName: table, Item: item }));
    // ... and the staging table of an upgrade cut short after the table was dropped, for the attempts table
    const attempts = tableNames(stage).attempts;
    await client.send(new CreateTableCommand({ TableName: `${attempts}-upgrading`, ...oldDefinition }));
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
    await db.send(new PutCommand({ TableName: `${attempts}-upgrading`, Item: { pk: 'PAIR#kept', failures: 2 } }));

    // Act
    await ensureTables(dynamoEndpoint(), stage);

    // Assess
    const { Table } = await client.send(new DescribeTableCommand({ TableName: table }));
    expect(Table?.GlobalSecondaryIndexes?.map((index) => index.IndexName)).toEqual([SESSIONS_BY_USER_INDEX]);
    const { Items } = await db.send(new QueryCommand({ TableName: table, IndexName: SESSIONS_BY_USER_INDEX, KeyConditionExpression: 'user_id = :u', ExpressionAttributeValues: { ':u': 'usr_1' } }));
    expect(Items).toEqual([expect.objectContaining({ id: 'kept', created_at: item.created_at })]);
    const app = await testApp();
    expect(await app.db.send(new QueryCommand({ TableName: attempts, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': 'PAIR#kept' } })).then((page) => page.Items)).toEqual([{ pk: 'PAIR#kept', failures: 2 }]);
    await expect(client.send(new DescribeTableCommand({ TableName: `${attempts}-upgrading` }))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(client.send(new DescribeTableCommand({ TableName: `${table}-upgrading` }))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    client.destroy();
  });
});

describe('how a session was signed in (amr)', () => {
  it('says pwd after a password alone, and every refresh keeps the session amr (a two-factor session stays one)', async () => {
    // Prepare: a sign-in, and a session recorded as signed in with two factors
    const { app, user, login } = await signedIn();
    const pair = await login('Laptop/1.0');
    const ring = await app.keyRing.current();
    const otpSessionId = newSessionId();
    const secret = issueRefreshSecret(rotationKeysOf(ring).get(ring.currentKid)!, otpSessionId);
    const signedInWithOtp = await app.sessions.create({
      id: otpSessionId,
      userId: user.id,
      refreshHash: hashRefreshSecret(secret),
      rotationKid: ring.currentKid,
      userEpoch: 0,
      amr: ['pwd', 'otp'],
      createdAt: app.clock().toISOString(),
      expiresAt: Math.floor(app.clock().getTime() / 1000) + 3600,
    });

    // Act
    const refreshed = await app.auth.refresh(pair.refresh_token, caller('Laptop/1.0'));

    // Assess
    expect((await app.tokens.verify(pair.token)).amr).toEqual(['pwd']);
    expect((await app.tokens.verify(refreshed.token)).amr).toEqual(['pwd']);
    expect((await app.sessions.get(signedInWithOtp.id))?.amr).toEqual(['pwd', 'otp']);
    const twoFactor = await app.auth.refresh(formatRefreshToken({ sessionId: otpSessionId, userId: user.id, secret }), caller('Laptop/1.0'));
    expect((await app.tokens.verify(twoFactor.token)).amr).toEqual(['pwd', 'otp']);
    expect((await app.auth.authenticate(twoFactor.token)).amr).toEqual(['pwd', 'otp']);
  });
});
