import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../lib/auth/auth-service.js';
import { ApiError } from '../../lib/platform/errors.js';
import { loginService } from '../../lib/auth/login-service.js';
import { formatRefreshToken, newRefreshSecret, parseRefreshToken } from '../../lib/auth/tokens.js';
import { createUser, testApp } from '../support/store.js';

type TestApp = Awaited<ReturnType<typeof testApp>>;
const caller: Caller = { requestId: 'req-1', sourceIp: '198.51.100.7', userAgent: 'vitest' };

async function errorCode(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(ApiError);
  return (error as ApiError).code;
}

describe('AuthService rules, with an injected clock, against dynalite', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await testApp(undefined, { ACCESS_TOKEN_TTL_SECONDS: '900', REFRESH_TOKEN_TTL_SECONDS: '7200' });
  });

  it('logs in: an access token for a new session, a refresh token for the same session, last_login set', async () => {
    // Prepare
    const user = await createUser(app, { role: 'admin' });

    // Act
    const pair = await loginService(app).login(user.email, user.password, caller);

    // Assess
    const claims = decodeJwt(pair.token);
    expect(decodeProtectedHeader(pair.token)).toEqual({ alg: 'HS256', typ: 'JWT', kid: (await app.keyRing.current()).currentKid });
    expect(claims).toMatchObject({ sub: user.id, role: 'admin', iss: 'vpn-enterprise-auth', aud: 'vpn-enterprise' });
    expect(claims.exp! - claims.iat!).toBe(900);
    expect(claims.iat).toBe(Math.floor(app.clock().getTime() / 1000));
    expect(pair).toMatchObject({ token_type: 'Bearer', expires_in: 900, refresh_expires_in: 7200 });
    expect(parseRefreshToken(pair.refresh_token)).toMatchObject({ sessionId: claims.sid, userId: user.id });
    expect(pair.user).toEqual({ id: user.id, email: user.email, name: user.name, role: 'admin', created_at: user.createdAt, last_login: app.clock().toISOString(), mfa_enabled: false });
    expect(pair.user).not.toHaveProperty('passwordHash');
  });

  it('gives every login its own session', async () => {
    const user = await createUser(app);
    const first = decodeJwt((await loginService(app).login(user.email, user.password, caller)).token);
    const second = decodeJwt((await loginService(app).login(user.email, user.password, caller)).token);
    expect(first.sid).not.toBe(second.sid);
  });

  it('refuses unknown users, wrong and over-long passwords and disabled users alike', async () => {
    const user = await createUser(app, { password: 'p'.repeat(72) });
    const disabled = await createUser(app);
    await app.users.setStatus(disabled.id, 'disabled', app.clock());
    const attempts = [
      () => loginService(app).login('nobody@example.com', 'whatever-password', caller),
      () => loginService(app).login(user.email, 'wrong-password', caller),
      () => loginService(app).login(user.email, `${'p'.repeat(72)}extra`, caller),
      () => loginService(app).login(disabled.email, disabled.password, caller),
    ];
    for (const attempt of attempts) expect(await errorCode(attempt())).toBe('invalid_credentials');
    // The exact 72-byte password is fine: the limit is bcrypt's, not ours.
    await expect(loginService(app).login(user.email, 'p'.repeat(72), caller)).resolves.toMatchObject({ token_type: 'Bearer' });
  });

  it('records where a session was signed in from: the source IP and the User-Agent, cut to 256 characters; a refresh marks it used', async () => {
    // Prepare
    const user = await createUser(app);
    const agent = `${'a'.repeat(250)}-éclair-🔐-and-more`;

    // Act
    const signIn = await loginService(app).login(user.email, user.password, { requestId: 'req', sourceIp: '198.51.100.77', userAgent: agent });
    const sid = decodeJwt(signIn.token).sid as string;
    const created = await app.sessions.get(sid);
    app.testClock.advance(90);
    await app.auth.refresh(signIn.refresh_token, caller);
    const used = await app.sessions.get(sid);

    // Assess
    expect(created).toMatchObject({ sourceIp: '198.51.100.77', userAgent: [...agent].slice(0, 256).join(''), rotatedAt: undefined });
    expect([...created!.userAgent!]).toHaveLength(256);
    expect(used?.rotatedAt).toBe(app.clock().toISOString());
  });

  it('refreshes within the session: same sid, new tokens, the old refresh token spent', async () => {
    // Prepare
    const user = await createUser(app);
    const login = await loginService(app).login(user.email, user.password, caller);
    app.testClock.advance(120);

    // Act
    const refreshed = await app.auth.refresh(login.refresh_token, caller);

    // Assess
    expect(decodeJwt(refreshed.token).sid).toBe(decodeJwt(login.token).sid);
    expect(refreshed.refresh_token).not.toBe(login.refresh_token);
    expect(refreshed.refresh_expires_in).toBe(7200 - 120);
    await expect(app.auth.refresh(refreshed.refresh_token, caller)).resolves.toMatchObject({ token_type: 'Bearer' });
  });

  it('ends a session at its absolute lifetime, however often it was refreshed', async () => {
    const user = await createUser(app);
    let pair: { refresh_token: string } = await loginService(app).login(user.email, user.password, caller);
    for (let i = 0; i < 3; i++) {
      app.testClock.advance(2000);
      pair = await app.auth.refresh(pair.refresh_token, caller);
    }
    app.testClock.advance(1200); // 7200 s after login
    expect(await errorCode(app.auth.refresh(pair.refresh_token, caller))).toBe('invalid_refresh_token');
  });

  it('rejects malformed and forged refresh tokens', async () => {
    const user = await createUser(app);
    const { refresh_token } = await loginService(app).login(user.email, user.password, caller);
    const forged = `${refresh_token.slice(0, -4)}${refresh_token.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    for (const token of ['rt_short', 'not-a-token', refresh_token.replace('rt_', 'xx_'), forged]) {
      expect(await errorCode(app.auth.refresh(token, caller))).toBe('invalid_refresh_token');
    }
  });

  it('answers me with the user as stored now, and token_expired once the access token is old', async () => {
    const user = await createUser(app, { role: 'user' });
    const { token } = await loginService(app).login(user.email, user.password, caller);
    expect(await app.auth.me(token)).toMatchObject({ id: user.id, role: 'user' });
    app.testClock.advance(900 + 31);
    expect(await errorCode(app.auth.me(token))).toBe('token_expired');
  });

  it('logs out locally: that session is over for me and refresh, others stand; again is fine', async () => {
    const user = await createUser(app);
    const a = await loginService(app).login(user.email, user.password, caller);
    const b = await loginService(app).login(user.email, user.password, caller);
    await app.auth.logout(a.token, 'local', caller);
    expect(await errorCode(app.auth.me(a.token))).toBe('invalid_token');
    expect(await errorCode(app.auth.refresh(a.refresh_token, caller))).toBe('invalid_refresh_token');
    await expect(app.auth.me(b.token)).resolves.toMatchObject({ id: user.id });
    await expect(app.auth.logout(a.token, 'local', caller)).resolves.toBeUndefined();
  });

  it('logs out globally: every session of the user is over, a new login works', async () => {
    const user = await createUser(app);
    const a = await loginService(app).login(user.email, user.password, caller);
    const b = await loginService(app).login(user.email, user.password, caller);
    await app.auth.logout(a.token, 'global', caller);
    expect(await errorCode(app.auth.me(b.token))).toBe('invalid_token');
    expect(await errorCode(app.auth.refresh(b.refresh_token, caller))).toBe('invalid_refresh_token');
    const c = await loginService(app).login(user.email, user.password, caller);
    await expect(app.auth.me(c.token)).resolves.toMatchObject({ id: user.id });
  });

  it('refuses a global logout from an ended session with 401 invalid_token, ending nothing; a local one stays idempotent', async () => {
    // Prepare
    const user = await createUser(app);
    const ended = await loginService(app).login(user.email, user.password, caller);
    const other = await loginService(app).login(user.email, user.password, caller);
    await app.auth.logout(ended.token, 'local', caller);

    // Act
    const refused = await app.auth.logout(ended.token, 'global', caller).then(() => undefined, (error: unknown) => error as ApiError);

    // Assess
    expect(refused).toMatchObject({ code: 'invalid_token', status: 401 });
    expect(refused?.headers['WWW-Authenticate']).toMatch(/^Bearer realm="vpn-enterprise", error="invalid_token"/);
    await expect(app.auth.me(other.token)).resolves.toMatchObject({ id: user.id });
    await expect(app.auth.logout(ended.token, 'local', caller)).resolves.toBeUndefined();
  });

  it('cuts off a disabled user at once: me and refresh fail before the token expires', async () => {
    const user = await createUser(app);
    const pair = await loginService(app).login(user.email, user.password, caller);
    await app.users.setStatus(user.id, 'disabled', app.clock());
    expect(await errorCode(app.auth.me(pair.token))).toBe('invalid_token');
    expect(await errorCode(app.auth.refresh(pair.refresh_token, caller))).toBe('invalid_refresh_token');
    await app.users.setStatus(user.id, 'active', app.clock());
    expect(await errorCode(app.auth.me(pair.token))).toBe('invalid_token');
  });

  it('reads the role at request time', async () => {
    const user = await createUser(app, { role: 'admin' });
    const { token } = await loginService(app).login(user.email, user.password, caller);
    await app.db.send(
      new (await import('@aws-sdk/lib-dynamodb')).UpdateCommand({
        TableName: app.users.table,
        Key: { pk: `USER#${user.id}` },
        UpdateExpression: 'SET #role = :role',
        ExpressionAttributeNames: { '#role': 'role' },
        ExpressionAttributeValues: { ':role': 'user' },
      }),
    );
    expect((await app.auth.me(token)).role).toBe('user');
  });

  describe('refresh-token reuse', () => {
    async function rotatedTwice() {
      const user = await createUser(app);
      const t0 = await loginService(app).login(user.email, user.password, caller);
      const t1 = await app.auth.refresh(t0.refresh_token, caller);
      const t2 = await app.auth.refresh(t1.refresh_token, caller);
      return { user, t0, t1, t2 };
    }

    it('accepts the token rotated out last within the grace window, answering with the current pair of the same session', async () => {
      // Prepare
      const user = await createUser(app);
      const t0 = await loginService(app).login(user.email, user.password, caller);
      const t1 = await app.auth.refresh(t0.refresh_token, caller);
      app.testClock.advance(10);

      // Act
      const again = await app.auth.refresh(t0.refresh_token, caller);

      // Assess
      expect(again.refresh_token).toBe(t1.refresh_token);
      expect(decodeJwt(again.token).sid).toBe(decodeJwt(t0.token).sid);
      await expect(app.auth.me(again.token)).resolves.toMatchObject({ id: user.id });
      await expect(app.auth.refresh(again.refresh_token, caller)).resolves.toMatchObject({ token_type: 'Bearer' });
    });

    it('treats the last token after the window as theft: 401 refresh_token_reused and the whole session ends', async () => {
      const user = await createUser(app);
      const t0 = await loginService(app).login(user.email, user.password, caller);
      const t1 = await app.auth.refresh(t0.refresh_token, caller);
      app.testClock.advance(11);
      expect(await errorCode(app.auth.refresh(t0.refresh_token, caller))).toBe('refresh_token_reused');
      expect(await errorCode(app.auth.refresh(t1.refresh_token, caller))).toBe('invalid_refresh_token');
      expect(await errorCode(app.auth.me(t1.token))).toBe('invalid_token');
      expect((await app.sessions.get(decodeJwt(t0.token).sid as string))?.revokedReason).toBe('refresh_token_reused');
      // Other sessions of the user are not touched.
      const other = await loginService(app).login(user.email, user.password, caller);
      await expect(app.auth.me(other.token)).resolves.toMatchObject({ id: user.id });
    });

    it('treats any older generation as theft at once, even inside the window', async () => {
      const { t0, t2 } = await rotatedTwice();
      expect(await errorCode(app.auth.refresh(t0.refresh_token, caller))).toBe('refresh_token_reused');
      expect(await errorCode(app.auth.refresh(t2.refresh_token, caller))).toBe('invalid_refresh_token');
      expect(await errorCode(app.auth.me(t2.token))).toBe('invalid_token');
    });

    it('proves a genuine spent token in one step however deep the session is (no walk), and ends the session', async () => {
      // Prepare: a token from generation 0, then the session's counter says it was refreshed 20,000 times
      const user = await createUser(app);
      const first = await loginService(app).login(user.email, user.password, caller);
      let pair: { refresh_token: string; token: string } = first;
      for (let i = 0; i < 3; i++) pair = await app.auth.refresh(pair.refresh_token, caller);
      const sid = decodeJwt(first.token).sid as string;
      await app.db.send(new UpdateCommand({ TableName: app.sessions.table, Key: { pk: `SESSION#${sid}` }, UpdateExpression: 'SET generation = :deep', ExpressionAttributeValues: { ':deep': 20_000 } }));
      app.testClock.advance(60);

      // Act
      const reused = await errorCode(app.auth.refresh(first.refresh_token, caller));

      // Assess
      expect(reused).toBe('refresh_token_reused');
      expect(await errorCode(app.auth.refresh(pair.refresh_token, caller))).toBe('invalid_refresh_token');
    });

    it('does not let a guessed token with the right ids end the session', async () => {
      const { user, t2 } = await rotatedTwice();
      const parsed = parseRefreshToken(t2.refresh_token)!;
      const guess = formatRefreshToken({ sessionId: parsed.sessionId, userId: user.id, secret: newRefreshSecret() });
      expect(await errorCode(app.auth.refresh(guess, caller))).toBe('invalid_refresh_token');
      await expect(app.auth.refresh(t2.refresh_token, caller)).resolves.toMatchObject({ token_type: 'Bearer' });
    });

    it.each([10, 50])('lets %i parallel refreshes of one token all succeed inside the window, leaving one live session', async (n) => {
      // Prepare
      const user = await createUser(app);
      const t0 = await loginService(app).login(user.email, user.password, caller);

      // Act
      const results = await Promise.all(Array.from({ length: n }, () => app.auth.refresh(t0.refresh_token, caller)));

      // Assess
      expect(new Set(results.map((pair) => pair.refresh_token)).size).toBe(1);
      expect(new Set(results.map((pair) => decodeJwt(pair.token).sid))).toEqual(new Set([decodeJwt(t0.token).sid]));
      const session = (await app.sessions.get(decodeJwt(t0.token).sid as string))!;
      expect(session).toMatchObject({ generation: 1, revokedAt: undefined });
      await expect(app.auth.refresh(results[0]!.refresh_token, caller)).resolves.toMatchObject({ token_type: 'Bearer' });
    });

    it.each([10, 50])('with the window at 0, lets exactly one of %i parallel refreshes succeed; the rest fail cleanly', async (n) => {
      // Prepare
      const strict = await testApp(undefined, { REFRESH_REUSE_GRACE_SECONDS: '0' });
      const user = await createUser(strict);
      const t0 = await loginService(strict).login(user.email, user.password, caller);

      // Act
      const results = await Promise.allSettled(Array.from({ length: n }, () => strict.auth.refresh(t0.refresh_token, caller)));

      // Assess
      const winners = results.filter((result) => result.status === 'fulfilled');
      expect(winners).toHaveLength(1);
      const codes = results.flatMap((result) => (result.status === 'rejected' ? [(result.reason as ApiError).code] : []));
      // A racer that read before the winner wrote lost the race (invalid); one that read after it
      // presented a rotated-out token with no window to excuse it (reused: the session ends).
      for (const code of codes) expect(['invalid_refresh_token', 'refresh_token_reused']).toContain(code);
      const winner = (winners[0] as PromiseFulfilledResult<{ refresh_token: string; token: string }>).value;
      const session = (await strict.sessions.get(decodeJwt(t0.token).sid as string))!;
      expect(session.generation).toBe(1);
      if (codes.includes('refresh_token_reused')) {
        expect(session.revokedReason).toBe('refresh_token_reused');
        expect(await errorCode(strict.auth.me(winner.token))).toBe('invalid_token');
      } else {
        expect(session.revokedAt).toBeUndefined();
        await expect(strict.auth.refresh(winner.refresh_token, caller)).resolves.toMatchObject({ token_type: 'Bearer' });
      }
    });
  });
});

describe('password hashes follow BCRYPT_COST', () => {
  it('replaces a hash made at another cost at the next sign-in, keeping the password', async () => {
    // Prepare: a user hashed at cost 4, a service configured for cost 5
    const app = await testApp(undefined, { BCRYPT_COST: '5' });
    const user = await createUser(app);
    expect(user.passwordHash.startsWith('$2b$04$')).toBe(true);

    // Act
    await loginService(app).login(user.email, user.password, caller);

    // Assess
    const stored = await app.users.get(user.id);
    expect(stored?.passwordHash.startsWith('$2b$05$')).toBe(true);
    await expect(loginService(app).login(user.email, user.password, caller)).resolves.toMatchObject({ token_type: 'Bearer' });
  });
});
