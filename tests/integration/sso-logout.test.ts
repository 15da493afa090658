import { randomUUID } from 'node:crypto';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../lib/auth/auth-service.js';
import { FederatedCredentials } from '../../lib/auth/credentials.js';
import type { IdentityProviders } from '../../lib/auth/identity-providers.js';
import { loginService } from '../../lib/auth/login-service.js';
import { SsoService } from '../../lib/auth/sso-service.js';
import { ApiError } from '../../lib/platform/errors.js';
import { SsoRepository } from '../../lib/store/sso.js';
import { createUser, testApp } from '../support/store.js';

const caller: Caller = { requestId: 'req', sourceIp: '198.51.100.60', userAgent: 'vitest' };
const ISSUER = 'https://idp.example.test';
const CLIENT_ID = 'vpn-auth';
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** The SSO service over a test app, its IdP's keys local (no discovery): back-channel logout only. */
async function logoutSetup() {
  const app = await testApp();
  const sso = new SsoRepository(app.db, app.config.usersTable, app.config.attemptsTable);
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' }] });
  const providers = { keys: async () => keys } as unknown as IdentityProviders;
  const service = new SsoService({ ...app, sso, login: loginService(app), federated: new FederatedCredentials({ users: app.users, sso, clock: app.clock }), providers });
  await sso.addConnection({ domain: 'logout.test', issuer: ISSUER, clientId: CLIENT_ID, sealedClientSecret: 'unused', enforce: false, adminGroup: undefined, groupsClaim: 'groups', createdAt: app.clock().toISOString() });
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT({ events: { [BACKCHANNEL_EVENT]: {} }, ...claims }).setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'logout+jwt' }).setIssuer(ISSUER).setAudience(CLIENT_ID).setIssuedAt(app.clock()).setJti(randomUUID()).sign(privateKey);
  return { app, sso, service, sign };
}

describe('back-channel logout against DynamoDB', () => {
  it('gives the jti back when a session could not be ended, so the IdP\'s retry of the same token ends it', async () => {
    // Prepare: a linked user with two sessions opened through the IdP; the next session end fails once
    const { app, sso, service, sign } = await logoutSetup();
    const user = await createUser(app);
    await sso.link(ISSUER, 'sub-1', user.id, app.clock());
    const ring = await app.keyRing.current();
    const opened = await Promise.all([1, 2].map(() => loginService(app).openSession({ user, ring, now: app.clock() }, caller, { amr: ['fed'], idp: { issuer: ISSUER } })));
    let armed = true;
    app.db.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { TableName?: string };
        if (armed && context.commandName === 'UpdateItemCommand' && input.TableName === app.sessions.table) {
          armed = false;
          throw Object.assign(new Error('Injected: throughput exceeded'), { name: 'ProvisionedThroughputExceededException', $metadata: {} });
        }
        return next(args);
      },
      { step: 'initialize', name: 'fail-one-session-end' },
    );
    const token = await sign({ sub: 'sub-1' });

    // Act
    const first = await service.backchannelLogout(token, caller).then(
      () => undefined,
      (error: unknown) => error,
    );
    const retry = await service.backchannelLogout(token, caller);
    const replay = await service.backchannelLogout(token, caller).then(
      () => undefined,
      (error: unknown) => error,
    );

    // Assess
    expect(first).toBeInstanceOf(ApiError);
    expect((first as ApiError).code).toBe('service_unavailable');
    expect(retry.ended).toBeGreaterThanOrEqual(1);
    for (const { sessionId } of opened) expect((await app.sessions.get(sessionId))?.revokedAt).toBeDefined();
    expect(replay).toBeInstanceOf(ApiError);
    expect((replay as ApiError).code).toBe('invalid_request');
  });
});
