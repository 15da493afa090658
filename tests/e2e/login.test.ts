import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseRefreshToken } from '../../lib/auth/tokens.js';
import { DEMO_USER, apiUrl } from '../support/context.js';
import { call, e2eApp, expectCommonHeaders, expectError, requestFrom } from '../support/http.js';
import { createUser, uniqueEmail } from '../support/store.js';

describe('POST /v1/auth/login over HTTP', () => {
  it('signs the demo user in with the documented response', async () => {
    // Act
    const response = await call('POST', '/login', { body: DEMO_USER });

    // Assess
    expect(response.status).toBe(200);
    expectCommonHeaders(response);
    const body = response.body;
    expect(Object.keys(body).sort()).toEqual(['device_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'success', 'token', 'token_type', 'user']);
    expect(body.device_token).toMatch(/^dt_[A-Za-z0-9_-]{64}$/);
    expect(body).toMatchObject({ success: true, token_type: 'Bearer', expires_in: 3600, refresh_expires_in: 2592000 });
    expect(body.token.startsWith('eyJhbGciOiJIUzI1NiIs')).toBe(true);
    const header = JSON.parse(Buffer.from(body.token.split('.')[0], 'base64url').toString());
    expect(Object.keys(header)).toEqual(['alg', 'typ', 'kid']);
    const claims = decodeJwt(body.token);
    expect(Object.keys(claims).sort()).toEqual(['amr', 'aud', 'exp', 'iat', 'iss', 'jti', 'role', 'sid', 'sub']);
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(body.refresh_token).toMatch(/^rt_[A-Za-z0-9_-]+$/);
    expect(parseRefreshToken(body.refresh_token)!.secret.length * 8).toBeGreaterThanOrEqual(256);
    expect(body.user).toEqual({
      id: claims.sub,
      email: DEMO_USER.email,
      name: 'John Doe',
      role: 'admin',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/),
      last_login: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/),
      mfa_enabled: false,
    });
    expect(Date.now() - Date.parse(body.user.last_login)).toBeLessThan(60_000);
  });

  it("records the session's source IP from API Gateway (never X-Forwarded-For) and its User-Agent", async () => {
    // Prepare
    const user = await createUser(e2eApp());

    // Act
    const reply = await requestFrom('127.0.0.61', 'POST', '/login', {
      body: JSON.stringify({ email: user.email, password: user.password }),
      headers: { 'content-type': 'application/json', 'user-agent': 'VPN Enterprise client/2.1 (macOS)', 'x-forwarded-for': '203.0.113.99' },
    });

    // Assess
    expect(reply.status).toBe(200);
    const session = await e2eApp().sessions.get(decodeJwt(reply.body.token).sid as string);
    expect(session).toMatchObject({ sourceIp: '127.0.0.61', userAgent: 'VPN Enterprise client/2.1 (macOS)' });
  });

  it('trims the email and ignores its case', async () => {
    const response = await call('POST', '/login', { body: { email: `  ${DEMO_USER.email.toUpperCase()}  `, password: DEMO_USER.password } });
    expect(response.status).toBe(200);
    expect(response.body.user.email).toBe(DEMO_USER.email);
  });

  it('answers unknown email, wrong password, over-long password and disabled user identically', async () => {
    // Prepare
    const app = e2eApp();
    const longPassword = 'L'.repeat(72);
    const user = await createUser(app, { password: longPassword });
    const disabled = await createUser(app);
    await app.users.setStatus(disabled.id, 'disabled', new Date());

    // Act
    const responses = await Promise.all([
      call('POST', '/login', { body: { email: uniqueEmail('ghost'), password: 'whatever-password' } }),
      call('POST', '/login', { body: { email: user.email, password: 'wrong-password' } }),
      // Same first 72 bytes as the real password: bcrypt alone would accept it.
      call('POST', '/login', { body: { email: user.email, password: `${longPassword}tail` } }),
      call('POST', '/login', { body: { email: disabled.email, password: disabled.password } }),
    ]);

    // Assess
    for (const response of responses) expectError(response, 401, 'invalid_credentials');
    expect(new Set(responses.map((response) => response.text)).size).toBe(1);
    expect((await call('POST', '/login', { body: { email: user.email, password: longPassword } })).status).toBe(200);
  });

  it('starts a new session with every login', async () => {
    const first = await call('POST', '/login', { body: DEMO_USER });
    const second = await call('POST', '/login', { body: DEMO_USER });
    expect(decodeJwt(first.body.token).sid).not.toBe(decodeJwt(second.body.token).sid);
  });

  it.each([
    ['malformed JSON', { rawBody: '{"email": "user@company.com",' }],
    ['an empty body', { rawBody: '' }],
    ['JSON null', { rawBody: 'null' }],
    ['a JSON array', { body: [DEMO_USER] }],
    ['a JSON string', { body: 'user@company.com' }],
    ['a missing email', { body: { password: 'secure_password' } }],
    ['a missing password', { body: { email: 'user@company.com' } }],
    ['a number as email', { body: { email: 42, password: 'secure_password' } }],
    ['an operator object as email', { body: { email: { $ne: null }, password: 'secure_password' } }],
    ['an operator object as password', { body: { email: 'user@company.com', password: { $ne: null } } }],
    ['an empty password', { body: { email: 'user@company.com', password: '' } }],
    ['something that is not an email', { body: { email: 'not-an-email', password: 'secure_password' } }],
    ['a 10,000-character email', { body: { email: `${'a'.repeat(9990)}@company.com`, password: 'secure_password' } }],
    ['a 5,000-character password', { body: { email: 'user@company.com', password: 'p'.repeat(5000) } }],
  ])('rejects %s with 400 invalid_request', async (_label, options) => {
    expectError(await call('POST', '/login', options), 400, 'invalid_request');
  });

  it('rejects a body over 64 KiB with 413 payload_too_large', async () => {
    const response = await call('POST', '/login', { body: { email: 'user@company.com', password: 'secure_password', padding: 'x'.repeat(70 * 1024) } });
    expectError(response, 413, 'payload_too_large');
  });

  it.each([
    ['text/plain (what a web page can send without a preflight)', 'text/plain'],
    ['a form', 'application/x-www-form-urlencoded'],
    ['multipart', 'multipart/form-data; boundary=x'],
    ['a near miss', 'application/jsonp'],
  ])('refuses a JSON body sent as %s with 415 unsupported_media_type, before any attempt is counted', async (_label, type) => {
    const user = await createUser(e2eApp());
    for (let i = 0; i < 6; i++) {
      expectError(await call('POST', '/login', { rawBody: JSON.stringify({ email: user.email, password: `guess-${i}` }), headers: { 'content-type': type } }), 415, 'unsupported_media_type');
    }
    expect((await call('POST', '/login', { body: { email: user.email, password: user.password } })).status).toBe(200);
  });

  it('refuses a body without a Content-Type with 415, and takes application/json in any case with parameters', async () => {
    const bare = await fetch(`${apiUrl()}/v1/auth/login`, { method: 'POST', body: new TextEncoder().encode(JSON.stringify(DEMO_USER)) });
    expect(bare.status).toBe(415);
    expect(await bare.json()).toEqual({ success: false, error: { code: 'unsupported_media_type', message: expect.any(String) } });
    expect((await call('POST', '/login', { rawBody: JSON.stringify(DEMO_USER), headers: { 'content-type': 'Application/JSON; Charset=UTF-8' } })).status).toBe(200);
  });

  it('survives a 1 MiB body', async () => {
    expectError(await call('POST', '/login', { rawBody: 'x'.repeat(1024 * 1024) }), 413, 'payload_too_large');
    expectError(await call('POST', '/login', { rawBody: 'x'.repeat(1024 * 1024), headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type');
  });

  it('accepts unicode and refuses NUL bytes in passwords as wrong credentials, not errors', async () => {
    const app = e2eApp();
    const user = await createUser(app, { password: 'pässwörd-🔐-密码' });
    expect((await call('POST', '/login', { body: { email: user.email, password: 'pässwörd-🔐-密码' } })).status).toBe(200);
    expectError(await call('POST', '/login', { body: { email: user.email, password: 'pässwörd-🔐-密码\u0000' } }), 401, 'invalid_credentials');
  });
});
