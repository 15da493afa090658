import { randomBytes } from 'node:crypto';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Caller } from '../../lib/auth/auth-service.js';
import { ApiKeyService, apiKeyService } from '../../lib/auth/api-key-service.js';
import { checkApiKey } from '../../lib/auth/credentials.js';
import { loginService } from '../../lib/auth/login-service.js';
import { newApiKey, newApiKeyId as newApiKeyIdOf, parseApiKeyId } from '../../lib/platform/ids.js';
import { apiKeySlotKey } from '../../lib/store/api-keys.js';
import type { Role } from '../../lib/store/users.js';
import { logger } from '../../lib/platform/log.js';
import { captureLog } from '../support/log-capture.js';
import { countCalls, createUser, testApp } from '../support/store.js';

const caller: Caller = { requestId: 'req', sourceIp: '198.51.100.20', userAgent: 'vitest' };

async function signedIn(env: Record<string, string> = {}, role: Role = 'user') {
  const app = await testApp(undefined, env);
  const user = await createUser(app, { role });
  const { token } = await loginService(app).login(user.email, user.password, caller);
  return { app, user, token, service: apiKeyService(app), check: (key: string) => checkApiKey(app, key) };
}

describe('API keys: made, listed, revoked', () => {
  it('makes a key shown once, stored as a hash, listed newest first with its hint, and checked with the lower role', async () => {
    // Prepare
    const { app, user, token, service, check } = await signedIn({}, 'admin');

    // Act
    const first = await service.create(token, { name: 'backup', expiresInDays: 30, role: 'user' }, caller);
    app.testClock.advance(60);
    const second = await service.create(token, { name: 'deploy', expiresInDays: 90, role: undefined }, caller);
    const listed = await service.list(token, caller);

    // Assess
    expect(first.api_key).toEqual({ id: expect.stringMatching(/^ak_/), name: 'backup', role: 'user', created_at: '2026-01-15T10:30:00.000Z', expires_at: '2026-02-14T10:30:00.000Z', last_used_at: null });
    expect(second.api_key.role).toBe('admin');
    expect(listed.map((key) => key.name)).toEqual(['deploy', 'backup']);
    expect(listed[1]).toEqual({ ...first.api_key, hint: first.key.slice(-4) });
    const { slot } = parseApiKeyId(first.api_key.id)!;
    const item = (await app.apiKeys.slots(user.id, 10)).get(slot)!;
    expect(JSON.stringify(item)).not.toContain(first.key.slice(4, -6));
    expect((await check(first.key)).role).toBe('user');
    expect((await check(second.key)).role).toBe('admin');
    // The owner demoted: the admin key acts as a user from its next use
    await app.db.send(new UpdateCommand({ TableName: app.config.usersTable, Key: { pk: `USER#${user.id}` }, UpdateExpression: 'SET #r = :u', ExpressionAttributeNames: { '#r': 'role' }, ExpressionAttributeValues: { ':u': 'user' } }));
    expect((await check(second.key)).role).toBe('user');
  });

  it('refuses a role above the owner\'s, and a second factor is due for TOTP users and listed roles', async () => {
    const { token, service } = await signedIn();
    await expect(service.create(token, { name: 'x', expiresInDays: 1, role: 'admin' }, caller)).rejects.toMatchObject({ code: 'invalid_request' });
    // A password-only session of a role listed since it began
    const secret = randomBytes(32).toString('base64url');
    const before = await signedIn({ JWT_SECRET: secret });
    const listed = await testApp(undefined, { JWT_SECRET: secret, STAGE: before.app.config.stage, MFA_REQUIRED_ROLES: 'user' });
    await expect(apiKeyService(listed).create(before.token, { name: 'x', expiresInDays: 1, role: undefined }, caller)).rejects.toMatchObject({ code: 'otp_session_required' });
    await expect(before.service.create(before.token, { name: 'x', expiresInDays: 1, role: undefined }, caller)).resolves.toBeDefined();
  });

  it('revokes: refused at once; 200 again for an ended key; one 404 for unknown, malformed and another user\'s', async () => {
    // Prepare
    const { app, token, service, check } = await signedIn();
    const made = await service.create(token, { name: 'ci', expiresInDays: 30, role: undefined }, caller);
    const other = await signedIn();
    const theirs = await other.service.create(other.token, { name: 'theirs', expiresInDays: 30, role: undefined }, caller);

    // Act
    await service.revoke(token, made.api_key.id, caller);

    // Assess
    await expect(check(made.key)).rejects.toMatchObject({ code: 'invalid_token', status: 401 });
    await expect(service.revoke(token, made.api_key.id, caller)).resolves.toBeUndefined();
    for (const id of [theirs.api_key.id, 'ak_nope', '', `${made.api_key.id.slice(0, -1)}A`]) {
      await expect(service.revoke(token, id, caller), id).rejects.toMatchObject({ code: 'api_key_not_found', status: 404 });
    }
    await expect(other.check(theirs.key)).resolves.toBeDefined();
    expect(await service.list(token, caller)).toEqual([]);
    expect(app).toBeDefined();
  });

  it('answers 200 again for an ended key whose slot has since been given to a later key, and 404 still for an id the user never had', async () => {
    // Prepare: one slot, so every new key takes the slot of the one before
    const { user, token, service } = await signedIn({ MAX_API_KEYS_PER_USER: '1' });
    const first = await service.create(token, { name: 'first', expiresInDays: 30, role: undefined }, caller);
    await service.revoke(token, first.api_key.id, caller);
    const second = await service.create(token, { name: 'second', expiresInDays: 30, role: undefined }, caller);
    await service.revoke(token, second.api_key.id, caller);
    const third = await service.create(token, { name: 'third', expiresInDays: 30, role: undefined }, caller);
    const { slot } = parseApiKeyId(third.api_key.id)!;

    // Act
    const again = await Promise.all([first, second].map((made) => service.revoke(token, made.api_key.id, caller)));

    // Assess
    expect(again).toEqual([undefined, undefined]);
    const [listed] = await service.list(token, caller);
    expect(listed!.id).toBe(third.api_key.id);
    await expect(service.revoke(token, newApiKeyIdOf(user.id, slot), caller)).rejects.toMatchObject({ code: 'api_key_not_found', status: 404 });
  });

  it('lists every key that still works after MAX_API_KEYS_PER_USER is lowered, and counts a key ended by the epoch as ended', async () => {
    // Prepare: three keys under a limit of 3, then the stage's limit lowered to 1
    const { app, user, token, service } = await signedIn({ MAX_API_KEYS_PER_USER: '3' });
    const made = await Promise.all(['a', 'b', 'c'].map((name) => service.create(token, { name, expiresInDays: 30, role: undefined }, caller)));
    const lowered = new ApiKeyService({ ...app, config: { ...app.config, maxApiKeysPerUser: 1 } });

    // Act
    const listed = await lowered.list(token, caller);
    const refused = await lowered.create(token, { name: 'd', expiresInDays: 30, role: undefined }, caller).catch((error: { code: string }) => error.code);
    const ended = await app.users.revokeAllApiKeys(user.id, app.clock());
    const wasLive = await app.apiKeys.revokeById(ended, made[0]!.api_key.id, app.clock());

    // Assess
    expect(listed.map((key) => key.name).sort()).toEqual(['a', 'b', 'c']);
    expect(refused).toBe('api_key_limit');
    expect(wasLive).toBe(false);
  });

  it('never lets a creation that read an older api_key_epoch replace a later epoch\'s live key', async () => {
    // Prepare: the user's one slot holds a live key of epoch 1
    const { app, user, token, service } = await signedIn({ MAX_API_KEYS_PER_USER: '1' });
    await app.users.revokeAllApiKeys(user.id, app.clock());
    const live = await service.create(token, { name: 'live', expiresInDays: 30, role: undefined }, caller);

    // Act: a creation that read the user before the epoch moved
    const stale = await app.apiKeys.create(
      { userId: user.id, mint: (slot) => ({ id: newApiKeyIdOf(user.id, slot), keyHash: 'x', hint: 'xxxx' }), name: 'stale', role: 'user', apiKeyEpoch: 0, expiresAt: Math.floor(app.clock().getTime() / 1000) + 60 },
      1,
      app.clock(),
    );

    // Assess
    expect(stale).toBeUndefined();
    expect((await service.list(token, caller)).map((key) => key.id)).toEqual([live.api_key.id]);
  });

  it('keeps MAX_API_KEYS_PER_USER under 20 concurrent creations, and frees a slot by revocation', async () => {
    // Prepare
    const { token, service } = await signedIn({ MAX_API_KEYS_PER_USER: '5' });

    // Act
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => service.create(token, { name: `k${i}`, expiresInDays: 1, role: undefined }, caller)));

    // Assess
    const made = results.filter((result) => result.status === 'fulfilled');
    const refused = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    expect(made).toHaveLength(5);
    expect(refused.map((result) => result.reason.code)).toEqual(Array(15).fill('api_key_limit'));
    expect(await service.list(token, caller)).toHaveLength(5);
    const [first] = await service.list(token, caller);
    await service.revoke(token, first!.id, caller);
    await expect(service.create(token, { name: 'again', expiresInDays: 1, role: undefined }, caller)).resolves.toBeDefined();
    await expect(service.create(token, { name: 'over', expiresInDays: 1, role: undefined }, caller)).rejects.toMatchObject({ code: 'api_key_limit' });
  });

  it('ends every key of a user with one write (api_key_epoch); a password change or a global logout does not', async () => {
    const { app, user, token, service, check } = await signedIn();
    const a = await service.create(token, { name: 'a', expiresInDays: 30, role: undefined }, caller);
    await app.auth.logout(token, 'global', caller);
    await app.users.setPasswordHash(user.id, user.passwordHash, app.clock());
    await expect(check(a.key)).resolves.toBeDefined();
    await app.users.revokeAllApiKeys(user.id, app.clock());
    await expect(check(a.key)).rejects.toMatchObject({ code: 'invalid_token' });
    // Its slot is free again
    const { token: fresh } = await loginService(app).login(user.email, user.password, caller);
    expect(await service.list(fresh, caller)).toEqual([]);
  });

  it('refuses an expired key by the clock (TTL deletes late), and a disabled owner\'s key while disabled', async () => {
    const { app, user, token, service, check } = await signedIn();
    const made = await service.create(token, { name: 'a', expiresInDays: 1, role: undefined }, caller);
    app.testClock.advance(86_399);
    await expect(check(made.key)).resolves.toBeDefined();
    await app.users.setStatus(user.id, 'disabled', app.clock());
    await expect(check(made.key)).rejects.toMatchObject({ code: 'invalid_token' });
    await app.users.setStatus(user.id, 'active', app.clock());
    await expect(check(made.key)).resolves.toBeDefined();
    app.testClock.advance(1);
    await expect(check(made.key)).rejects.toMatchObject({ code: 'invalid_token' });
  });

  it('refuses a forged key of a real slot (right checksum, wrong secret; or another key id of that slot)', async () => {
    const { user, token, service, check } = await signedIn();
    const made = await service.create(token, { name: 'a', expiresInDays: 1, role: undefined }, caller);
    const forged = newApiKey(made.api_key.id).key;
    const otherId = newApiKey(newApiKeyIdOf(user.id, parseApiKeyId(made.api_key.id)!.slot)).key;
    await expect(check(forged)).rejects.toMatchObject({ code: 'invalid_token' });
    await expect(check(otherId)).rejects.toMatchObject({ code: 'invalid_token' });
    await expect(check(made.key)).resolves.toBeDefined();
  });

  it('writes last_used_at at most once an hour per key', async () => {
    // Prepare
    const { app, user, token, service, check } = await signedIn();
    const made = await service.create(token, { name: 'a', expiresInDays: 30, role: undefined }, caller);
    const counter = countCalls(app);

    // Act and assess: the first use writes it; uses within the hour do not
    await check(made.key);
    expect(counter.calls).toEqual(['BatchGetItemCommand', 'UpdateItemCommand']);
    counter.reset();
    app.testClock.advance(1800);
    await check(made.key);
    await check(made.key);
    expect(counter.calls).toEqual(['BatchGetItemCommand', 'BatchGetItemCommand']);
    expect((await service.list(token, caller))[0]!.last_used_at).toBe('2026-01-15T10:30:00.000Z');
    app.testClock.advance(1801);
    counter.reset();
    await check(made.key);
    expect(counter.calls).toEqual(['BatchGetItemCommand', 'UpdateItemCommand']);
    expect((await service.list(token, caller))[0]!.last_used_at).toBe('2026-01-15T11:30:01.000Z');
    // Two processes that both saw an old value: the condition lets one write through
    const { slot } = parseApiKeyId(made.api_key.id)!;
    const key = (await app.apiKeys.slots(user.id, 10)).get(slot)!;
    app.testClock.advance(3601);
    expect(await Promise.all([app.apiKeys.touch(key, app.clock()), app.apiKeys.touch(key, app.clock())])).toEqual(expect.arrayContaining([true, false]));
  });

  it('does not fail a good key when recording its use fails', async () => {
    const { app, token, service, check } = await signedIn();
    const made = await service.create(token, { name: 'a', expiresInDays: 30, role: undefined }, caller);
    app.db.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UpdateItemCommand') throw Object.assign(new Error('denied'), { name: 'AccessDeniedException' });
        return next(args);
      },
      { step: 'initialize', name: 'fail-updates' },
    );
    await expect(check(made.key)).resolves.toMatchObject({ role: 'user' });
  });
});

