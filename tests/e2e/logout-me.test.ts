import { createHmac } from 'node:crypto';
import { SignJWT, decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { apiUrl } from '../support/context.js';
import { call, e2eApp, expectCommonHeaders, expectError, login, type ApiResponse } from '../support/http.js';
import { createUser } from '../support/store.js';

/** An HS256 signature made by hand, for keys jose will not use (such as an empty one). */
function hs256WithKey(header: string, payload: string, key: string): string {
  return `${header}.${payload}.${createHmac('sha256', key).update(`${header}.${payload}`).digest('base64url')}`;
}

function b64(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function expectChallenge(response: ApiResponse, withError: boolean): void {
  const challenge = response.headers.get('www-authenticate');
  expect(challenge).toMatch(/^Bearer /);
  if (withError) expect(challenge).toContain('error="invalid_token"');
  else expect(challenge).not.toContain('error=');
}

async function currentKey(): Promise<Uint8Array> {
  const ring = await e2eApp().keyRing.current();
  return ring.keys.get(ring.currentKid)!;
}

/** A token signed with the running API's own key: genuine in every way but the claims chosen here. */
async function signed(claims: Record<string, unknown>, options: { expiresAt?: number; issuer?: string; audience?: string; kid?: string } = {}) {
  const keys = await e2eApp().keyRing.current();
  const now = Math.floor(Date.now() / 1000);
  const expiresAt = options.expiresAt ?? now + 600;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: options.kid ?? keys.currentKid })
    .setIssuer(options.issuer ?? 'vpn-enterprise-auth')
    .setAudience(options.audience ?? 'vpn-enterprise')
    .setJti('test')
    .setIssuedAt(Math.min(now - 60, expiresAt - 3600))
    .setExpirationTime(expiresAt)
    .sign(keys.keys.get(keys.currentKid)!);
}

describe('GET /v1/auth/me over HTTP', () => {
  it('returns the signed-in user', async () => {
    const user = await createUser(e2eApp(), { role: 'admin', name: 'Grace Hopper' });
    const pair = await login(user.email, user.password);
    const response = await call('GET', '/me', { token: pair.token });
    expect(response.status).toBe(200);
    expectCommonHeaders(response);
    expect(response.body).toEqual({
      success: true,
      user: { id: user.id, email: user.email, name: 'Grace Hopper', role: 'admin', created_at: user.createdAt, last_login: pair.user.last_login, mfa_enabled: false },
    });
  });

  it('accepts the scheme in any case', async () => {
    const user = await createUser(e2eApp());
    const { token } = await login(user.email, user.password);
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      expect((await call('GET', '/me', { headers: { authorization: `${scheme} ${token}` } })).status).toBe(200);
    }
  });

  it('asks for a token when none is sent', async () => {
    const response = await call('GET', '/me');
    expectError(response, 401, 'invalid_token');
    expectChallenge(response, false);
  });

  it('answers token_expired for a genuine but expired token', async () => {
    const user = await createUser(e2eApp());
    const pair = await login(user.email, user.password);
    const { sid } = decodeJwt(pair.token);
    const expired = await signed({ sub: user.id, sid, role: 'user' }, { expiresAt: Math.floor(Date.now() / 1000) - 3600 });
    const response = await call('GET', '/me', { token: expired });
    expectError(response, 401, 'token_expired');
    expectChallenge(response, true);
  });

  it('rejects forged, tampered and foreign tokens with invalid_token', async () => {
    // Prepare
    const user = await createUser(e2eApp());
    const { token } = await login(user.email, user.password);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = decodeJwt(token);
    const forgeries: Record<string, string> = {
      'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`,
      'alg None': `${b64({ alg: 'None', typ: 'JWT' })}.${payload}.`,
      'alg NONE': `${b64({ alg: 'NONE', typ: 'JWT' })}.${payload}.`,
      'alg nOnE with the real signature': `${b64({ alg: 'nOnE', typ: 'JWT' })}.${payload}.${signature}`,
      'signature stripped': `${header}.${payload}.`,
      'payload edited': `${header}.${b64({ ...claims, role: 'superadmin' })}.${signature}`,
      'HS512 header swap': `${b64({ alg: 'HS512', typ: 'JWT', kid: JSON.parse(Buffer.from(header, 'base64url').toString()).kid })}.${payload}.${signature}`,
      'guessed secret': await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: (await e2eApp().keyRing.current()).currentKid }).sign(new TextEncoder().encode('secret'.repeat(6))),
      'unknown kid': await signed({ sub: user.id, sid: claims.sid, role: 'user' }, { kid: 'unknown-kid' }),
      'wrong issuer': await signed({ sub: user.id, sid: claims.sid, role: 'user' }, { issuer: 'https://evil.example' }),
      'wrong audience': await signed({ sub: user.id, sid: claims.sid, role: 'user' }, { audience: 'another-api' }),
      'not a JWT': 'abc.def',
      'signed with an empty secret': hs256WithKey(header, payload, ''),
      'nbf in the future': await signed({ sub: user.id, sid: claims.sid, role: 'user', nbf: Math.floor(Date.now() / 1000) + 300 }),
      'iat in the future': await new SignJWT({ sub: user.id, sid: claims.sid, role: 'user' })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: (await e2eApp().keyRing.current()).currentKid })
        .setIssuer('vpn-enterprise-auth')
        .setAudience('vpn-enterprise')
        .setJti('x')
        .setIssuedAt(Math.floor(Date.now() / 1000) + 300)
        .setExpirationTime(Math.floor(Date.now() / 1000) + 3900)
        .sign(await currentKey()),
    };

    // Act / Assess
    for (const [label, forged] of Object.entries(forgeries)) {
      const response = await call('GET', '/me', { token: forged });
      expect({ label, status: response.status, code: response.body?.error?.code }).toEqual({ label, status: 401, code: 'invalid_token' });
      expectChallenge(response, true);
    }
  });

  it('rejects a non-Bearer scheme', async () => {
    const response = await call('GET', '/me', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expectError(response, 401, 'invalid_token');
  });

  it('refuses a token whose user has been disabled, at once', async () => {
    const app = e2eApp();
    const user = await createUser(app);
    const { token } = await login(user.email, user.password);
    await app.users.setStatus(user.id, 'disabled', new Date());
    expectError(await call('GET', '/me', { token }), 401, 'invalid_token');
  });
});

