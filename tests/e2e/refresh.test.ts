import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { newSessionId } from '../../lib/platform/ids.js';
import { epochSeconds } from '../../lib/store/sessions.js';
import { formatRefreshToken, hashRefreshSecret, newRefreshSecret } from '../../lib/auth/tokens.js';
import { call, e2eApp, expectCommonHeaders, expectError, login } from '../support/http.js';
import { createUser } from '../support/store.js';

describe('POST /v1/auth/refresh over HTTP', () => {
  it('rotates: a new pair for the same session; a spent token coming back ends the session', async () => {
    // Prepare
    const user = await createUser(e2eApp());
    const first = await login(user.email, user.password);

    // Act
    const response = await call('POST', '/refresh', { body: { refresh_token: first.refresh_token } });

    // Assess
    expect(response.status).toBe(200);
    expectCommonHeaders(response);
    expect(response.body).toMatchObject({ success: true, token_type: 'Bearer', expires_in: 3600, user: { id: user.id, email: user.email } });
    expect(response.body.refresh_expires_in).toBeGreaterThan(2592000 - 60);
    expect(response.body.refresh_expires_in).toBeLessThanOrEqual(2592000);
    expect(decodeJwt(response.body.token).sid).toBe(decodeJwt(first.token).sid);
    expect(response.body.refresh_token).not.toBe(first.refresh_token);
    expect(response.body.token).not.toBe(first.token);
    const next = await call('POST', '/refresh', { body: { refresh_token: response.body.refresh_token } });
    expect(next.status).toBe(200);
    expect((await call('GET', '/me', { token: next.body.token })).status).toBe(200);

    // The first token is two generations old: theft. The whole session ends, whoever holds what.
    expectError(await call('POST', '/refresh', { body: { refresh_token: first.refresh_token } }), 401, 'refresh_token_reused');
    expectError(await call('POST', '/refresh', { body: { refresh_token: next.body.refresh_token } }), 401, 'invalid_refresh_token');
    expectError(await call('GET', '/me', { token: next.body.token }), 401, 'invalid_token');
  });

  it('answers a retried refresh (the previous token, inside the grace window) with the same new pair', async () => {
    const user = await createUser(e2eApp());
    const first = await login(user.email, user.password);
    const refreshed = await call('POST', '/refresh', { body: { refresh_token: first.refresh_token } });
    const retried = await call('POST', '/refresh', { body: { refresh_token: first.refresh_token } });
    expect(retried.status).toBe(200);
    expect(retried.body.refresh_token).toBe(refreshed.body.refresh_token);
    expect(decodeJwt(retried.body.token).sid).toBe(decodeJwt(first.token).sid);
  });

  it.each([10, 50])('lets %i tabs refresh one token at once: all succeed, one live session remains', async (n) => {
    // Prepare
    const user = await createUser(e2eApp());
    const first = await login(user.email, user.password);

    // Act
    const responses = await Promise.all(Array.from({ length: n }, () => call('POST', '/refresh', { body: { refresh_token: first.refresh_token } })));

    // Assess
    expect(responses.map((response) => response.status)).toEqual(Array(n).fill(200));
    expect(new Set(responses.map((response) => response.body.refresh_token)).size).toBe(1);
    const after = await call('POST', '/refresh', { body: { refresh_token: responses[0]!.body.refresh_token } });
    expect(after.status).toBe(200);
    expect((await call('GET', '/me', { token: after.body.token })).status).toBe(200);
  });

  it.each([
    ['unknown', () => formatRefreshToken({ sessionId: newSessionId(), userId: 'usr_AAAAAAAAAAAAAAAAAAAAAA', secret: newRefreshSecret() })],
    ['garbage', () => 'rt_garbage'],
    ['without the prefix', () => 'Zm9vYmFy'],
  ])('rejects an %s refresh token with 401 invalid_refresh_token', async (_label, token) => {
    expectError(await call('POST', '/refresh', { body: { refresh_token: token() } }), 401, 'invalid_refresh_token');
  });

  it('rejects an expired session even though its record is still in the table', async () => {
    // Prepare: a session whose absolute lifetime ended a minute ago (dynalite never deletes by TTL)
    const app = e2eApp();
    const user = await createUser(app);
    const secret = newRefreshSecret();
    const past = new Date(Date.now() - 3_600_000);
    const session = await app.sessions.create({
      id: newSessionId(),
      userId: user.id,
      refreshHash: hashRefreshSecret(secret),
      rotationKid: (await app.keyRing.current()).currentKid,
      userEpoch: 0,
      createdAt: past.toISOString(),
      expiresAt: epochSeconds(new Date()) - 60,
    });
    const token = formatRefreshToken({ sessionId: session.id, userId: user.id, secret });

    // Act / Assess
    expectError(await call('POST', '/refresh', { body: { refresh_token: token } }), 401, 'invalid_refresh_token');
  });

  it('rejects the refresh token of a session that was logged out', async () => {
    const user = await createUser(e2eApp());
    const pair = await login(user.email, user.password);
    expect((await call('POST', '/logout', { token: pair.token, body: {} })).status).toBe(200);
    expectError(await call('POST', '/refresh', { body: { refresh_token: pair.refresh_token } }), 401, 'invalid_refresh_token');
  });

  it('rejects a disabled user', async () => {
    const app = e2eApp();
    const user = await createUser(app);
    const pair = await login(user.email, user.password);
    await app.users.setStatus(user.id, 'disabled', new Date());
    expectError(await call('POST', '/refresh', { body: { refresh_token: pair.refresh_token } }), 401, 'invalid_refresh_token');
  });

  it.each([
    ['an empty body', { rawBody: '' }],
    ['malformed JSON', { rawBody: '{"refresh_token":' }],
    ['a missing field', { body: {} }],
    ['a number', { body: { refresh_token: 12345 } }],
    ['an object', { body: { refresh_token: { $gt: '' } } }],
    ['a 10,000-character token', { body: { refresh_token: `rt_${'a'.repeat(10_000)}` } }],
  ])('rejects %s with 400 invalid_request', async (_label, options) => {
    expectError(await call('POST', '/refresh', options), 400, 'invalid_request');
  });
});