describe('API keys: the audit trail', () => {
  // The tests run at WARN; these lines are INFO.
  afterEach(() => {
    vi.restoreAllMocks();
    logger.setLogLevel('WARN');
  });

  it('writes creation, a refused use (with the key id when the key is well formed) and revocation, never the key', async () => {
    // Prepare
    const { user, token, service } = await signedIn();
    logger.setLogLevel('INFO');
    const lines = captureLog();

    // Act
    const made = await service.create(token, { name: 'ci', expiresInDays: 30, role: undefined }, caller);
    await service.revoke(token, made.api_key.id, caller);
    await service.bearer(made.key, { caller }).catch(() => undefined);
    await service.bearer(`${made.key.slice(0, -6)}AAAAAA`, { caller }).catch(() => undefined);
    await service.bearer(newApiKey(made.api_key.id).key, { caller }).catch(() => undefined);

    // Assess
    const logged = lines();
    expect(logged.find((line) => line.message === 'api_key_created')).toMatchObject({ userId: user.id, keyId: made.api_key.id, role: 'user', requestId: 'req' });
    expect(logged.find((line) => line.message === 'api_key_revoked')).toMatchObject({ userId: user.id, keyId: made.api_key.id, wasLive: true, by: 'user' });
    const refused = logged.filter((line) => line.message === 'api_key_refused');
    expect(refused).toEqual([
      expect.objectContaining({ reason: 'revoked', keyId: made.api_key.id, userId: user.id, sourceIp: caller.sourceIp }),
      expect.objectContaining({ reason: 'malformed' }),
      // A forged key of a real slot: the user id is only what the key claims
      expect.objectContaining({ reason: 'unknown_key', claimedUserId: user.id }),
    ]);
    expect(refused[1]).not.toHaveProperty('keyId');
    expect(refused[2]).not.toHaveProperty('userId');
    expect(JSON.stringify(logged)).not.toContain(made.key.slice(4, -6));
  });
});

