import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../lib/auth/auth-service.js';
import { ApiError } from '../../lib/platform/errors.js';
import { loginService, type SignIn } from '../../lib/auth/login-service.js';
import { createUser, testApp, uniqueEmail } from '../support/store.js';

type TestApp = Awaited<ReturnType<typeof testApp>>;
const from = (sourceIp: string): Caller => ({ requestId: 'req', sourceIp, userAgent: 'vitest' });

async function attempt(app: TestApp, email: string, password: string, ip: string, device?: string): Promise<SignIn | { code: string; retryAfter?: string }> {
  try {
    return await loginService(app).login(email, password, from(ip), device);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return { code: error.code, retryAfter: error.headers['Retry-After'] };
  }
}

const codeOf = (result: SignIn | { code: string }) => ('code' in result ? result.code : 'ok');

/** Strangers spend the account's hourly attempts (LOGIN_ACCOUNT_MAX_FAILURES) from many addresses. */
async function exhaustAccount(app: TestApp, email: string, cap: number): Promise<void> {
  for (let i = 0; i < cap; i++) expect(codeOf(await attempt(app, email, 'wrong-password', `10.77.${Math.floor(i / 200)}.${i % 200}`))).toBe('invalid_credentials');
}

describe('device tokens: strangers cannot lock the owner out', () => {
  it('hands out dt_ + 256 random bits at every sign-in, stored only as a hash, bound to the user, with a TTL', async () => {
    // Prepare
    const app = await testApp();
    const user = await createUser(app);

    // Act
    const signIn = (await attempt(app, user.email, user.password, '198.51.100.40')) as SignIn;

    // Assess
    expect(signIn.device_token).toMatch(/^dt_[A-Za-z0-9_-]{64}$/);
    const { Items = [] } = await app.db.send(new ScanCommand({ TableName: app.attempts.table, FilterExpression: 'begins_with(pk, :device)', ExpressionAttributeValues: { ':device': 'DEVICE#' } }));
    expect(Items).toHaveLength(1);
    expect(JSON.stringify(Items)).not.toContain(signIn.device_token.slice(3));
    expect(Items[0]).toMatchObject({ user_id: user.id, expires_at: Math.floor(app.clock().getTime() / 1000) + 31_536_000 });
  });

  it('lets the owner in with the right password and a device token once strangers have used up the account, from any address', async () => {
    // Prepare
    const app = await testApp(undefined, { LOGIN_ACCOUNT_MAX_FAILURES: '10' });
    const user = await createUser(app);
    const { device_token } = (await attempt(app, user.email, user.password, '198.51.100.41')) as SignIn;
    await exhaustAccount(app, user.email, 9);

    // Act
    const withoutDevice = await attempt(app, user.email, user.password, '198.51.100.42');
    const withDevice = await attempt(app, user.email, user.password, '192.0.2.7', device_token);
    const movedElsewhere = await attempt(app, user.email, user.password, '203.0.113.9', device_token);

    // Assess
    expect(withoutDevice).toMatchObject({ code: 'too_many_attempts' });
    expect(Number((withoutDevice as { retryAfter: string }).retryAfter)).toBeGreaterThan(0);
    expect(withDevice).toMatchObject({ token_type: 'Bearer', device_token });
    expect(movedElsewhere).toMatchObject({ token_type: 'Bearer', device_token });
  });

  it('does not apply the IP cap to a request with a live device token', async () => {
    const app = await testApp(undefined, { LOGIN_IP_MAX_FAILURES: '3' });
    const user = await createUser(app);
    const { device_token } = (await attempt(app, user.email, user.password, '198.51.100.43')) as SignIn;
    for (let i = 0; i < 3; i++) await attempt(app, uniqueEmail('spray'), 'wrong-password', '198.51.100.44');
    expect(codeOf(await attempt(app, user.email, user.password, '198.51.100.44'))).toBe('too_many_attempts');
    expect(codeOf(await attempt(app, user.email, user.password, '198.51.100.44', device_token))).toBe('ok');
  });

  it('counts failures with a device token against that token alone: locked after LOGIN_MAX_FAILURES, no one else affected', async () => {
    // Prepare
    const app = await testApp(undefined, { LOGIN_ACCOUNT_MAX_FAILURES: '3' });
    const user = await createUser(app);
    const { device_token } = (await attempt(app, user.email, user.password, '198.51.100.45')) as SignIn;
    const other = (await attempt(app, user.email, user.password, '198.51.100.46')) as SignIn;

    // Act: five failures with the token (the account cap of 3 does not count them)
    for (let i = 0; i < 5; i++) expect(codeOf(await attempt(app, user.email, 'wrong-password', `198.51.100.${50 + i}`, device_token))).toBe('invalid_credentials');
    const locked = await attempt(app, user.email, user.password, '198.51.100.45', device_token);

    // Assess
    expect(locked).toEqual({ code: 'too_many_attempts', retryAfter: '900' });
    expect(codeOf(await attempt(app, user.email, user.password, '198.51.100.45', other.device_token))).toBe('ok');
    expect(codeOf(await attempt(app, user.email, user.password, '198.51.100.47'))).toBe('ok');
    app.testClock.advance(900);
    expect(codeOf(await attempt(app, user.email, user.password, '198.51.100.45', device_token))).toBe('ok');
  });

  it('holds the device lock under concurrency: of 20 simultaneous wrong passwords with one token, at most 5 reach bcrypt', async () => {
    const app = await testApp();
    const user = await createUser(app);
    const { device_token } = (await attempt(app, user.email, user.password, '198.51.100.48')) as SignIn;
    const results = await Promise.all(Array.from({ length: 20 }, () => attempt(app, user.email, 'wrong-password', '198.51.100.48', device_token)));
    expect(results.filter((result) => codeOf(result) === 'invalid_credentials').length).toBeLessThanOrEqual(5);
    expect(results.filter((result) => codeOf(result) === 'too_many_attempts').length).toBeGreaterThanOrEqual(15);
  });

  it('returns the same token while more than half its fixed life is left, then a fresh one; none is honoured past DEVICE_TOKEN_TTL_SECONDS from its first issue', async () => {
    // Prepare
    const app = await testApp(undefined, { DEVICE_TOKEN_TTL_SECONDS: '3600', LOGIN_ACCOUNT_MAX_FAILURES: '3' });
    const user = await createUser(app);
    const { device_token: first } = (await attempt(app, user.email, user.password, '198.51.100.49')) as SignIn;

    // Act: used at 25 minutes (same token), at 35 minutes (a fresh one), then the first at 61 minutes
    app.testClock.advance(1500);
    const early = (await attempt(app, user.email, user.password, '198.51.100.49', first)) as SignIn;
    app.testClock.advance(600);
    const late = (await attempt(app, user.email, user.password, '198.51.100.49', first)) as SignIn;
    app.testClock.advance(1560);
    for (let i = 0; i < 4; i++) await attempt(app, user.email, 'wrong-password', `10.78.0.${i}`);
    const expired = await attempt(app, user.email, user.password, '198.51.100.50', first);
    const fresh = await attempt(app, user.email, user.password, '198.51.100.50', late.device_token);

    // Assess: the first token's life was never extended by its use; the fresh one carries the daily user on
    expect(early.device_token).toBe(first);
    expect(late.device_token).not.toBe(first);
    expect(codeOf(expired)).toBe('too_many_attempts');
    expect(fresh).toMatchObject({ token_type: 'Bearer', device_token: late.device_token });
  });

  it.each([
    ['unknown', (_: TestApp, token: string) => `dt_${token.slice(3, -4)}AAAA`],
    ['malformed', () => 'dt_not-a-token'],
    ['empty', () => ''],
    ["another user's", (_: TestApp, __: string, otherToken: string) => otherToken],
  ])('treats an %s device token as absent: no error, no hint, the stranger limits apply', async (_, make) => {
    // Prepare
    const app = await testApp(undefined, { LOGIN_ACCOUNT_MAX_FAILURES: '4' });
    const user = await createUser(app);
    const other = await createUser(app);
    const { device_token } = (await attempt(app, user.email, user.password, '198.51.100.60')) as SignIn;
    const { device_token: otherToken } = (await attempt(app, other.email, other.password, '198.51.100.60')) as SignIn;
    const presented = make(app, device_token, otherToken);

    // Act
    const success = await attempt(app, user.email, user.password, '198.51.100.61', presented);
    await exhaustAccount(app, user.email, 2);
    const capped = await attempt(app, user.email, user.password, '198.51.100.62', presented);

    // Assess: a new token for the success; the account cap applies to the rest
    expect(success).toMatchObject({ token_type: 'Bearer' });
    expect((success as SignIn).device_token).not.toBe(presented);
    expect(capped).toMatchObject({ code: 'too_many_attempts' });
  });

  it('treats an expired device token as absent', async () => {
    const app = await testApp(undefined, { DEVICE_TOKEN_TTL_SECONDS: '600', LOGIN_ACCOUNT_MAX_FAILURES: '2' });
    const user = await createUser(app);
    const { device_token } = (await attempt(app, user.email, user.password, '198.51.100.63')) as SignIn;
    app.testClock.advance(600);
    await exhaustAccount(app, user.email, 1);
    expect(codeOf(await attempt(app, user.email, user.password, '198.51.100.64', device_token))).toBe('too_many_attempts');
  });

  it.each([
    ['set-password', (app: TestApp, id: string) => app.users.setPasswordHash(id, '$2b$04$abcdefghijklmnopqrstuuGZ4V7lQyQ1m3y3uY1dH3j2g0m1n2o3p', app.clock())],
    ['disable', (app: TestApp, id: string) => app.users.setStatus(id, 'disabled', app.clock()).then(() => app.users.setStatus(id, 'active', app.clock()))],
    ['revoke-sessions', (app: TestApp, id: string) => app.users.revokeAllSessions(id, app.clock())],
  ])('ends device tokens on %s', async (_, end) => {
    // Prepare
    const app = await testApp(undefined, { LOGIN_ACCOUNT_MAX_FAILURES: '2' });
    const user = await createUser(app);
    const { device_token } = (await attempt(app, user.email, user.password, '198.51.100.65')) as SignIn;

    // Act
    await end(app, user.id);
    await exhaustAccount(app, user.email, 1);

    // Assess: the token no longer lifts the account cap
    expect(codeOf(await attempt(app, user.email, 'wrong-password', '198.51.100.66', device_token))).toBe('too_many_attempts');
  });

  it('never skips another check: a device token with a wrong password or for a disabled user is invalid_credentials', async () => {
    const app = await testApp();
    const user = await createUser(app);
    const { device_token } = (await attempt(app, user.email, user.password, '198.51.100.67')) as SignIn;
    expect(codeOf(await attempt(app, user.email, 'wrong-password', '198.51.100.67', device_token))).toBe('invalid_credentials');
    await app.users.setStatus(user.id, 'disabled', app.clock());
    expect(codeOf(await attempt(app, user.email, user.password, '198.51.100.67', device_token))).toBe('invalid_credentials');
  });
});
