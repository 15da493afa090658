import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import type { App } from '../../lib/app.js';
import { TOTP_PERIOD_SECONDS } from '../../lib/mfa/totp.js';
import { deviceKey, parseDeviceToken } from '../../lib/store/device-tokens.js';
import { Authenticator } from '../support/authenticator.js';
import { runScript } from '../support/cli.js';
import { apiEnv } from '../support/context.js';
import { attemptsItem, clearOfWindowEnd, deviceTokenItem, hourAttribute, ipWindowPk, mfaTokenItem, pairPk, userItem } from '../support/counters.js';
import { e2eApp, requestFrom, type SourcedReply } from '../support/http.js';
import { stageApi } from '../support/stage-api.js';
import { createUser } from '../support/store.js';

/**
 * Issue 17 over HTTP: a second factor, a session's current password and a device token are held
 * to counters only their holder can move (lib/auth/credentials.ts), never to the ones strangers
 * can fill; attempts in flight are waited for; a refused attempt moves no counter.
 * Every client here has its own loopback address in 127.0.170.0–127.0.179.255.
 */

/** Where requests go: the e2e stack (defaults) or a stage API of its own. */
interface Stack {
  app(): App;
  env(): Record<string, string>;
  /** Undefined: the e2e stack. */
  readonly url: string | undefined;
}

const defaults: Stack = { app: e2eApp, env: apiEnv, url: undefined };

const outcome = (reply: SourcedReply) => (reply.status === 200 ? '200' : `${reply.status} ${reply.body?.error?.code}`);
const retryAfter = (reply: SourcedReply) => Number(reply.headers['retry-after']);
const sidOf = (token: string) => decodeJwt(token).sid as string;
const count = (replies: SourcedReply[], wanted: string) => replies.filter((reply) => outcome(reply) === wanted).length;

/** One request from `ip` (validated against openapi.yaml by requestFrom). */
function send(stack: Stack, ip: string, method: 'POST' | 'DELETE', path: string, { body, token }: { body?: unknown; token?: string } = {}): Promise<SourcedReply> {
  return requestFrom(ip, method, path, {
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    baseUrl: stack.url,
  });
}

function signIn(stack: Stack, ip: string, email: string, password: string, deviceToken?: string): Promise<SourcedReply> {
  return send(stack, ip, 'POST', '/login', { body: { email, password, ...(deviceToken === undefined ? {} : { device_token: deviceToken }) } });
}

/** The right password of a user with TOTP: the challenge's mfa_token. */
async function challenge(stack: Stack, ip: string, user: { email: string; password: string }, deviceToken?: string): Promise<string> {
  const reply = await signIn(stack, ip, user.email, user.password, deviceToken);
  expect(outcome(reply), reply.text).toBe('401 mfa_required');
  return reply.body.mfa_token as string;
}

function verify(stack: Stack, ip: string, mfaToken: string, proof: { code: string } | { recovery_code: string }): Promise<SourcedReply> {
  return send(stack, ip, 'POST', '/mfa/verify', { body: { mfa_token: mfaToken, ...proof } });
}

/** The authenticator's next code (never a step used before), waiting for the next step when the window has none left. */
async function nextCode(app: Authenticator): Promise<string> {
  for (;;) {
    try {
      return await app.next();
    } catch {
      await new Promise((done) => setTimeout(done, TOTP_PERIOD_SECONDS * 1000 - (Date.now() % (TOTP_PERIOD_SECONDS * 1000)) + 100));
    }
  }
}

/** A new user with TOTP on, enrolled over HTTP from `ip` with real codes; the session that enrolled stays. */
async function enrolled(stack: Stack, ip: string) {
  const user = await createUser(stack.app());
  const session = await signIn(stack, ip, user.email, user.password);
  expect(session.status, session.text).toBe(200);
  const setup = await send(stack, ip, 'POST', '/mfa/totp/setup', { token: session.body.token, body: { current_password: user.password } });
  expect(setup.status, setup.text).toBe(200);
  const app = new Authenticator(setup.body.secret);
  const activated = await send(stack, ip, 'POST', '/mfa/totp/activate', { token: session.body.token, body: { code: await nextCode(app) } });
  expect(activated.status, activated.text).toBe(200);
  return { user, app, token: session.body.token as string, recoveryCodes: activated.body.recovery_codes as string[] };
}

