import { describe, expect, it } from 'vitest';
import { e2eApp, requestFrom, type SourcedReply } from '../support/http.js';
import { createUser } from '../support/store.js';

function loginFrom(sourceIp: string, body: unknown, headers: Record<string, string> = {}): Promise<SourcedReply> {
  return requestFrom(sourceIp, 'POST', '/login', { body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
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
