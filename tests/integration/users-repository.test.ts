import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { EmailTakenError, UserNotFoundError } from '../../lib/store/users.js';
import { createUser, testApp, uniqueEmail } from '../support/store.js';

type TestApp = Awaited<ReturnType<typeof testApp>>;

describe('UsersRepository against dynalite', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await testApp();
  });

  it('creates a user and finds it by id and by email, case- and space-insensitively', async () => {
    // Prepare
    const email = uniqueEmail('Mixed.Case');

    // Act
    const created = await createUser(app, { email: `  ${email.toUpperCase()} ` });

    // Assess
    expect(created).toMatchObject({ id: expect.stringMatching(/^usr_[A-Za-z0-9_-]{22}$/), email: email.toLowerCase(), status: 'active', lastLogin: null, sessionEpoch: 0 });
    expect(created.createdAt).toBe(app.clock().toISOString());
    expect(await app.users.get(created.id)).toMatchObject({ id: created.id, email: email.toLowerCase() });
    expect((await app.users.findByEmail(email))?.id).toBe(created.id);
    expect((await app.users.findByEmail(` ${email.toUpperCase()}`))?.id).toBe(created.id);
    expect(await app.users.findByEmail(uniqueEmail('nobody'))).toBeUndefined();
  });

  it('refuses a second user with the same email, whatever its case', async () => {
    const first = await createUser(app);
    await expect(createUser(app, { email: first.email.toUpperCase() })).rejects.toBeInstanceOf(EmailTakenError);
  });

  it('lets exactly one of many concurrent creations with one email win', async () => {
    // Prepare
    const email = uniqueEmail('race');

    // Act
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => createUser(app, { email, name: `racer ${i}` })));

    // Assess
    const winners = results.filter((result) => result.status === 'fulfilled');
    const losers = results.filter((result) => result.status === 'rejected');
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(19);
    for (const loser of losers) expect((loser as PromiseRejectedResult).reason).toBeInstanceOf(EmailTakenError);
    const winner = (winners[0] as PromiseFulfilledResult<{ id: string }>).value;
    expect((await app.users.findByEmail(email))?.id).toBe(winner.id);
    const listed = (await app.users.list()).filter((user) => user.email === email);
    expect(listed).toHaveLength(1);
  });

  it('stores only a bcrypt hash, never the password', async () => {
    const user = await createUser(app, { password: 'a-very-secret-password' });
    const { Item } = await app.db.send(new GetCommand({ TableName: app.users.table, Key: { pk: `USER#${user.id}` } }));
    expect(JSON.stringify(Item)).not.toContain('a-very-secret-password');
    expect(Item?.password_hash).toMatch(/^\$2[aby]\$04\$/);
  });

  it('records the last login in an item of its own, read back with the user', async () => {
    // Prepare
    const user = await createUser(app);
    app.testClock.advance(60);

    // Act
    const write = app.users.lastLoginWrite(user.id, app.clock());
    await app.db.send(new PutCommand({ TableName: write.table, Item: write.put }));

    // Assess
    expect((await app.users.get(user.id))?.lastLogin).toBe(app.clock().toISOString());
    expect((await app.users.list()).find((listed) => listed.id === user.id)?.lastLogin).toBe(app.clock().toISOString());
  });

  it('rehashes a password only over the hash and session epoch it read', async () => {
    // Prepare: a set-password lands between the login's read and its rehash
    const user = await createUser(app);
    const read = (await app.users.get(user.id))!;
    await app.users.setPasswordHash(user.id, '$2b$04$abcdefghijklmnopqrstuuGZ4V7lQyQ1m3y3uY1dH3j2g0m1n2o3p', app.clock());

    // Act
    const written = await app.users.rehashPassword(user.id, read, '$2b$05$rehashrehashrehashrehuGZ4V7lQyQ1m3y3uY1dH3j2g0m1n2o3p');

    // Assess: the new password stays
    expect(written).toBe(false);
    expect((await app.users.get(user.id))?.passwordHash).toBe('$2b$04$abcdefghijklmnopqrstuuGZ4V7lQyQ1m3y3uY1dH3j2g0m1n2o3p');
    const current = (await app.users.get(user.id))!;
    expect(await app.users.rehashPassword(user.id, current, '$2b$05$rehashrehashrehashrehuGZ4V7lQyQ1m3y3uY1dH3j2g0m1n2o3p')).toBe(true);
  });

  it('ends every session when a user is disabled, when the password changes and on revoke-all; enabling does not revive them', async () => {
    const user = await createUser(app);
    const disabled = await app.users.setStatus(user.id, 'disabled', app.clock());
    expect(disabled).toMatchObject({ status: 'disabled', sessionEpoch: 1 });
    const enabled = await app.users.setStatus(user.id, 'active', app.clock());
    expect(enabled).toMatchObject({ status: 'active', sessionEpoch: 1 });
    const newPassword = await app.users.setPasswordHash(user.id, '$2b$04$abcdefghijklmnopqrstuuGZ4V7lQyQ1m3y3uY1dH3j2g0m1n2o3p', app.clock());
    expect(newPassword.sessionEpoch).toBe(2);
    expect((await app.users.revokeAllSessions(user.id, app.clock())).sessionEpoch).toBe(3);
  });

  it('reports an unknown user instead of creating one on update', async () => {
    await expect(app.users.setStatus('usr_AAAAAAAAAAAAAAAAAAAAAA', 'disabled', app.clock())).rejects.toBeInstanceOf(UserNotFoundError);
    expect(await app.users.get('usr_AAAAAAAAAAAAAAAAAAAAAA')).toBeUndefined();
  });

  it('lists users oldest first, without email items', async () => {
    const fresh = await testApp();
    const a = await createUser(fresh, { email: uniqueEmail('a') });
    fresh.testClock.advance(1);
    const b = await createUser(fresh, { email: uniqueEmail('b') });
    expect((await fresh.users.list()).map((user) => user.id)).toEqual([a.id, b.id]);
  });
});
