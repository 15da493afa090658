import { beforeAll, describe, expect, it } from 'vitest';
import { stageApi } from '../support/stage-api.js';
import { createUser } from '../support/store.js';

const APP_ORIGIN = 'https://app.example.com';

/**
 * The API as the prod stage runs it (REQUIRE_HTTPS on by default there, CORS for one origin),
 * in a serverless-offline of its own. API Gateway sets X-Forwarded-Proto in AWS; here the
 * test plays API Gateway and sets it.
 */
describe('the prod stage over HTTP: HTTPS only, HSTS, CORS for listed origins', () => {
  const api = stageApi('prod', { CORS_ORIGINS: APP_ORIGIN });
  let user: Awaited<ReturnType<typeof createUser>>;
  beforeAll(async () => {
    user = await createUser(api.app());
  });

  const send = (path: string, init: RequestInit = {}) => fetch(`${api.url}/v1/auth${path}`, { ...init, signal: AbortSignal.timeout(20_000) });
  const https = { 'x-forwarded-proto': 'https', 'content-type': 'application/json' };

  it('refuses plain HTTP with 403 https_required, as JSON, with HSTS', async () => {
    const plain: Record<string, string>[] = [{ 'content-type': 'application/json' }, { 'content-type': 'application/json', 'x-forwarded-proto': 'http' }];
    for (const headers of plain) {
      const response = await send('/login', { method: 'POST', headers, body: JSON.stringify({ email: user.email, password: user.password }) });
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual({ success: false, error: { code: 'https_required', message: expect.any(String) } });
      expect(response.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    }
  });

  it('serves HTTPS with HSTS on every response, success or error', async () => {
    const login = await send('/login', { method: 'POST', headers: https, body: JSON.stringify({ email: user.email, password: user.password }) });
    expect(login.status).toBe(200);
    expect(login.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    const { token } = (await login.json()) as { token: string };
    const me = await send('/me', { headers: { ...https, authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    const denied = await send('/me', { headers: https });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
  });

  it('answers CORS as API Gateway does: the listed origin only, on every response and preflight, never credentials', async () => {
    // Act
    const allowed = await send('/me', { headers: { ...https, origin: APP_ORIGIN } });
    const unlisted = await send('/me', { headers: { ...https, origin: 'https://evil.example.com' } });
    const preflight = await send('/login', {
      method: 'OPTIONS',
      headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    const foreignPreflight = await send('/login', { method: 'OPTIONS', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' } });

    // Assess
    expect(allowed.status).toBe(401);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    expect(corsHeaders(unlisted)).toEqual([]);
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET,POST,DELETE,OPTIONS');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('Content-Type,Authorization');
    expect(preflight.headers.get('access-control-max-age')).toBe('600');
    expect(foreignPreflight.status).toBe(204);
    expect(corsHeaders(foreignPreflight)).toEqual([]);
    for (const response of [allowed, unlisted, preflight, foreignPreflight]) expect(response.headers.get('access-control-allow-credentials')).toBeNull();
  });
});

const corsHeaders = (response: Response) => [...response.headers.keys()].filter((name) => name.startsWith('access-control-'));