describe('API keys: DynamoDB round trips', () => {
  it('checks a key in one call (plus one write at most once an hour); a bad checksum costs none', async () => {
    // Prepare
    const { app, token, service } = await signedIn();
    const made = await service.create(token, { name: 'a', expiresInDays: 30, role: undefined }, caller);
    const counter = countCalls(app);
    const bearer = (value: string) => service.bearer(value).then(() => undefined, (error: { code: string }) => error.code);

    // Act
    const firstUse = await bearer(made.key).then(() => [...counter.calls]);
    counter.reset();
    const warm = await bearer(made.key).then(() => [...counter.calls]);
    counter.reset();
    const me = await service.me(made.key).then(() => [...counter.calls]);
    counter.reset();
    const badChecksum = await bearer(`${made.key.slice(0, -6)}AAAAAA`);
    const noise = await bearer('vak_0123456789');
    const badCalls = [...counter.calls];
    const slotKey = apiKeySlotKey('x', 0);

    // Assess
    expect(firstUse).toEqual(['BatchGetItemCommand', 'UpdateItemCommand']);
    expect(warm).toEqual(['BatchGetItemCommand']);
    expect(me).toEqual(['BatchGetItemCommand']);
    expect([badChecksum, noise]).toEqual(['invalid_token', 'invalid_token']);
    expect(badCalls).toEqual([]);
    expect(slotKey.pk).toBe('APIKEY#x#0');
  });

  it('creates in two calls, lists in two, revokes in two (the session check, then the slots)', async () => {
    const { app, token, service } = await signedIn();
    const counter = countCalls(app);
    const made = await service.create(token, { name: 'a', expiresInDays: 30, role: undefined }, caller);
    const create = [...counter.calls];
    counter.reset();
    await service.list(token, caller);
    const list = [...counter.calls];
    counter.reset();
    await service.revoke(token, made.api_key.id, caller);
    const revoke = [...counter.calls];
    counter.reset();
    await service.revoke(token, 'ak_malformed', caller).catch(() => undefined);
    expect(create).toEqual(['BatchGetItemCommand', 'BatchGetItemCommand', 'PutItemCommand']);
    expect(list).toEqual(['BatchGetItemCommand', 'BatchGetItemCommand']);
    expect(revoke).toEqual(['BatchGetItemCommand', 'UpdateItemCommand']);
    expect(counter.calls).toEqual(['BatchGetItemCommand']);
  });
});