/** `npm run users -- unlock --email E` against the stack's tables. */
async function unlock(stack: Stack, email: string): Promise<void> {
  const result = await runScript('scripts/users.ts', ['unlock', '--email', email], { env: stack.env() });
  expect(result.code, result.stderr).toBe(0);
  expect(result.stdout).toContain(`Unlocked ${email}`);
}

describe('§1 strangers who spend the account\'s limits never refuse its owner\'s device token, second factor or session', () => {
  it('after 100 wrong passwords from 20 addresses: the device token still gets its challenge (6 times, never locked), the right code signs in, the session changes the password', async () => {
    // Prepare: the owner enrols, signs in with both factors (a live device token, and a session from before the attack)
    await clearOfWindowEnd(3600, 60);
    const { user, app } = await enrolled(defaults, '127.0.170.1');
    const signedIn = await verify(defaults, '127.0.170.1', await challenge(defaults, '127.0.170.1', user), { code: await nextCode(app) });
    expect(signedIn.status, signedIn.text).toBe(200);
    const deviceToken = signedIn.body.device_token as string;
    const session = signedIn.body.token as string;

    // Act: strangers, 5 wrong passwords from each of 20 addresses (each address one after the other, the addresses at once)
    const strangers = (
      await Promise.all(
        Array.from({ length: 20 }, async (_, address) => {
          const replies: SourcedReply[] = [];
          for (let i = 0; i < 5; i++) replies.push(await signIn(defaults, `127.0.171.${address + 1}`, user.email, `guess-${address}-${i}`));
          return replies;
        }),
      )
    ).flat();
    const strangerWithPassword = await signIn(defaults, '127.0.171.21', user.email, user.password);

    // Assess: the account's hour is spent: even the right password without a device token is refused
    for (const reply of strangers) expect(['401 invalid_credentials', '429 too_many_attempts']).toContain(outcome(reply));
    expect(count(strangers, '401 invalid_credentials')).toBeGreaterThanOrEqual(95);
    expect(outcome(strangerWithPassword)).toBe('429 too_many_attempts');
    expect(retryAfter(strangerWithPassword)).toBeGreaterThan(0);

    // Act: the owner, with the device token, 6 times with the right password (each owes a second factor)
    const retries: SourcedReply[] = [];
    for (let i = 0; i < 6; i++) retries.push(await signIn(defaults, '127.0.170.2', user.email, user.password, deviceToken));

    // Assess: a right password is no failure of the device token: the 6th is still a challenge, not 429
    expect(retries.map(outcome)).toEqual(Array(6).fill('401 mfa_required'));

    // Act: the second factor, then a wrong and a right current password from the session of before
    const verified = await verify(defaults, '127.0.170.2', retries[5]!.body.mfa_token, { code: await nextCode(app) });
    const wrongCurrent = await send(defaults, '127.0.170.2', 'POST', '/password', { token: session, body: { current_password: 'not the password', new_password: 'a fresh and long passphrase' } });
    const changed = await send(defaults, '127.0.170.2', 'POST', '/password', { token: session, body: { current_password: user.password, new_password: 'a fresh and long passphrase' } });

    // Assess: none of them is held to the spent hour
    expect(verified.status, verified.text).toBe(200);
    expect(decodeJwt(verified.body.token).amr).toEqual(['pwd', 'otp']);
    expect(verified.body.device_token).toMatch(/^dt_/);
    expect(outcome(wrongCurrent)).toBe('401 invalid_credentials');
    expect(changed.status, changed.text).toBe(200);
  }, 150_000);
});

