import { describe, expect, it } from 'vitest';
import { e2eApp, requestFrom, type SourcedReply } from '../support/http.js';
import { stageApi } from '../support/stage-api.js';
import { createUser, uniqueEmail } from '../support/store.js';

function loginFrom(sourceIp: string, body: unknown, headers: Record<string, string> = {}, baseUrl?: string): Promise<SourcedReply> {
  return requestFrom(sourceIp, 'POST', '/login', { body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers }, baseUrl });
}

const codeOf = (reply: SourcedReply) => (reply.status === 200 ? 'ok' : (reply.body?.error?.code as string));

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

  it('holds LOGIN_MAX_FAILURES=5 under concurrency: 20 simultaneous wrong passwords from one IP, at most 5 invalid_credentials, the rest 429 with Retry-After', async () => {
    // Prepare
    const user = await createUser(e2eApp());

    // Act
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => loginFrom('127.0.0.25', { email: user.email, password: `guess-${i}` })));

    // Assess
    const codes = replies.map(codeOf);
    expect(codes.filter((code) => code === 'invalid_credentials').length).toBeLessThanOrEqual(5);
    expect(codes.filter((code) => code !== 'invalid_credentials').every((code) => code === 'too_many_attempts')).toBe(true);
    for (const reply of replies.filter((candidate) => candidate.status === 429)) expect(Number(reply.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });
});

/**
 * The limits that need small numbers to reach (the per-IP cap, the account's hourly cap), on an
 * API of their own: LOGIN_IP_MAX_FAILURES=5, LOGIN_ACCOUNT_MAX_FAILURES=10, every client on its
 * own loopback address.
 */
describe('per-IP and per-account caps, and device tokens, over HTTP', () => {
  const api = stageApi('limits', { LOGIN_IP_MAX_FAILURES: '5', LOGIN_ACCOUNT_MAX_FAILURES: '10' });
  const limitsApp = () => api.app();
  const from = (sourceIp: string, body: unknown) => loginFrom(sourceIp, body, {}, api.url);

  it('holds LOGIN_IP_MAX_FAILURES under concurrency: 20 simultaneous failures across emails from one IP, at most 5 invalid_credentials', async () => {
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => from('127.0.1.30', { email: uniqueEmail(`spray${i}`), password: 'wrong-password' })));
    const codes = replies.map(codeOf);
    expect(codes.filter((code) => code === 'invalid_credentials').length).toBeLessThanOrEqual(5);
    expect(codes.filter((code) => code !== 'invalid_credentials').every((code) => code === 'too_many_attempts')).toBe(true);
    for (const reply of replies.filter((candidate) => candidate.status === 429)) expect(Number(reply.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('lets the owner in with the device token of an earlier sign-in once strangers have used up the account, from any address; without it, 429', async () => {
    // Prepare: the owner signs in once (and keeps the device token), then strangers on 10 addresses use up the hour
    const user = await createUser(limitsApp());
    const first = await from('127.0.1.40', { email: user.email, password: user.password });
    expect(first.status).toBe(200);
    const deviceToken = first.body.device_token as string;
    expect(deviceToken).toMatch(/^dt_[A-Za-z0-9_-]{64}$/);
    for (let i = 0; i < 9; i++) expect(codeOf(await from(`127.0.1.${50 + i}`, { email: user.email, password: `guess-${i}` }))).toBe('invalid_credentials');

    // Act
    const withoutDevice = await from('127.0.1.41', { email: user.email, password: user.password });
    const withDevice = await from('127.0.1.42', { email: user.email, password: user.password, device_token: deviceToken });
    const movedAgain = await from('127.0.1.43', { email: user.email, password: user.password, device_token: deviceToken });

    // Assess
    expect(withoutDevice.status).toBe(429);
    expect(codeOf(withoutDevice)).toBe('too_many_attempts');
    expect(Number(withoutDevice.headers['retry-after'])).toBeGreaterThan(0);
    expect(withDevice.status).toBe(200);
    expect(withDevice.body.device_token).toBe(deviceToken);
    expect(movedAgain.status).toBe(200);
  });

  it('locks a device token after 5 failures with it, affecting no one else; failures never return a device token', async () => {
    const user = await createUser(limitsApp());
    const { device_token: deviceToken } = (await from('127.0.1.60', { email: user.email, password: user.password })).body;
    for (let i = 0; i < 5; i++) {
      const failed = await from(`127.0.1.${61 + i}`, { email: user.email, password: `guess-${i}`, device_token: deviceToken });
      expect(codeOf(failed)).toBe('invalid_credentials');
      expect(failed.text).not.toContain('dt_');
    }
    const locked = await from('127.0.1.66', { email: user.email, password: user.password, device_token: deviceToken });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(890);
    expect((await from('127.0.1.67', { email: user.email, password: user.password })).status).toBe(200);
  });

  it('holds a device token\'s lock and the account\'s hourly cap under concurrency: 20 at once each, over HTTP', async () => {
    // Prepare
    const owner = await createUser(limitsApp());
    const { device_token: deviceToken } = (await from('127.0.1.80', { email: owner.email, password: owner.password })).body;
    const target = await createUser(limitsApp());

    // Act: 20 wrong passwords with one device token; 20 from 20 addresses at one account (cap 10 an hour)
    const [withDevice, strangers] = await Promise.all([
      Promise.all(Array.from({ length: 20 }, (_, i) => from(`127.0.1.${81 + (i % 4)}`, { email: owner.email, password: `guess-${i}`, device_token: deviceToken }))),
      Promise.all(Array.from({ length: 20 }, (_, i) => from(`127.0.2.${10 + i}`, { email: target.email, password: `guess-${i}` }))),
    ]);

    // Assess
    expect(withDevice.map(codeOf).filter((code) => code === 'invalid_credentials').length).toBeLessThanOrEqual(5);
    expect(withDevice.map(codeOf).filter((code) => code !== 'invalid_credentials').every((code) => code === 'too_many_attempts')).toBe(true);
    expect(strangers.map(codeOf).filter((code) => code === 'invalid_credentials').length).toBeLessThanOrEqual(10);
    expect(strangers.map(codeOf).filter((code) => code !== 'invalid_credentials').every((code) => code === 'too_many_attempts')).toBe(true);
    for (const reply of [...withDevice, ...strangers].filter((candidate) => candidate.status === 429)) expect(Number(reply.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('refuses a device_token that is not a string with 400, and ignores one that is no live token', async () => {
    const user = await createUser(limitsApp());
    for (const bad of [42, null, ['dt_x'], { token: 'dt_x' }, true]) {
      const reply = await from('127.0.1.70', { email: user.email, password: user.password, device_token: bad });
      expect(reply.status).toBe(400);
      expect(codeOf(reply)).toBe('invalid_request');
    }
    for (const ignored of ['', 'dt_unknown', `dt_${'A'.repeat(64)}`, 'x'.repeat(2000)]) {
      expect((await from('127.0.1.71', { email: user.email, password: user.password, device_token: ignored })).status).toBe(200);
    }
  });
});
