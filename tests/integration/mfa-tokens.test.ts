import { describe, expect, it } from 'vitest';
import { MAX_MFA_TOKEN_ATTEMPTS, MFA_TOKEN_TTL_SECONDS, MfaTokensRepository, newMfaToken, parseMfaToken } from '../../lib/store/mfa-tokens.js';
import { testApp } from '../support/store.js';

const USER = 'usr_AAAAAAAAAAAAAAAAAAAAAA';

async function repository() {
  const app = await testApp();
  return { app, tokens: new MfaTokensRepository(app.db, app.config.attemptsTable) };
}

describe('mfa tokens', () => {
  it('is mt_ + 64 base64url characters, bound to its user, stored only as a hash', () => {
    const issued = newMfaToken(USER);
    expect(issued.token).toMatch(/^mt_[A-Za-z0-9_-]{64}$/);
    expect(parseMfaToken(issued.token)).toEqual({ userId: USER, hash: issued.hash });
    for (const bad of ['', 'mt_', issued.token.slice(0, -1), `dt_${issued.token.slice(3)}`, `${issued.token}=`]) expect(parseMfaToken(bad)).toBeUndefined();
  });

  it('takes at most 5 attempts, however many race for them, and is then dead', async () => {
    // Prepare
    const { app, tokens } = await repository();
    const issued = newMfaToken(USER);
    await tokens.create(issued, { purpose: 'verify', userEpoch: 0, at: app.clock() });

    // Act
    const reserved = await Promise.all(Array.from({ length: 20 }, () => tokens.reserveAttempt(issued, app.clock())));

    // Assess
    expect(reserved.filter((state) => state !== undefined)).toHaveLength(MAX_MFA_TOKEN_ATTEMPTS);
    expect(await tokens.reserveAttempt(issued, app.clock())).toBeUndefined();
    expect(await tokens.get(issued)).toMatchObject({ attempts: 5, purpose: 'verify', spent: false });
  });

  it('is spent by one success only; then, like an expired or unknown one, takes no attempt', async () => {
    // Prepare
    const { app, tokens } = await repository();
    const issued = newMfaToken(USER);
    await tokens.create(issued, { purpose: 'enroll', userEpoch: 3, at: app.clock() });

    // Act + Assess
    expect(await tokens.reserveAttempt(issued, app.clock())).toMatchObject({ attempts: 1, purpose: 'enroll', userEpoch: 3 });
    const spends = await Promise.all(Array.from({ length: 10 }, () => tokens.spend(issued, app.clock())));
    expect(spends.filter(Boolean)).toHaveLength(1);
    expect(await tokens.reserveAttempt(issued, app.clock())).toBeUndefined();

    const expiring = newMfaToken(USER);
    await tokens.create(expiring, { purpose: 'verify', userEpoch: 0, at: app.clock() });
    app.testClock.advance(MFA_TOKEN_TTL_SECONDS);
    expect(await tokens.reserveAttempt(expiring, app.clock())).toBeUndefined();
    expect(await tokens.reserveAttempt(newMfaToken(USER), app.clock())).toBeUndefined();
    // Another user's id with the same hash cannot use it
    expect(await tokens.reserveAttempt({ userId: 'usr_BBBBBBBBBBBBBBBBBBBBBB', hash: issued.hash }, app.clock())).toBeUndefined();
  });
});
