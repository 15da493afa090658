import { describe, expect, it } from 'vitest';
import { apiUrl } from '../support/context.js';
import { stageApi } from '../support/stage-api.js';

const corsHeaders = (response: Response) => [...response.headers.keys()].filter((name) => name.startsWith('access-control-'));
const send = (base: string, path: string, init: RequestInit = {}) => fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(30_000) });

/** The local stack answers as API Gateway would: what a user of `npm start` sees is what AWS shows. */
describe('the local stack behaves like API Gateway', () => {
  it('sends no Access-Control-* header at all with CORS_ORIGINS unset, whatever the Origin, on success, error and OPTIONS', async () => {
    // Act
    const responses = [
      await send(apiUrl(), '/v1/auth/login', { method: 'POST', headers: { origin: 'https://anywhere.example.com', 'content-type': 'application/json' }, body: '{}' }),
      await send(apiUrl(), '/v1/auth/me', { headers: { origin: 'http://localhost:5173' } }),
      await send(apiUrl(), '/v1/auth/login', { method: 'OPTIONS', headers: { origin: 'https://anywhere.example.com', 'access-control-request-method': 'POST' } }),
    ];

    // Assess: and the function's own Content-Type, as API Gateway passes it (no charset added)
    for (const response of responses) expect(corsHeaders(response)).toEqual([]);
    expect(responses.map((response) => response.status)).toEqual([400, 401, 404]);
    for (const response of responses) expect(response.headers.get('content-type')).toBe('application/json');
  });

  it.each([
    ['an unknown path', 'GET', '/v1/auth/nothing-here'],
    ['the root', 'GET', '/'],
    ['a known path with another method', 'GET', '/v1/auth/login'],
    ['DELETE on a known path', 'DELETE', '/v1/auth/me'],
    ['a path outside the API', 'POST', '/admin'],
    ['a form posted to a path outside the API', 'POST', '/v1/upload'],
  ])('answers %s with 404 not_found in our error shape, listing nothing', async (_label, method, path) => {
    const init = method === 'POST' ? { method, body: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } } : { method };
    const response = await send(apiUrl(), path, init);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toEqual({ success: false, error: { code: 'not_found', message: expect.any(String) } });
  });
});

/**
 * A function that runs out of time: an API of its own whose Lambdas have a 1 s timeout and whose
 * bcrypt costs ~1 s, so that a sign-in cannot finish in time. API Gateway never answers 200 with
 * an error's internals; ours answers 503 in our JSON before the timeout (the platform's 500 is the
 * backstop).
 */
describe('a function past its timeout', () => {
  const api = stageApi('slow', { BCRYPT_COST: '14' }, { params: ['lambdaTimeout=1'] });

  it('answers an error status with a JSON body and no internals, never 200 and a stack trace', async () => {
    // Prepare: an email with no user, so the password is compared with the decoy at the stage's cost (14)
    const email = `nobody-${Date.now()}@example.com`;

    // Act
    const responses = await Promise.all(
      Array.from({ length: 3 }, () => send(api.url, '/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'wrong-password' }) })),
    );

    // Assess
    for (const response of responses) {
      const text = await response.text();
      expect(response.status, text).toBeGreaterThanOrEqual(500);
      expect(JSON.parse(text)).toEqual(response.status === 503 ? { success: false, error: { code: 'service_unavailable', message: expect.any(String) } } : { message: 'Internal Server Error' });
      expect(text).not.toMatch(/stack|Error:|\.js:\d+|LambdaTimeout/);
    }
    expect(responses.some((response) => response.status === 503)).toBe(true);
  });
});