describe('POST /v1/auth/logout over HTTP', () => {
  it('ends the session: its access token and refresh token stop working at once', async () => {
    // Prepare
    const user = await createUser(e2eApp());
    const pair = await login(user.email, user.password);
    const other = await login(user.email, user.password);

    // Act
    const response = await call('POST', '/logout', { token: pair.token, body: {} });

    // Assess
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ success: true });
    expectCommonHeaders(response);
    expectError(await call('GET', '/me', { token: pair.token }), 401, 'invalid_token');
    expectError(await call('POST', '/refresh', { body: { refresh_token: pair.refresh_token } }), 401, 'invalid_refresh_token');
    expect((await call('GET', '/me', { token: other.token })).status).toBe(200);
  });

  it('is idempotent for a genuine token of an ended session', async () => {
    const user = await createUser(e2eApp());
    const { token } = await login(user.email, user.password);
    expect((await call('POST', '/logout', { token, body: {} })).status).toBe(200);
    const again = await call('POST', '/logout', { token, body: {} });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ success: true });
  });

  it('accepts an empty body and {"scope":"local"}', async () => {
    const user = await createUser(e2eApp());
    const a = await login(user.email, user.password);
    const b = await login(user.email, user.password);
    expect((await call('POST', '/logout', { token: a.token })).status).toBe(200);
    expect((await call('POST', '/logout', { token: b.token, body: { scope: 'local' } })).status).toBe(200);
    expect((await call('GET', '/me', { token: b.token })).status).toBe(401);
  });

  it('ends every session of the user with {"scope":"global"}', async () => {
    const user = await createUser(e2eApp());
    const sessions = [await login(user.email, user.password), await login(user.email, user.password), await login(user.email, user.password)];
    expect((await call('POST', '/logout', { token: sessions[0]!.token, body: { scope: 'global' } })).status).toBe(200);
    for (const session of sessions) {
      expectError(await call('GET', '/me', { token: session.token }), 401, 'invalid_token');
      expectError(await call('POST', '/refresh', { body: { refresh_token: session.refresh_token } }), 401, 'invalid_refresh_token');
    }
    const fresh = await login(user.email, user.password);
    expect((await call('GET', '/me', { token: fresh.token })).status).toBe(200);
  });

  it('answers a global logout from an already ended session with 401 invalid_token, ending nothing (a local one stays 200)', async () => {
    // Prepare: the session ended (here by a local logout; a refresh-token reuse ends it the same way)
    const user = await createUser(e2eApp());
    const ended = await login(user.email, user.password);
    const other = await login(user.email, user.password);
    expect((await call('POST', '/logout', { token: ended.token })).status).toBe(200);

    // Act
    const global = await call('POST', '/logout', { token: ended.token, body: { scope: 'global' } });

    // Assess
    expectError(global, 401, 'invalid_token');
    expectChallenge(global, true);
    expect((await call('GET', '/me', { token: other.token })).status).toBe(200);
    expect((await call('POST', '/logout', { token: ended.token, body: {} })).status).toBe(200);
  });

  it('needs no content type without a body, and refuses a body that is not application/json with 415', async () => {
    const user = await createUser(e2eApp());
    const a = await login(user.email, user.password);
    const b = await login(user.email, user.password);
    const plain = await call('POST', '/logout', { token: a.token, rawBody: '{"scope":"global"}', headers: { 'content-type': 'text/plain' } });
    expectError(plain, 415, 'unsupported_media_type');
    expect((await call('GET', '/me', { token: b.token })).status).toBe(200);
    const bare = await fetch(`${apiUrl()}/v1/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${a.token}` } });
    expect(bare.status).toBe(200);
  });

  it('rejects an unknown scope and a non-object body with 400', async () => {
    const user = await createUser(e2eApp());
    const { token } = await login(user.email, user.password);
    expectError(await call('POST', '/logout', { token, body: { scope: 'everything' } }), 400, 'invalid_request');
    expectError(await call('POST', '/logout', { token, rawBody: '[]' }), 400, 'invalid_request');
    expectError(await call('POST', '/logout', { token, rawBody: '{oops' }), 400, 'invalid_request');
    expect((await call('GET', '/me', { token })).status).toBe(200);
  });

  it('requires a genuine token', async () => {
    const missing = await call('POST', '/logout', { body: {} });
    expectError(missing, 401, 'invalid_token');
    expectChallenge(missing, false);
    const forged = await call('POST', '/logout', { token: `${b64({ alg: 'none' })}.${b64({ sub: 'x', sid: 'y' })}.`, body: {} });
    expectError(forged, 401, 'invalid_token');
    expectChallenge(forged, true);
  });
});