describe('§2 wrong second factors are counted for the account (MFA_MAX_FAILURES=10 in a row, across tokens and addresses)', () => {
  it('locks TOTP codes at the 10th wrong one for MFA_LOCKOUT_SECONDS (3600): the right code is 429 too; a recovery code still signs in and ends the lock', async () => {
    // Prepare
    const { user, app, token: session, recoveryCodes } = await enrolled(defaults, '127.0.172.1');
    const tokens = [await challenge(defaults, '127.0.172.1', user), await challenge(defaults, '127.0.172.2', user), await challenge(defaults, '127.0.172.3', user)];

    // Act: 10 wrong codes: 4 on the first token, 3 on each of the others, each token from its own address
    const wrongs: SourcedReply[] = [];
    for (const [index, tries] of [4, 3, 3].entries()) {
      for (let i = 0; i < tries; i++) wrongs.push(await verify(defaults, `127.0.172.${index + 1}`, tokens[index]!, { code: app.wrong() }));
    }
    const rightCode = await nextCode(app);
    const eleventh = await verify(defaults, '127.0.172.3', tokens[2]!, { code: rightCode });

    // Assess: every wrong one 401; then even the right code is refused, for the lock's hour
    expect(wrongs.map(outcome)).toEqual(Array(10).fill('401 invalid_mfa_code'));
    expect(outcome(eleventh)).toBe('429 too_many_attempts');
    expect(retryAfter(eleventh)).toBeGreaterThan(3500);
    expect(retryAfter(eleventh)).toBeLessThanOrEqual(3600);

    // Act: a right password from a fresh address is still a challenge; its right code is refused, as
    // is turning TOTP off with it from a session
    const locked = await challenge(defaults, '127.0.172.4', user);
    const refused = await verify(defaults, '127.0.172.4', locked, { code: rightCode });
    const turnOff = await send(defaults, '127.0.172.4', 'DELETE', '/mfa/totp', { token: session, body: { code: rightCode } });
    expect(outcome(refused)).toBe('429 too_many_attempts');
    expect(retryAfter(refused)).toBeGreaterThan(3500);
    expect(outcome(turnOff)).toBe('429 too_many_attempts');

    // Act: a recovery code, during the lock
    const recovered = await verify(defaults, '127.0.172.4', locked, { recovery_code: recoveryCodes[0]! });

    // Assess: it signs in, and the lock is over: the next sign-in with a code of a fresh step gets in
    expect(recovered.status, recovered.text).toBe(200);
    expect(recovered.body.recovery_codes_left).toBe(9);
    const after = await verify(defaults, '127.0.172.5', await challenge(defaults, '127.0.172.5', user), { code: await nextCode(app) });
    expect(after.status, after.text).toBe(200);
  }, 120_000);

  it('holds under 20 wrong codes at once on 4 tokens from 4 addresses: at most 10 are checked, the right code is then 429; the users CLI\'s unlock ends the lock', async () => {
    // Prepare: 4 fresh tokens, each from an address of its own
    const { user, app } = await enrolled(defaults, '127.0.172.11');
    const ips = ['127.0.172.11', '127.0.172.12', '127.0.172.13', '127.0.172.14'];
    const tokens = await Promise.all(ips.map((ip) => challenge(defaults, ip, user)));

    // Act: 5 wrong codes on each token, all 20 at once
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => verify(defaults, ips[i % 4]!, tokens[i % 4]!, { code: app.wrong() })));

    // Assess
    expect(count(replies, '401 invalid_mfa_code')).toBeLessThanOrEqual(10);
    for (const reply of replies) expect(['401 invalid_mfa_code', '429 too_many_attempts', '401 invalid_mfa_token']).toContain(outcome(reply));
    const code = await nextCode(app);
    const fresh = await challenge(defaults, '127.0.172.15', user);
    const lockedOut = await verify(defaults, '127.0.172.15', fresh, { code });
    expect(outcome(lockedOut)).toBe('429 too_many_attempts');
    expect(retryAfter(lockedOut)).toBeGreaterThan(3500);

    // Act: the operator unlocks the account
    await unlock(defaults, user.email);
    const unlocked = await verify(defaults, '127.0.172.15', fresh, { code: await nextCode(app) });

    // Assess
    expect(unlocked.status, unlocked.text).toBe(200);
  }, 120_000);
});


