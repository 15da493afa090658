import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../lib/auth/auth-service.js';
import { ApiError } from '../../lib/platform/errors.js';
import { loginService } from '../../lib/auth/login-service.js';
import { createUser, testApp, uniqueEmail } from '../support/store.js';
import { WAIT_FOR_IN_FLIGHT_MS } from '../../lib/store/login-attempts.js';

type TestApp = Awaited<ReturnType<typeof testApp>>;
const from = (sourceIp: string): Caller => ({ requestId: 'req', sourceIp, userAgent: 'vitest' });

async function attempt(app: TestApp, email: string, password: string, ip: string): Promise<{ code: string; retryAfter?: string } | 'ok'> {
  try {
    await loginService(app).login(email, password, from(ip));
    return 'ok';
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return { code: error.code, retryAfter: error.headers['Retry-After'] };
  }
}

async function fail(app: TestApp, email: string, ip: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) expect(await attempt(app, email, 'wrong-password', ip)).toEqual({ code: 'invalid_credentials', retryAfter: undefined });
}

describe('brute-force lockout, against dynalite with an injected clock', () => {
  it('locks an account/IP pair after 5 consecutive failures, even for the right password, until the lockout ends', async () => {
    // Prepare
    const app = await testApp();
    const user = await createUser(app);
    await fail(app, user.email, '198.51.100.1', 5);

    // Act
    const locked = await attempt(app, user.email, user.password, '198.51.100.1');

    // Assess
    expect(locked).toEqual({ code: 'too_many_attempts', retryAfter: '900' });
    app.testClock.advance(899);
    expect(await attempt(app, user.email, user.password, '198.51.100.1')).toEqual({ code: 'too_many_attempts', retryAfter: '1' });
    app.testClock.advance(1);
    expect(await attempt(app, user.email, user.password, '198.51.100.1')).toBe('ok');
  });

  it('does not let an attacker on another IP lock the real user out', async () => {
    const app = await testApp();
    const user = await createUser(app);
    await fail(app, user.email, '203.0.113.66', 5);
    expect((await attempt(app, user.email, user.password, '203.0.113.66')) as { code: string }).toMatchObject({ code: 'too_many_attempts' });
    expect(await attempt(app, user.email, user.password, '198.51.100.2')).toBe('ok');
  });

  it('resets the pair on success, so only consecutive failures count', async () => {
    const app = await testApp();
    const user = await createUser(app);
    await fail(app, user.email, '198.51.100.3', 4);
    expect(await attempt(app, user.email, user.password, '198.51.100.3')).toBe('ok');
    await fail(app, user.email, '198.51.100.3', 4);
    expect(await attempt(app, user.email, user.password, '198.51.100.3')).toBe('ok');
  });

  it('starts a stale counter again: failures further apart than the lockout do not add up', async () => {
    const app = await testApp();
    const user = await createUser(app);
    await fail(app, user.email, '198.51.100.4', 4);
    app.testClock.advance(901);
    await fail(app, user.email, '198.51.100.4', 4);
    expect(await attempt(app, user.email, user.password, '198.51.100.4')).toBe('ok');
  });

  it('locks unknown emails exactly like known ones', async () => {
    const app = await testApp();
    const ghost = uniqueEmail('ghost');
    await fail(app, ghost, '198.51.100.5', 5);
    expect(await attempt(app, ghost, 'anything-at-all', '198.51.100.5')).toEqual({ code: 'too_many_attempts', retryAfter: '900' });
  });

  it('allows at most 100 failures per account per hour across IPs, then 429 until the hour ends', async () => {
    // Prepare: 10:30:00 — the hour ends in 1800 s
    const app = await testApp();
    const user = await createUser(app);
    for (let i = 0; i < 100; i++) await fail(app, user.email, `10.0.${Math.floor(i / 4)}.${i % 4}`, 1);

    // Act
    const fresh = await attempt(app, user.email, user.password, '192.0.2.200');

    // Assess
    expect(fresh).toEqual({ code: 'too_many_attempts', retryAfter: '1800' });
    app.testClock.advance(1800);
    expect(await attempt(app, user.email, user.password, '192.0.2.200')).toBe('ok');
  });

  it('limits failures from one IP across accounts per 15 minutes (LOGIN_IP_MAX_FAILURES)', async () => {
    const app = await testApp(undefined, { LOGIN_IP_MAX_FAILURES: '10' });
    const user = await createUser(app);
    for (let i = 0; i < 10; i++) await fail(app, uniqueEmail(`spray${i}`), '198.51.100.9', 1);
    // 10:30:00 is the start of a quarter hour: 900 s to go.
    expect(await attempt(app, user.email, user.password, '198.51.100.9')).toEqual({ code: 'too_many_attempts', retryAfter: '900' });
    expect(await attempt(app, user.email, user.password, '198.51.100.10')).toBe('ok');
  });

  it('keeps counters as items with an epoch-seconds TTL attribute', async () => {
    const app = await testApp();
    const email = uniqueEmail('ttl');
    await fail(app, email, '198.51.100.11', 1);
    const { Item } = await app.db.send(new GetCommand({ TableName: app.attempts.table, Key: { pk: `PAIR#${email}#198.51.100.11` } }));
    expect(Item).toMatchObject({ failures: 1, expires_at: Math.floor(app.clock().getTime() / 1000) + 900 });
  });

  it('lets no more than 100 attempts an hour reach bcrypt for one account, however many race at once', async () => {
    // Prepare
    const app = await testApp();
    const user = await createUser(app);

    // Act: 130 guesses at the same moment, each from its own IP (no pair or IP limit applies)
    const results = await Promise.all(Array.from({ length: 130 }, (_, i) => attempt(app, user.email, 'wrong-password', `10.9.${Math.floor(i / 200)}.${i % 200}`)));

    // Assess
    const codes = results.map((result) => (result === 'ok' ? 'ok' : result.code));
    const counts = Object.fromEntries([...new Set(codes)].map((code) => [code, codes.filter((each) => each === code).length]));
    expect(counts).toEqual({ invalid_credentials: 100, too_many_attempts: 30 });
  });

  it('counts concurrent failures atomically', async () => {
    const app = await testApp(undefined, { LOGIN_MAX_FAILURES: '20' });
    const email = uniqueEmail('burst');
    await Promise.all(Array.from({ length: 12 }, () => attempt(app, email, 'wrong-password', '198.51.100.12')));
    const { Item } = await app.db.send(new GetCommand({ TableName: app.attempts.table, Key: { pk: `PAIR#${email}#198.51.100.12` } }));
    expect(Item?.failures).toBe(12);
  });

  it('holds LOGIN_MAX_FAILURES under concurrency: of 20 simultaneous wrong passwords for one pair, at most 5 reach bcrypt', async () => {
    // Prepare
    const app = await testApp();
    const user = await createUser(app);

    // Act
    const results = await Promise.all(Array.from({ length: 20 }, () => attempt(app, user.email, 'wrong-password', '198.51.100.30')));

    // Assess
    const refused = results.filter((result) => result !== 'ok' && result.code === 'too_many_attempts');
    expect(results.filter((result) => result !== 'ok' && result.code === 'invalid_credentials').length).toBeLessThanOrEqual(5);
    expect(refused.length).toBeGreaterThanOrEqual(15);
    for (const result of refused) expect(Number((result as { retryAfter: string }).retryAfter)).toBeGreaterThan(0);
    expect(await attempt(app, user.email, user.password, '198.51.100.30')).toMatchObject({ code: 'too_many_attempts' });
  });

  it('holds LOGIN_IP_MAX_FAILURES under concurrency: 20 simultaneous failures across emails from one IP, at most 5 reach bcrypt', async () => {
    const app = await testApp(undefined, { LOGIN_IP_MAX_FAILURES: '5' });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => attempt(app, uniqueEmail(`spray${i}`), 'wrong-password', '198.51.100.31')));
    expect(results.filter((result) => result !== 'ok' && result.code === 'invalid_credentials').length).toBeLessThanOrEqual(5);
    expect(results.filter((result) => result !== 'ok' && result.code === 'too_many_attempts').length).toBeGreaterThanOrEqual(15);
  });

  it('gives a successful sign-in its IP slot back, so an office behind one address is not refused for signing in', async () => {
    const app = await testApp(undefined, { LOGIN_IP_MAX_FAILURES: '3' });
    for (let i = 0; i < 6; i++) {
      const user = await createUser(app);
      expect(await attempt(app, user.email, user.password, '198.51.100.32')).toBe('ok');
    }
    await fail(app, uniqueEmail('typo'), '198.51.100.32', 3);
    expect(await attempt(app, uniqueEmail('typo'), 'wrong-password', '198.51.100.32')).toMatchObject({ code: 'too_many_attempts' });
  });

  it('does not count a request refused by one limit against the others', async () => {
    // Prepare: the pair is locked
    const app = await testApp(undefined, { LOGIN_IP_MAX_FAILURES: '8' });
    const user = await createUser(app);
    await fail(app, user.email, '198.51.100.33', 5);

    // Act: hammering the locked pair
    for (let i = 0; i < 10; i++) expect(await attempt(app, user.email, user.password, '198.51.100.33')).toMatchObject({ code: 'too_many_attempts' });

    // Assess: the IP still has 3 failures left, for other accounts
    await fail(app, uniqueEmail('other'), '198.51.100.33', 3);
    expect(await attempt(app, uniqueEmail('other'), 'wrong-password', '198.51.100.33')).toMatchObject({ code: 'too_many_attempts' });
  });

  it('restarts a stale pair once when requests race at the moment it restarts; none is counted twice', async () => {
    // Prepare: a locked pair whose lockout has ended
    const app = await testApp();
    const user = await createUser(app);
    await fail(app, user.email, '198.51.100.34', 5);
    app.testClock.advance(900);

    // Act
    const results = await Promise.all(Array.from({ length: 10 }, () => attempt(app, user.email, 'wrong-password', '198.51.100.34')));

    // Assess
    expect(results.filter((result) => result !== 'ok' && result.code === 'invalid_credentials').length).toBeLessThanOrEqual(5);
    const { Item } = await app.db.send(new GetCommand({ TableName: app.attempts.table, Key: { pk: `PAIR#${user.email}#198.51.100.34` } }));
    expect(Item?.failures).toBe(results.filter((result) => result !== 'ok' && result.code === 'invalid_credentials').length);
  });

  it('takes the per-account cap from LOGIN_ACCOUNT_MAX_FAILURES', async () => {
    const app = await testApp(undefined, { LOGIN_ACCOUNT_MAX_FAILURES: '7' });
    const user = await createUser(app);
    for (let i = 0; i < 7; i++) await fail(app, user.email, `10.1.0.${i}`, 1);
    expect(await attempt(app, user.email, user.password, '10.1.0.99')).toEqual({ code: 'too_many_attempts', retryAfter: '1800' });
  });

  it('never leaves a stub behind when a refused request gives back a slot of a pair a success has just cleared', async () => {
    // Prepare: the account's hour is used up, so the next stranger request reserves its pair slot and is
    // then refused; a success of the same pair deletes the counter in between (a SDK middleware plays it)
    const app = await testApp(undefined, { LOGIN_ACCOUNT_MAX_FAILURES: '1' });
    const user = await createUser(app);
    await fail(app, user.email, '198.51.100.35', 1);
    const pair = { pk: `PAIR#${user.email}#198.51.100.35` };
    app.db.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { TableName?: string; Key?: { pk?: string } };
        if (context.commandName === 'UpdateItemCommand' && input.Key?.pk === `USER#${user.id}`) {
          await app.db.send(new DeleteCommand({ TableName: app.attempts.table, Key: pair }));
        }
        return next(args);
      },
      { step: 'initialize', name: 'a-success-clears-the-pair' },
    );

    // Act
    const refused = await attempt(app, user.email, user.password, '198.51.100.35');

    // Assess: refused by the account cap, and no counter without expiry (or below zero) was created
    expect(refused).toMatchObject({ code: 'too_many_attempts' });
    const { Item } = await app.db.send(new GetCommand({ TableName: app.attempts.table, Key: pair }));
    expect(Item).toBeUndefined();
  });

  it('treats a counter without an expiry as stale, so a leftover item can never lock a pair for good', async () => {
    const app = await testApp();
    const user = await createUser(app);
    await app.db.send(new PutCommand({ TableName: app.attempts.table, Item: { pk: `PAIR#${user.email}#198.51.100.36`, failures: -1 } }));
    expect(await attempt(app, user.email, user.password, '198.51.100.36')).toBe('ok');
  });

  it("clears hourly counters older than a day from the user item at a failure (a reservation clears the last day's itself)", async () => {
    // Prepare: counters left from two days ago and from an hour ago
    const app = await testApp();
    const user = await createUser(app);
    const hour = Math.floor(app.clock().getTime() / 3_600_000) * 3600;
    await app.db.send(
      new UpdateCommand({
        TableName: app.users.table,
        Key: { pk: `USER#${user.id}` },
        UpdateExpression: 'SET #old = :n, #recent = :n',
        ExpressionAttributeNames: { '#old': `login_attempts_${hour - 48 * 3600}`, '#recent': `login_attempts_${hour - 3600}` },
        ExpressionAttributeValues: { ':n': 3 },
      }),
    );

    // Act
    await fail(app, user.email, '198.51.100.37', 1);

    // Assess
    const { Item } = await app.db.send(new GetCommand({ TableName: app.users.table, Key: { pk: `USER#${user.id}` } }));
    expect(Object.keys(Item!).filter((name) => name.startsWith('login_attempts_'))).toEqual([`login_attempts_${hour}`]);
    expect(Item![`login_attempts_${hour}`]).toBe(1);
  });

  it('lets 20 right passwords at once for one pair all in: a request finding the slots held by attempts in flight waits for them', async () => {
    // Prepare
    const app = await testApp();
    const user = await createUser(app);

    // Act
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => attempt(app, user.email, user.password, '198.51.100.150')));

    // Assess
    expect(outcomes).toEqual(Array(20).fill('ok'));
  });

  it('still lets at most LOGIN_MAX_FAILURES of 20 wrong passwords at once through, the rest refused once those have settled', async () => {
    // Prepare
    const app = await testApp();
    const user = await createUser(app);

    // Act
    const started = Date.now();
    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => attempt(app, user.email, `wrong-${i}`, '198.51.100.151')));
    const took = Date.now() - started;

    // Assess: refused with the lock itself (not "try again in a second"), well before the wait's bound
    const codes = outcomes.map((outcome) => (outcome === 'ok' ? 'ok' : outcome.code));
    expect(codes.filter((code) => code === 'invalid_credentials')).toHaveLength(5);
    expect(codes.filter((code) => code === 'too_many_attempts')).toHaveLength(15);
    for (const outcome of outcomes) if (outcome !== 'ok' && outcome.code === 'too_many_attempts') expect(Number(outcome.retryAfter)).toBeGreaterThan(800);
    expect(took).toBeLessThan(WAIT_FOR_IN_FLIGHT_MS);
  });

  it('lets 20 right passwords of 20 accounts at once from one address in, whatever the IP window has left', async () => {
    // Prepare
    const app = await testApp(undefined, { LOGIN_IP_MAX_FAILURES: '3' });
    const users = await Promise.all(Array.from({ length: 20 }, () => createUser(app)));

    // Act
    const outcomes = await Promise.all(users.map((user) => attempt(app, user.email, user.password, '198.51.100.152')));

    // Assess
    expect(outcomes).toEqual(Array(20).fill('ok'));
  });

  it('moves no counter for a refused attempt: 20 at once against a locked pair, a spent hour, a full IP window', async () => {
    // Prepare: a locked pair, and an account whose hour is spent, and an IP window full of failures
    const app = await testApp(undefined, { LOGIN_ACCOUNT_MAX_FAILURES: '6', LOGIN_IP_MAX_FAILURES: '12' });
    const user = await createUser(app);
    const spent = await createUser(app);
    await fail(app, user.email, '198.51.100.153', 5);
    for (let i = 0; i < 6; i++) await attempt(app, spent.email, 'wrong-password', `198.51.100.${160 + i}`);
    await fail(app, uniqueEmail('spray'), '198.51.100.154', 5);
    await fail(app, uniqueEmail('spray'), '198.51.100.154', 5);
    await fail(app, uniqueEmail('spray'), '198.51.100.154', 2);
    // Every count, an item not there being a count of 0
    const counts = (item: Record<string, unknown> | undefined) =>
      Object.fromEntries(Object.entries(item ?? {}).filter(([name]) => ['failures', 'pending', 'attempts'].includes(name) || name.startsWith('login_attempts_')).filter(([, value]) => value !== 0));
    const counters = async () => {
      const read = async (table: string, pk: string) => counts((await app.db.send(new GetCommand({ TableName: table, Key: { pk }, ConsistentRead: true }))).Item);
      const quarter = Math.floor(app.clock().getTime() / 900_000) * 900;
      return [
        await read(app.attempts.table, `PAIR#${user.email}#198.51.100.153`),
        await read(app.attempts.table, `IP#198.51.100.153#${quarter}`),
        await read(app.attempts.table, `IP#198.51.100.154#${quarter}`),
        await read(app.attempts.table, `IP#198.51.100.170#${quarter}`),
        await read(app.users.table, `USER#${user.id}`),
        await read(app.users.table, `USER#${spent.id}`),
      ];
    };
    const before = await counters();

    // Act
    const outcomes = await Promise.all([
      ...Array.from({ length: 20 }, () => attempt(app, user.email, user.password, '198.51.100.153')),
      ...Array.from({ length: 20 }, () => attempt(app, spent.email, spent.password, '198.51.100.170')),
      ...Array.from({ length: 20 }, () => attempt(app, uniqueEmail('spray'), 'wrong-password', '198.51.100.154')),
    ]);

    // Assess
    expect(outcomes.every((outcome) => outcome !== 'ok' && outcome.code === 'too_many_attempts')).toBe(true);
    expect(await counters()).toEqual(before);
  });

  it('settles a right password that owes a second factor once: its IP slot given back, not twice; the pair cleared', async () => {
    // Prepare: an admin who must enrol, and a failure from the same address just before
    const app = await testApp(undefined, { MFA_REQUIRED_ROLES: 'admin' });
    const admin = await createUser(app, { role: 'admin' });
    await fail(app, uniqueEmail('other'), '198.51.100.190', 1);

    // Act
    const challenged = await attempt(app, admin.email, admin.password, '198.51.100.190');

    // Assess: the window holds the other account's failure alone, nothing in flight; the admin's pair is gone
    const quarter = Math.floor(app.clock().getTime() / 900_000) * 900;
    const read = async (pk: string) => (await app.db.send(new GetCommand({ TableName: app.attempts.table, Key: { pk }, ConsistentRead: true }))).Item;
    expect(challenged).toMatchObject({ code: 'mfa_enrollment_required' });
    expect(await read(`IP#198.51.100.190#${quarter}`)).toMatchObject({ failures: 1, pending: 0 });
    expect(await read(`PAIR#${admin.email}#198.51.100.190`)).toBeUndefined();
  });
});
