import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../lib/app.js';
import type { Caller } from '../../lib/auth/auth-service.js';
import { ApiError } from '../../lib/platform/errors.js';
import { loginService } from '../../lib/auth/login-service.js';
import { createUser, testApp } from '../support/store.js';

const caller: Caller = { requestId: 'req', sourceIp: '198.51.100.70', userAgent: 'vitest' };

describe('signing-key rotation by kid', () => {
  it('logs nobody out: old tokens keep working under the new ring, new tokens use the new key, a dropped key is refused', async () => {
    // Prepare: the service runs with key k1 and a user signs in
    const oldSecret = randomBytes(32).toString('base64url');
    const newSecret = randomBytes(32).toString('base64url');
    const before = await testApp(undefined, { JWT_SECRET: JSON.stringify({ k1: oldSecret }) });
    const user = await createUser(before);
    const pair = await loginService(before).login(user.email, user.password, caller);
    expect(decodeProtectedHeader(pair.token).kid).toBe('k1');

    // Act: the operator puts k2 first and keeps k1 for verification
    const during = createApp({ ...before.config, signingKeySource: { kind: 'inline', keys: { currentKid: 'k2', keys: new Map([['k2', Buffer.from(newSecret)], ['k1', Buffer.from(oldSecret)]]) } } }, before.clock);

    // Assess
    await expect(during.auth.me(pair.token)).resolves.toMatchObject({ id: user.id });
    const refreshed = await during.auth.refresh(pair.refresh_token, caller);
    expect(decodeProtectedHeader(refreshed.token).kid).toBe('k2');
    await expect(during.auth.me(refreshed.token)).resolves.toMatchObject({ id: user.id });

    // A token spent before the rotation is still recognised as spent: the session ends.
    const stolen = await loginService(before).login(user.email, user.password, caller);
    const stolenNext = await during.auth.refresh(stolen.refresh_token, caller);
    await during.auth.refresh(stolenNext.refresh_token, caller);
    const replay = await during.auth.refresh(stolen.refresh_token, caller).catch((error: unknown) => error);
    expect((replay as ApiError).code).toBe('refresh_token_reused');

    // Later k1 is removed: a token still signed with it is refused, the k2 ones work.
    const after = createApp({ ...before.config, signingKeySource: { kind: 'inline', keys: { currentKid: 'k2', keys: new Map([['k2', Buffer.from(newSecret)]]) } } }, before.clock);
    const refused = await after.auth.me(pair.token).catch((error: unknown) => error);
    expect((refused as ApiError).code).toBe('invalid_token');
    await expect(after.auth.me(refreshed.token)).resolves.toMatchObject({ id: user.id });
    await expect(after.auth.refresh(refreshed.refresh_token, caller)).resolves.toMatchObject({ token_type: 'Bearer' });
  });
});