describe('a replayed code is a wrong code, nothing more', () => {
  it('leaves the mfa_token its other attempts, and the device token presented at the sign-in live', async () => {
    // Prepare: a code accepted once, and a sign-in with the device token that sign-in handed out
    const ip = '127.0.170.30';
    const { user, app } = await enrolled(defaults, ip);
    const code = await nextCode(app);
    const signedIn = await verify(defaults, ip, await challenge(defaults, ip, user), { code });
    expect(signedIn.status, signedIn.text).toBe(200);
    const deviceToken = signedIn.body.device_token as string;
    const mfaToken = await challenge(defaults, ip, user, deviceToken);

    // Act
    const replayed = await verify(defaults, ip, mfaToken, { code });
    const deviceAfterReplay = await deviceTokenItem(defaults.app(), deviceToken);
    const right = await verify(defaults, ip, mfaToken, { code: await nextCode(app) });

    // Assess
    expect(outcome(replayed)).toBe('401 invalid_mfa_code');
    expect(deviceAfterReplay).toMatchObject({ user_id: user.id });
    expect(right.status, right.text).toBe(200);
  });
});

describe('§3 a request that finds the last slots held by attempts in flight waits for them', () => {
  it('lets 20 right passwords at once for one account from one address all in, though the pair has LOGIN_MAX_FAILURES=5 slots', async () => {
    // Prepare
    const user = await createUser(e2eApp());

    // Act
    const replies = await Promise.all(Array.from({ length: 20 }, () => signIn(defaults, '127.0.173.1', user.email, user.password)));

    // Assess
    expect(replies.map(outcome)).toEqual(Array(20).fill('200'));
  });

  it('still holds 20 wrong passwords at once to LOGIN_MAX_FAILURES: at most 5 invalid_credentials, the rest 429 once they have settled', async () => {
    // Prepare
    const user = await createUser(e2eApp());

    // Act
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => signIn(defaults, '127.0.173.2', user.email, `guess-${i}`)));

    // Assess: the refused ones waited for the five in flight, and were told the pair's lock
    expect(count(replies, '401 invalid_credentials')).toBeGreaterThanOrEqual(1);
    expect(count(replies, '401 invalid_credentials')).toBeLessThanOrEqual(5);
    expect(count(replies, '401 invalid_credentials') + count(replies, '429 too_many_attempts')).toBe(20);
    for (const reply of replies.filter((candidate) => candidate.status === 429)) expect(retryAfter(reply)).toBeGreaterThan(890);
  });
});

describe('§4 a refused attempt moves no counter', () => {
  it('a locked pair refuses 20 more wrong passwords at once, and its pair, its IP window and the account\'s hour stay as they were', async () => {
    // Prepare: 5 wrong passwords from one address lock the pair
    await clearOfWindowEnd(900, 30);
    const app = e2eApp();
    const user = await createUser(app);
    const ip = '127.0.174.1';
    for (let i = 0; i < 5; i++) expect(outcome(await signIn(defaults, ip, user.email, `guess-${i}`))).toBe('401 invalid_credentials');
    const keys = { pair: pairPk(user.email, ip), window: ipWindowPk(ip), hour: hourAttribute() };
    const read = async () => ({ pair: await attemptsItem(app, keys.pair), window: await attemptsItem(app, keys.window), hour: (await userItem(app, user.id))?.[keys.hour] });
    const before = await read();
    expect(before).toMatchObject({ pair: { failures: 5 }, window: { failures: 5 }, hour: 5 });

    // Act
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => signIn(defaults, ip, user.email, `again-${i}`)));

    // Assess
    expect(replies.map(outcome)).toEqual(Array(20).fill('429 too_many_attempts'));
    for (const reply of replies) expect(retryAfter(reply)).toBeGreaterThan(890);
    expect(await read()).toEqual(before);
  });
});

