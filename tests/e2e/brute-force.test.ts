import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { apiUrl } from '../support/context.js';
import { e2eApp } from '../support/http.js';
import { createUser } from '../support/store.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/**
 * A login sent from a chosen loopback address (127.0.0.0/8 is all ours), so that
 * serverless-offline's sourceIp — API Gateway's requestContext.http.sourceIp — differs per "client".
 */
function loginFrom(sourceIp: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const url = new URL(`${apiUrl()}/v1/auth/login`);
  const payload = JSON.stringify(body);
  return new Promise((resolveReply, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', localAddress: sourceIp, timeout: 20_000, headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolveReply({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}

describe('brute-force lockout over HTTP', () => {
  it('locks the account for the attacking IP only: 429 with Retry-After, even with the right password', async () => {
    // Prepare
    const user = await createUser(e2eApp());
    for (let i = 0; i < 5; i++) {
      expect((await loginFrom('127.0.0.21', { email: user.email, password: `guess-${i}` })).status).toBe(401);
    }

    // Act
    const locked = await loginFrom('127.0.0.21', { email: user.email, password: user.password });
    const elsewhere = await loginFrom('127.0.0.22', { email: user.email, password: user.password });

    // Assess
    expect(locked.status).toBe(429);
    expect(locked.body).toEqual({ success: false, error: { code: 'too_many_attempts', message: expect.any(String) } });
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(890);
    expect(Number(locked.headers['retry-after'])).toBeLessThanOrEqual(900);
    expect(locked.headers['content-type']).toMatch(/^application\/json/);
    expect(elsewhere.status).toBe(200);
  });

  it('takes the source IP from API Gateway, never from X-Forwarded-For', async () => {
    const user = await createUser(e2eApp());
    for (let i = 0; i < 5; i++) {
      await loginFrom('127.0.0.23', { email: user.email, password: `guess-${i}` }, { 'x-forwarded-for': `198.51.100.${i}` });
    }
    const spoofed = await loginFrom('127.0.0.23', { email: user.email, password: user.password }, { 'x-forwarded-for': '192.0.2.99' });
    expect(spoofed.status).toBe(429);
  });

  it('does not count requests rejected as invalid (400) as failed logins', async () => {
    const user = await createUser(e2eApp());
    for (let i = 0; i < 8; i++) {
      expect((await loginFrom('127.0.0.24', { email: user.email, password: i })).status).toBe(400);
    }
    expect((await loginFrom('127.0.0.24', { email: user.email, password: user.password })).status).toBe(200);
  });
});
