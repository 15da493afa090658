import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { MfaRepository, mfaKey } from '../../lib/store/mfa.js';
import { testApp } from '../support/store.js';

async function repository() {
  const app = await testApp();
  return { app, mfa: new MfaRepository(app.db, app.config.usersTable) };
}

const RECOVERY = { kid: 'm1', macs: Array.from({ length: 10 }, (_, i) => `mac-${i}`) };

describe('MfaRepository against dynalite', () => {
  it('keeps one pending secret, replaced by a new setup, until it is activated; then refuses a setup', async () => {
    // Prepare
    const { app, mfa } = await repository();
    const at = app.clock();

    // Act + Assess
    expect(await mfa.savePending('usr_1', 'v1.m1.first', at)).toBe(true);
    expect(await mfa.savePending('usr_1', 'v1.m1.second', at)).toBe(true);
    expect(await mfa.get('usr_1')).toMatchObject({ status: 'pending', sealedSecret: 'v1.m1.second', lastStep: undefined, recovery: undefined });
    // Activation checks the pending secret is still the one the code was checked against
    expect(await mfa.activate('usr_1', { sealedSecret: 'v1.m1.first', step: 100, recovery: RECOVERY, at })).toBe(false);
    expect(await mfa.activate('usr_1', { sealedSecret: 'v1.m1.second', step: 100, recovery: RECOVERY, at })).toBe(true);
    expect(await mfa.get('usr_1')).toMatchObject({ status: 'active', lastStep: 100, recovery: { kid: 'm1', macs: expect.arrayContaining(RECOVERY.macs) }, activatedAt: at.toISOString() });
    expect(await mfa.savePending('usr_1', 'v1.m1.third', at)).toBe(false);
    expect(await mfa.activate('usr_1', { sealedSecret: 'v1.m1.second', step: 101, recovery: RECOVERY, at })).toBe(false);
    // Recovery codes are a string set in the item; the secret is only the sealed form
    const { Item } = await app.db.send(new GetCommand({ TableName: app.config.usersTable, Key: mfaKey('usr_1') }));
    expect(Item?.recovery_macs).toBeInstanceOf(Set);
  });

  it('accepts each time step once, only later than the last, and one of 20 racing claims of a step', async () => {
    // Prepare
    const { app, mfa } = await repository();
    await mfa.savePending('usr_2', 'v1.m1.s', app.clock());
    await mfa.activate('usr_2', { sealedSecret: 'v1.m1.s', step: 100, recovery: RECOVERY, at: app.clock() });

    // Act
    const claims = await Promise.all(Array.from({ length: 20 }, () => mfa.claimStep('usr_2', 101)));

    // Assess
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await mfa.claimStep('usr_2', 101)).toBe(false);
    expect(await mfa.claimStep('usr_2', 100)).toBe(false);
    expect(await mfa.claimStep('usr_2', 102)).toBe(true);
    expect(await mfa.claimStep('usr_none', 102)).toBe(false);
  });

  it('spends a recovery code once, however many race for it, and says how many are left', async () => {
    // Prepare
    const { app, mfa } = await repository();
    await mfa.savePending('usr_3', 'v1.m1.s', app.clock());
    expect(await mfa.useRecoveryCode('usr_3', 'mac-0')).toBeUndefined(); // not active yet
    await mfa.activate('usr_3', { sealedSecret: 'v1.m1.s', step: 100, recovery: RECOVERY, at: app.clock() });

    // Act
    const uses = await Promise.all(Array.from({ length: 20 }, () => mfa.useRecoveryCode('usr_3', 'mac-0')));

    // Assess
    expect(uses.filter((left) => left !== undefined)).toEqual([9]);
    expect(await mfa.useRecoveryCode('usr_3', 'mac-0')).toBeUndefined();
    expect(await mfa.useRecoveryCode('usr_3', 'not-a-mac')).toBeUndefined();
    for (let i = 1; i < 10; i++) expect(await mfa.useRecoveryCode('usr_3', `mac-${i}`)).toBe(9 - i);
    expect((await mfa.get('usr_3'))?.recovery?.macs).toEqual([]);
    expect(await mfa.useRecoveryCode('usr_3', 'mac-1')).toBeUndefined();

    // Act: new codes, the old ones dead; then removed altogether
    expect(await mfa.replaceRecoveryCodes('usr_3', { kid: 'm2', macs: ['new-0', 'new-1'] })).toBe(true);
    expect(await mfa.useRecoveryCode('usr_3', 'mac-5')).toBeUndefined();
    expect(await mfa.useRecoveryCode('usr_3', 'new-1')).toBe(1);
    await mfa.remove('usr_3');
    expect(await mfa.get('usr_3')).toBeUndefined();
    expect(await mfa.replaceRecoveryCodes('usr_3', RECOVERY)).toBe(false);
  });
});