describe('§5 the current code for new recovery codes, the current password for a TOTP set-up by a session', () => {
  it('POST /mfa/recovery-codes: 400 without a code, 401 invalid_mfa_code for a wrong one, 10 new codes for the right one (once)', async () => {
    // Prepare: a session signed in with a code
    const ip = '127.0.175.1';
    const { user, app, recoveryCodes } = await enrolled(defaults, ip);
    const otp = await verify(defaults, ip, await challenge(defaults, ip, user), { code: await nextCode(app) });
    expect(otp.status, otp.text).toBe(200);
    const renew = (body?: unknown) => send(defaults, ip, 'POST', '/mfa/recovery-codes', { token: otp.body.token, body });

    // Act
    const withoutBody = await renew();
    const withoutCode = await renew({});
    const wrong = await renew({ code: app.wrong() });
    const code = await nextCode(app);
    const renewed = await renew({ code });
    const replayed = await renew({ code });

    // Assess
    expect(outcome(withoutBody)).toBe('400 invalid_request');
    expect(outcome(withoutCode)).toBe('400 invalid_request');
    expect(outcome(wrong)).toBe('401 invalid_mfa_code');
    expect(renewed.status, renewed.text).toBe(200);
    expect(new Set(renewed.body.recovery_codes).size).toBe(10);
    for (const old of recoveryCodes) expect(renewed.body.recovery_codes).not.toContain(old);
    // The code's step was spent by the replacement: the same code cannot mint another set
    expect(outcome(replayed)).toBe('401 invalid_mfa_code');
  });

  it('POST /mfa/totp/setup with a Bearer token: 400 without current_password, 401 for a wrong one, 429 after 5 wrong for that session only', async () => {
    // Prepare: two sessions of one user without TOTP
    const ip = '127.0.175.2';
    const user = await createUser(e2eApp());
    const [first, second] = [await signIn(defaults, ip, user.email, user.password), await signIn(defaults, ip, user.email, user.password)];
    const setup = (token: string, body?: unknown) => send(defaults, ip, 'POST', '/mfa/totp/setup', { token, body });

    // Act
    const withoutBody = await setup(first.body.token);
    const withoutPassword = await setup(first.body.token, {});
    const wrongs: SourcedReply[] = [];
    for (let i = 0; i < 5; i++) wrongs.push(await setup(first.body.token, { current_password: `wrong-${i}` }));
    const locked = await setup(first.body.token, { current_password: user.password });
    const other = await setup(second.body.token, { current_password: user.password });
    const signInHere = await signIn(defaults, ip, user.email, user.password);

    // Assess: the count is the session's own: the other session sets up, and the address's pair never counted them
    expect(outcome(withoutBody)).toBe('400 invalid_request');
    expect(outcome(withoutPassword)).toBe('400 invalid_request');
    expect(wrongs.map(outcome)).toEqual(Array(5).fill('401 invalid_credentials'));
    expect(outcome(locked)).toBe('429 too_many_attempts');
    expect(retryAfter(locked)).toBeGreaterThan(890);
    expect(other.status, other.text).toBe(200);
    expect(other.body.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(signInHere.status, signInHere.text).toBe(200);
  });

  it('holds 20 wrong current passwords at once on a TOTP set-up to the session\'s 5: at most 5 are checked, the rest 429', async () => {
    // Prepare
    const ip = '127.0.175.3';
    const user = await createUser(e2eApp());
    const session = await signIn(defaults, ip, user.email, user.password);

    // Act
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => send(defaults, ip, 'POST', '/mfa/totp/setup', { token: session.body.token, body: { current_password: `wrong-${i}` } })));
    const right = await send(defaults, ip, 'POST', '/mfa/totp/setup', { token: session.body.token, body: { current_password: user.password } });

    // Assess
    expect(count(replies, '401 invalid_credentials')).toBeLessThanOrEqual(5);
    expect(count(replies, '401 invalid_credentials') + count(replies, '429 too_many_attempts')).toBe(20);
    expect(outcome(right)).toBe('429 too_many_attempts');
  });

  it('holds 20 wrong codes at once for new recovery codes to the account\'s MFA_MAX_FAILURES=10; then the right code is 429 too', async () => {
    // Prepare: a session signed in with a code
    const ip = '127.0.175.4';
    const { user, app } = await enrolled(defaults, ip);
    const otp = await verify(defaults, ip, await challenge(defaults, ip, user), { code: await nextCode(app) });
    expect(otp.status, otp.text).toBe(200);

    // Act
    const replies = await Promise.all(Array.from({ length: 20 }, () => send(defaults, ip, 'POST', '/mfa/recovery-codes', { token: otp.body.token, body: { code: app.wrong() } })));
    const right = await send(defaults, ip, 'POST', '/mfa/recovery-codes', { token: otp.body.token, body: { code: await nextCode(app) } });

    // Assess
    expect(count(replies, '401 invalid_mfa_code')).toBeLessThanOrEqual(10);
    expect(count(replies, '401 invalid_mfa_code') + count(replies, '429 too_many_attempts')).toBe(20);
    expect(outcome(right)).toBe('429 too_many_attempts');
    expect(retryAfter(right)).toBeGreaterThan(3500);
  });
});

