import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { MfaRepository } from '../../lib/store/mfa.js';
import { userKey } from '../../lib/store/users.js';
import { createUser, testApp } from '../support/store.js';

async function repository() {
  const app = await testApp();
  const user = await createUser(app);
  return { app, user, mfa: new MfaRepository(app.db, app.config.usersTable) };
}

const RECOVERY = { kid: 'm1', macs: Array.from({ length: 10 }, (_, i) => `mac-${i}`) };

describe('MfaRepository against dynalite (the TOTP attributes of the user item)', () => {
  it('keeps one pending secret, replaced by a new setup, until it is activated with a new session epoch; then refuses a setup', async () => {
    // Prepare
    const { app, user, mfa } = await repository();
    const at = app.clock();

    // Act + Assess
    expect(await mfa.savePending(user.id, 'v1.m1.first')).toBe(true);
    expect(await mfa.savePending(user.id, 'v1.m1.second')).toBe(true);
    expect((await app.users.get(user.id))?.totp).toMatchObject({ status: 'pending', sealedSecret: 'v1.m1.second', lastStep: undefined, recovery: undefined });
    // Activation checks the pending secret is still the one the code was checked against, and the epoch
    expect(await mfa.activate(user.id, { sealedSecret: 'v1.m1.first', step: 100, recovery: RECOVERY, epoch: 0, at })).toBeUndefined();
    expect(await mfa.activate(user.id, { sealedSecret: 'v1.m1.second', step: 100, recovery: RECOVERY, epoch: 1, at })).toBeUndefined();
    const activated = await mfa.activate(user.id, { sealedSecret: 'v1.m1.second', step: 100, recovery: RECOVERY, epoch: 0, at });
    expect(activated).toMatchObject({ id: user.id, sessionEpoch: 1, totp: { status: 'active', lastStep: 100, recovery: { kid: 'm1' }, activatedAt: at.toISOString() } });
    expect(activated!.totp!.recovery!.macs.sort()).toEqual([...RECOVERY.macs].sort());
    expect(await mfa.savePending(user.id, 'v1.m1.third')).toBe(false);
    expect(await mfa.activate(user.id, { sealedSecret: 'v1.m1.second', step: 101, recovery: RECOVERY, epoch: 1, at })).toBeUndefined();
    // Recovery codes are a string set in the item; the secret is only the sealed form
    const { Item } = await app.db.send(new GetCommand({ TableName: app.config.usersTable, Key: userKey(user.id) }));
    expect(Item?.recovery_macs).toBeInstanceOf(Set);
    // No setup for a user that does not exist
    expect(await mfa.savePending('usr_none', 'v1.m1.s')).toBe(false);
  });

  it('of 20 racing activations of one pending secret, exactly one wins', async () => {
    // Prepare
    const { app, user, mfa } = await repository();
    await mfa.savePending(user.id, 'v1.m1.s');

    // Act
    const won = await Promise.all(Array.from({ length: 20 }, (_, i) => mfa.activate(user.id, { sealedSecret: 'v1.m1.s', step: 100 + i, recovery: RECOVERY, epoch: 0, at: app.clock() })));

    // Assess
    expect(won.filter(Boolean)).toHaveLength(1);
    expect((await app.users.get(user.id))?.sessionEpoch).toBe(1);
  });

  it('accepts each time step once, only later than the last, and one of 20 racing claims of a step', async () => {
    // Prepare
    const { app, user, mfa } = await repository();
    await mfa.savePending(user.id, 'v1.m1.s');
    await mfa.activate(user.id, { sealedSecret: 'v1.m1.s', step: 100, recovery: RECOVERY, epoch: 0, at: app.clock() });

    // Act
    const claims = await Promise.all(Array.from({ length: 20 }, () => mfa.claimStep(user.id, 101)));

    // Assess
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await mfa.claimStep(user.id, 101)).toBe(false);
    expect(await mfa.claimStep(user.id, 100)).toBe(false);
    expect(await mfa.claimStep(user.id, 102)).toBe(true);
    expect(await mfa.claimStep('usr_none', 102)).toBe(false);
    // Turning off takes a later step too: a replayed code cannot
    expect(await mfa.turnOff(user.id, 102)).toBe(false);
    const offs = await Promise.all(Array.from({ length: 20 }, () => mfa.turnOff(user.id, 103)));
    expect(offs.filter(Boolean)).toHaveLength(1);
    expect((await app.users.get(user.id))?.totp).toBeUndefined();
  });

  it('spends a recovery code once, however many race for it, and says how many are left', async () => {
    // Prepare
    const { app, user, mfa } = await repository();
    await mfa.savePending(user.id, 'v1.m1.s');
    expect(await mfa.useRecoveryCode(user.id, 'mac-0')).toBeUndefined(); // not active yet
    await mfa.activate(user.id, { sealedSecret: 'v1.m1.s', step: 100, recovery: RECOVERY, epoch: 0, at: app.clock() });

    // Act
    const uses = await Promise.all(Array.from({ length: 20 }, () => mfa.useRecoveryCode(user.id, 'mac-0')));

    // Assess
    expect(uses.filter((left) => left !== undefined)).toEqual([9]);
    expect(await mfa.useRecoveryCode(user.id, 'mac-0')).toBeUndefined();
    expect(await mfa.useRecoveryCode(user.id, 'not-a-mac')).toBeUndefined();
    for (let i = 1; i < 10; i++) expect(await mfa.useRecoveryCode(user.id, `mac-${i}`)).toBe(9 - i);
    expect((await app.users.get(user.id))?.totp?.recovery?.macs).toEqual([]);
    expect(await mfa.useRecoveryCode(user.id, 'mac-1')).toBeUndefined();

    // Act: new codes, the old ones dead; then an operator's reset removes everything and ends every session
    expect(await mfa.replaceRecoveryCodes(user.id, { kid: 'm2', macs: ['new-0', 'new-1'] }, 1_000_000)).toBe(true);
    expect(await mfa.useRecoveryCode(user.id, 'mac-5')).toBeUndefined();
    expect(await mfa.useRecoveryCode(user.id, 'new-1')).toBe(1);
    const reset = await mfa.reset(user.id, app.clock());
    expect(reset).toMatchObject({ totp: undefined, sessionEpoch: 2 });
    expect(await mfa.replaceRecoveryCodes(user.id, RECOVERY, 2_000_000)).toBe(false);
    expect(await mfa.reset('usr_none', app.clock())).toBeUndefined();
  });
});
