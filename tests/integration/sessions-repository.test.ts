import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { newSessionId } from '../../lib/platform/ids.js';
import { epochSeconds, isSessionLive, type Session } from '../../lib/store/sessions.js';
import { hashRefreshSecret, newRefreshSecret } from '../../lib/auth/tokens.js';
import { createUser, testApp } from '../support/store.js';

type TestApp = Awaited<ReturnType<typeof testApp>>;

describe('SessionsRepository against dynalite', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await testApp();
  });

  async function newSession(userId: string, userEpoch = 0, lifetimeSeconds = 3600): Promise<Session> {
    return app.sessions.create({
      id: newSessionId(),
      userId,
      refreshHash: hashRefreshSecret(newRefreshSecret()),
      rotationKid: 'k1',
      userEpoch,
      createdAt: app.clock().toISOString(),
      expiresAt: epochSeconds(app.clock()) + lifetimeSeconds,
    });
  }

  it('reads a session and its user in one batch', async () => {
    const user = await createUser(app);
    const session = await newSession(user.id);
    const found = await app.sessions.getWithUser(session.id, user.id);
    expect(found.session).toEqual(session);
    expect(found.user?.id).toBe(user.id);
    expect(isSessionLive(found.session, found.user, app.clock())).toBe(true);
  });

  it('returns nothing for unknown ids', async () => {
    const found = await app.sessions.getWithUser(newSessionId(), 'usr_AAAAAAAAAAAAAAAAAAAAAA');
    expect(found).toEqual({});
    expect(isSessionLive(found.session, found.user, app.clock())).toBe(false);
  });

  it('stores the TTL attribute in epoch seconds, and a session past it is dead although dynalite still returns it', async () => {
    // Prepare
    const user = await createUser(app);
    const session = await newSession(user.id, 0, 60);
    const { Item } = await app.db.send(new GetCommand({ TableName: app.sessions.table, Key: { pk: `SESSION#${session.id}` } }));
    expect(Item?.expires_at).toBe(epochSeconds(app.clock()) + 60);

    // Act
    app.testClock.advance(60);
    const found = await app.sessions.getWithUser(session.id, user.id);

    // Assess
    expect(found.session).toBeDefined();
    expect(isSessionLive(found.session, found.user, app.clock())).toBe(false);
    app.testClock.advance(-1);
    expect(isSessionLive(found.session, found.user, app.clock())).toBe(true);
  });

  it('is dead when revoked, when the user is disabled or when the user epoch moved on', async () => {
    const user = await createUser(app);
    const session = await newSession(user.id);
    const live = await app.sessions.getWithUser(session.id, user.id);
    expect(isSessionLive(live.session, { ...live.user!, status: 'disabled' }, app.clock())).toBe(false);
    expect(isSessionLive(live.session, { ...live.user!, sessionEpoch: 1 }, app.clock())).toBe(false);
    expect(isSessionLive(live.session, { ...live.user!, id: 'usr_BBBBBBBBBBBBBBBBBBBBBB' }, app.clock())).toBe(false);
    expect(await app.sessions.revoke(session.id, user.id, app.clock())).toBe(true);
    const revoked = await app.sessions.getWithUser(session.id, user.id);
    expect(revoked.session?.revokedAt).toBe(app.clock().toISOString());
    expect(isSessionLive(revoked.session, revoked.user, app.clock())).toBe(false);
  });

  it('revokes idempotently, keeping the first time, and only for the owning user', async () => {
    const user = await createUser(app);
    const session = await newSession(user.id);
    const firstTime = app.clock().toISOString();
    expect(await app.sessions.revoke(session.id, 'usr_BBBBBBBBBBBBBBBBBBBBBB', app.clock())).toBe(false);
    expect(await app.sessions.revoke(session.id, user.id, app.clock())).toBe(true);
    app.testClock.advance(30);
    expect(await app.sessions.revoke(session.id, user.id, app.clock())).toBe(true);
    expect((await app.sessions.getWithUser(session.id, user.id)).session?.revokedAt).toBe(firstTime);
    expect(await app.sessions.revoke(newSessionId(), user.id, app.clock())).toBe(false);
  });

  it('rotates only from the current hash', async () => {
    // Prepare
    const user = await createUser(app);
    const session = await newSession(user.id);
    const next = hashRefreshSecret(newRefreshSecret());

    // Act
    const first = await app.sessions.rotate(session.id, { fromHash: session.refreshHash, toHash: next, rotationKid: 'k2', at: app.clock() });
    const again = await app.sessions.rotate(session.id, { fromHash: session.refreshHash, toHash: hashRefreshSecret(newRefreshSecret()), rotationKid: 'k2', at: app.clock() });

    // Assess
    expect(first).toBe(true);
    expect(again).toBe(false);
    const stored = (await app.sessions.getWithUser(session.id, user.id)).session!;
    expect(stored).toMatchObject({ refreshHash: next, previousHash: session.refreshHash, generation: 1, rotationKid: 'k2' });
  });

  it('lets exactly one of many concurrent rotations of one hash win (no lost update)', async () => {
    const user = await createUser(app);
    const session = await newSession(user.id);
    const candidates = Array.from({ length: 25 }, () => hashRefreshSecret(newRefreshSecret()));
    const results = await Promise.all(
      candidates.map((toHash) => app.sessions.rotate(session.id, { fromHash: session.refreshHash, toHash, rotationKid: 'k1', at: app.clock() })),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    const stored = (await app.sessions.getWithUser(session.id, user.id)).session!;
    expect(stored.refreshHash).toBe(candidates[results.indexOf(true)]);
    expect(stored.generation).toBe(1);
  });

  it('refuses to rotate a revoked or expired session', async () => {
    const user = await createUser(app);
    const revoked = await newSession(user.id);
    await app.sessions.revoke(revoked.id, user.id, app.clock());
    expect(await app.sessions.rotate(revoked.id, { fromHash: revoked.refreshHash, toHash: 'x', rotationKid: 'k1', at: app.clock() })).toBe(false);
    const expiring = await newSession(user.id, 0, 10);
    app.testClock.advance(10);
    expect(await app.sessions.rotate(expiring.id, { fromHash: expiring.refreshHash, toHash: 'x', rotationKid: 'k1', at: app.clock() })).toBe(false);
  });
});