describe('§8 device tokens', () => {
  it('ending a session (DELETE /sessions/{id}, or a local logout) ends the device token handed out with it: a locked pair refuses that token, a twin\'s still gets in', async () => {
    // Prepare: three users, each signed in twice from an address of its own (the first sign-in's device token kept)
    const users = await Promise.all([createUser(e2eApp()), createUser(e2eApp()), createUser(e2eApp())]);
    const ips = ['127.0.176.1', '127.0.176.2', '127.0.176.3'];
    const firsts: SourcedReply[] = [];
    const seconds: SourcedReply[] = [];
    for (const [i, user] of users.entries()) {
      firsts.push(await signIn(defaults, ips[i]!, user.email, user.password));
      seconds.push(await signIn(defaults, ips[i]!, user.email, user.password));
    }
    for (const reply of [...firsts, ...seconds]) expect(reply.status, reply.text).toBe(200);

    // Act: the first session of the first user ended from the second; the second user's logs out; the twin's stands
    const ended = await send(defaults, ips[0]!, 'DELETE', `/sessions/${sidOf(firsts[0]!.body.token)}`, { token: seconds[0]!.body.token });
    const loggedOut = await send(defaults, ips[1]!, 'POST', '/logout', { token: firsts[1]!.body.token, body: {} });
    // then 5 wrong passwords from each owner's address lock its pair
    for (const [i, user] of users.entries()) {
      for (let n = 0; n < 5; n++) expect(outcome(await signIn(defaults, ips[i]!, user.email, `guess-${n}`))).toBe('401 invalid_credentials');
    }
    const withDevice = await Promise.all(users.map((user, i) => signIn(defaults, ips[i]!, user.email, user.password, firsts[i]!.body.device_token)));

    // Assess
    expect(ended.status, ended.text).toBe(200);
    expect(loggedOut.status, loggedOut.text).toBe(200);
    expect(withDevice.map(outcome)).toEqual(['429 too_many_attempts', '429 too_many_attempts', '200']);
    expect(withDevice[2]!.body.device_token).toBe(firsts[2]!.body.device_token);
  });

  it('keeps a device token\'s life fixed from its first issue; a sign-in with one past half its life hands out a new one', async () => {
    // Prepare
    const app = e2eApp();
    const ip = '127.0.176.10';
    const user = await createUser(app);
    const first = await signIn(defaults, ip, user.email, user.password);
    const deviceToken = first.body.device_token as string;
    const issued = (await deviceTokenItem(app, deviceToken))!;
    await new Promise((done) => setTimeout(done, 1100));

    // Act: used again a second later
    const again = await signIn(defaults, ip, user.email, user.password, deviceToken);

    // Assess: the same token, its end where it was
    expect(again.body.device_token).toBe(deviceToken);
    expect(await deviceTokenItem(app, deviceToken)).toMatchObject({ created_at: issued.created_at, expires_at: issued.expires_at });

    // Prepare: as if it had been issued 60% of its life ago
    const life = issued.expires_at - Math.floor(Date.parse(issued.created_at) / 1000);
    const shift = Math.ceil(life * 0.6);
    await app.db.send(
      new UpdateCommand({
        TableName: app.config.attemptsTable,
        Key: deviceKey(parseDeviceToken(deviceToken)!.hash),
        UpdateExpression: 'SET created_at = :created, expires_at = :expires',
        ExpressionAttributeValues: { ':created': new Date(Date.parse(issued.created_at) - shift * 1000).toISOString(), ':expires': issued.expires_at - shift },
      }),
    );

    // Act
    const aging = await signIn(defaults, ip, user.email, user.password, deviceToken);
    const renewed = aging.body.device_token as string;
    const next = await signIn(defaults, ip, user.email, user.password, renewed);

    // Assess: a new token, with a whole life of its own, kept by the next sign-in
    expect(aging.status, aging.text).toBe(200);
    expect(renewed).toMatch(/^dt_/);
    expect(renewed).not.toBe(deviceToken);
    const fresh = (await deviceTokenItem(app, renewed))!;
    expect(fresh.expires_at - Math.floor(Date.parse(fresh.created_at) / 1000)).toBe(life);
    expect(Math.abs(Date.parse(fresh.created_at) - Date.now())).toBeLessThan(60_000);
    expect(next.body.device_token).toBe(renewed);
  });
});

/**
 * Limits small enough to reach, on an API of its own: 3 wrong second factors in a row lock them
 * (TOTP codes for 60 s), an address has 3 failures per 15 minutes, an account 10 attempts an hour.
 */
describe('on a stage with small limits (MFA_MAX_FAILURES=3, MFA_LOCKOUT_SECONDS=60, LOGIN_IP_MAX_FAILURES=3, LOGIN_ACCOUNT_MAX_FAILURES=10)', () => {
  const api = stageApi('codes', { MFA_MAX_FAILURES: '3', MFA_LOCKOUT_SECONDS: '60', LOGIN_IP_MAX_FAILURES: '3', LOGIN_ACCOUNT_MAX_FAILURES: '10' });
  let app: App | undefined;
  const stage: Stack = {
    app: () => (app ??= api.app()),
    env: () => api.env(),
    get url() {
      return api.url;
    },
  };

  it('§3 lets 20 right passwords at once for 20 accounts from one address all in, though the address has 3 slots', async () => {
    // Prepare: 20 users, signed in at once from 20 addresses first, so that the burst below meets
    // warm Lambdas (20 cold starts at once on a small machine outlast the wait for slots in flight)
    const users = await Promise.all(Array.from({ length: 20 }, () => createUser(stage.app())));
    const warm = await Promise.all(users.map((user, i) => signIn(stage, `127.0.177.${101 + i}`, user.email, user.password)));
    expect(warm.map(outcome)).toEqual(Array(20).fill('200'));

    // Act
    const replies = await Promise.all(users.map((user) => signIn(stage, '127.0.177.1', user.email, user.password)));

    // Assess
    expect(replies.map(outcome)).toEqual(Array(20).fill('200'));
  });

  it('§4 an account whose hour is spent refuses 20 more at once from 20 addresses, and its hour, their pairs and their windows stay as they were', async () => {
    // Prepare: 10 wrong passwords from 10 addresses spend the hour
    await clearOfWindowEnd(900, 40);
    const user = await createUser(stage.app());
    const wrongs = await Promise.all(Array.from({ length: 10 }, (_, i) => signIn(stage, `127.0.178.${i + 1}`, user.email, `guess-${i}`)));
    expect(wrongs.map(outcome)).toEqual(Array(10).fill('401 invalid_credentials'));
    expect(outcome(await signIn(stage, '127.0.178.11', user.email, user.password))).toBe('429 too_many_attempts');
    const ips = Array.from({ length: 20 }, (_, i) => `127.0.179.${i + 1}`);
    const hour = hourAttribute();
    const read = async () => ({
      hour: (await userItem(stage.app(), user.id))?.[hour],
      // A counter that is not there and one at zero are the same counter
      addresses: await Promise.all(
        ips.map(async (ip) => {
          const [pair, window] = await Promise.all([attemptsItem(stage.app(), pairPk(user.email, ip)), attemptsItem(stage.app(), ipWindowPk(ip))]);
          return [pair?.failures ?? 0, pair?.pending ?? 0, window?.failures ?? 0, window?.pending ?? 0].map(Number);
        }),
      ),
    });
    const before = await read();
    expect(before.hour).toBe(10);

    // Act
    const replies = await Promise.all(ips.map((ip, i) => signIn(stage, ip, user.email, `again-${i}`)));

    // Assess
    expect(replies.map(outcome)).toEqual(Array(20).fill('429 too_many_attempts'));
    for (const reply of replies) expect(retryAfter(reply)).toBeGreaterThan(0);
    expect(await read()).toEqual(before);
  });

  it('§4 a TOTP lock refuses 20 codes at once on 4 fresh tokens, and the account\'s count and the tokens\' attempts stay as they were', async () => {
    // Prepare: 3 wrong codes lock TOTP; 4 fresh tokens (a right password is still a challenge)
    const ip = '127.0.177.20';
    const { user, app: authenticator } = await enrolled(stage, ip);
    const first = await challenge(stage, ip, user);
    for (let i = 0; i < 3; i++) expect(outcome(await verify(stage, ip, first, { code: authenticator.wrong() }))).toBe('401 invalid_mfa_code');
    const tokens: string[] = [];
    for (let i = 0; i < 4; i++) tokens.push(await challenge(stage, ip, user));
    const code = await nextCode(authenticator);
    const read = async () => {
      const item = (await userItem(stage.app(), user.id))!;
      return {
        account: { code_failures: item.code_failures, code_locked_until: item.code_locked_until, code_locks: item.code_locks, recovery_failures: item.recovery_failures },
        tokens: await Promise.all(tokens.map(async (token) => (await mfaTokenItem(stage.app(), token))?.attempts)),
      };
    };
    const before = await read();
    expect(before).toMatchObject({ account: { code_failures: 3 }, tokens: [0, 0, 0, 0] });

    // Act: 5 on each token, the right code and wrong ones, all at once
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => verify(stage, ip, tokens[i % 4]!, { code: i % 2 === 0 ? code : authenticator.wrong() })));

    // Assess
    expect(replies.map(outcome)).toEqual(Array(20).fill('429 too_many_attempts'));
    for (const reply of replies) expect(retryAfter(reply)).toBeGreaterThan(0);
    for (const reply of replies) expect(retryAfter(reply)).toBeLessThanOrEqual(60);
    expect(await read()).toEqual(before);
  });

  it('§2 locks recovery codes at the 3rd wrong one in a row, the right one refused too, until the users CLI\'s unlock', async () => {
    // Prepare
    const ip = '127.0.177.30';
    const { user, recoveryCodes } = await enrolled(stage, ip);
    const mfaToken = await challenge(stage, ip, user);

    // Act
    const wrongs: SourcedReply[] = [];
    for (let i = 0; i < 3; i++) wrongs.push(await verify(stage, ip, mfaToken, { recovery_code: 'abcd-efgh-jkmn' }));
    const refused = await verify(stage, ip, await challenge(stage, ip, user), { recovery_code: recoveryCodes[0]! });
    await unlock(stage, user.email);
    const unlocked = await verify(stage, ip, await challenge(stage, ip, user), { recovery_code: recoveryCodes[0]! });

    // Assess
    expect(wrongs.map(outcome)).toEqual(Array(3).fill('401 invalid_mfa_code'));
    expect(outcome(refused)).toBe('429 too_many_attempts');
    expect(retryAfter(refused)).toBeGreaterThan(0);
    expect(unlocked.status, unlocked.text).toBe(200);
    expect(unlocked.body.recovery_codes_left).toBe(9);
  });
});
