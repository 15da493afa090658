import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, vi } from 'vitest';
import { parseApiKeyId } from '../../lib/platform/ids.js';
import { apiKeySlotKey } from '../../lib/store/api-keys.js';
import { Authenticator } from '../support/authenticator.js';
import { auditLine, runScript } from '../support/cli.js';
import { apiEnv, apiUrl, emittedMetrics } from '../support/context.js';
import { call, e2eApp, expectCommonHeaders, expectError, login, type ApiResponse } from '../support/http.js';
import { recordSecret } from '../support/secrets.js';
import { createUser } from '../support/store.js';

/** Another API's route behind the shared authorizer (serverless.yml: exampleProtected). */
/** How many times each metric has been counted so far, in total (`Name`) and by authMethod (`Name|method`). */
function metricCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const record of emittedMetrics()) {
    const definitions = (record._aws as { CloudWatchMetrics: Array<{ Metrics: Array<{ Name: string }> }> }).CloudWatchMetrics;
    for (const { Name } of definitions.flatMap((definition) => definition.Metrics)) {
      const name = typeof record.authMethod === 'string' ? `${Name}|${record.authMethod}` : Name;
      counts.set(name, (counts.get(name) ?? 0) + [record[Name]].flat().reduce((sum: number, value) => sum + Number(value), 0));
    }
  }
  return counts;
}

async function protectedRoute(bearer: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${apiUrl()}/v1/example/protected`, { headers: { authorization: `Bearer ${bearer}` }, signal: AbortSignal.timeout(20_000) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

function users(args: string[]) {
  return runScript('scripts/users.ts', args, { env: apiEnv() });
}

async function signedIn(role: 'admin' | 'user' = 'user') {
  const user = await createUser(e2eApp(), { role });
  const { token } = await login(user.email, user.password);
  return { user, token };
}

async function createKey(token: string, body: Record<string, unknown> = { name: 'nightly backup' }): Promise<ApiResponse> {
  return call('POST', '/api-keys', { token, body });
}

/** A key that works: made over HTTP, 201. */
async function madeKey(token: string, body?: Record<string, unknown>): Promise<{ key: string; id: string; response: ApiResponse }> {
  const response = await createKey(token, body);
  expect(response.status, response.text).toBe(201);
  return { key: response.body.key, id: response.body.api_key.id, response };
}

describe('API keys over HTTP', () => {
  it('makes a key shown once, usable through the authorizer and /auth/me, listed without the key, and revoked at once', async () => {
    // Prepare
    const { user, token } = await signedIn('admin');

    // Act
    const { key, id, response } = await madeKey(token, { name: 'nightly backup', expires_in_days: 30 });
    // (/auth/me first: its use records last_used_at, which the authorizer's then leaves alone within the hour)
    const me = await call('GET', '/me', { token: key });
    const viaAuthorizer = await protectedRoute(key);
    const listed = await call('GET', '/api-keys', { token });

    // Assess
    expect(response.body).toEqual({
      success: true,
      key: expect.stringMatching(/^vak_[A-Za-z0-9_-]{80}$/),
      api_key: { id: expect.stringMatching(/^ak_/), name: 'nightly backup', role: 'admin', created_at: expect.any(String), expires_at: expect.any(String), last_used_at: null },
    });
    expectCommonHeaders(response);
    // 30 days from its creation (expires_at is kept in whole seconds)
    expect(Date.parse(response.body.api_key.expires_at) - Date.parse(response.body.api_key.created_at)).toBeGreaterThan(30 * 86_400_000 - 1000);
    expect(Date.parse(response.body.api_key.expires_at) - Date.parse(response.body.api_key.created_at)).toBeLessThanOrEqual(30 * 86_400_000);
    expect(viaAuthorizer).toEqual({ status: 200, body: { success: true, caller: { userId: user.id, role: 'admin', authMethod: 'api_key', apiKeyId: id } } });
    expect(me.status).toBe(200);
    expect(me.body.user).toMatchObject({ id: user.id, email: user.email, role: 'admin' });
    expect(listed.status).toBe(200);
    expect(listed.body.api_keys).toEqual([{ ...response.body.api_key, last_used_at: expect.any(String), hint: key.slice(-4) }]);
    expect(listed.text).not.toContain(key.slice(4, -6));

    // Act: revoked, then refused at once by both
    const revoked = await call('DELETE', `/api-keys/${id}`, { token });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toEqual({ success: true });
    const refusedMe = await call('GET', '/me', { token: key });
    expectError(refusedMe, 401, 'invalid_token');
    expect(refusedMe.headers.get('www-authenticate')).toBe(`Bearer realm="vpn-enterprise", error="invalid_token", error_description="${refusedMe.body.error.message}"`);
    expect((await protectedRoute(key)).status).toBe(403);
    // Again: 200; unknown, malformed and another user's: one 404
    expect((await call('DELETE', `/api-keys/${id}`, { token })).status).toBe(200);
    const other = await signedIn();
    const theirs = await madeKey(other.token);
    for (const unknown of [theirs.id, 'ak_nope', `${id.slice(0, -2)}AA`]) expectError(await call('DELETE', `/api-keys/${unknown}`, { token }), 404, 'api_key_not_found');
    expect((await protectedRoute(theirs.key)).status).toBe(200);
    expect((await call('GET', '/api-keys', { token })).body.api_keys).toEqual([]);
  });

  it('caps a key\'s role at its owner\'s, now: a user cannot make an admin key, and an admin key of a demoted owner acts as a user', async () => {
    const plain = await signedIn('user');
    expectError(await createKey(plain.token, { name: 'x', role: 'admin' }), 400, 'invalid_request');
    const admin = await signedIn('admin');
    const userKey = await madeKey(admin.token, { name: 'read-only', role: 'user' });
    const adminKey = await madeKey(admin.token, { name: 'ops' });
    expect((await protectedRoute(userKey.key)).body.caller.role).toBe('user');
    expect((await protectedRoute(adminKey.key)).body.caller.role).toBe('admin');
    const app = e2eApp();
    await app.db.send(new UpdateCommand({ TableName: app.config.usersTable, Key: { pk: `USER#${admin.user.id}` }, UpdateExpression: 'SET #r = :u', ExpressionAttributeNames: { '#r': 'role' }, ExpressionAttributeValues: { ':u': 'user' } }));
    expect((await protectedRoute(adminKey.key)).body.caller.role).toBe('user');
    expect((await call('GET', '/me', { token: adminKey.key })).body.user.role).toBe('user');
  });

  it('validates the request', async () => {
    const { token } = await signedIn();
    for (const body of [{}, { name: '' }, { name: 'x'.repeat(65) }, { name: 'a', expires_in_days: 0 }, { name: 'a', expires_in_days: 366 }, { name: 'a', role: 'root' }]) {
      expectError(await createKey(token, body), 400, 'invalid_request');
    }
    expectError(await call('POST', '/api-keys', { body: { name: 'a' } }), 401, 'invalid_token');
  });

  it('refuses an expired key at once (the clock decides, not TTL), and a disabled owner\'s while disabled', async () => {
    // Prepare
    const { user, token } = await signedIn();
    const { key, id } = await madeKey(token, { name: 'short', expires_in_days: 1 });
    expect((await protectedRoute(key)).status).toBe(200);

    // Act: disabled by the users CLI, then enabled
    const disabled = await users(['disable', '--email', user.email]);
    expect(disabled.code, disabled.stderr).toBe(0);
    const whileDisabled = [await protectedRoute(key), await call('GET', '/me', { token: key })];
    await users(['enable', '--email', user.email]);
    const afterEnable = await protectedRoute(key);
    // The key's end moved to a moment ago (as one day later would find it; DynamoDB's TTL has not removed it)
    const app = e2eApp();
    const { userId, slot } = parseApiKeyId(id)!;
    await app.db.send(new UpdateCommand({ TableName: app.config.attemptsTable, Key: apiKeySlotKey(userId, slot), UpdateExpression: 'SET key_expires_at = :past', ExpressionAttributeValues: { ':past': Math.floor(Date.now() / 1000) - 1 } }));

    // Assess
    expect(whileDisabled[0]!.status).toBe(403);
    expectError(whileDisabled[1] as ApiResponse, 401, 'invalid_token');
    expect(afterEnable.status).toBe(200);
    expect((await protectedRoute(key)).status).toBe(403);
    expectError(await call('GET', '/me', { token: key }), 401, 'invalid_token');
  });

  it('refuses malformed keys and bad checksums as a bad access token is refused', async () => {
    const { token } = await signedIn();
    const { key } = await madeKey(token);
    for (const bad of [`${key.slice(0, -6)}AAAAAA`, `${key.slice(0, 10)}${key[10] === 'A' ? 'B' : 'A'}${key.slice(11)}`, 'vak_', `vak_${'A'.repeat(80)}`]) {
      recordSecret(bad);
      expectError(await call('GET', '/me', { token: bad }), 401, 'invalid_token');
      expect((await protectedRoute(bad)).status).toBe(403);
    }
  });

  it('keeps MAX_API_KEYS_PER_USER (10) under 20 concurrent creations, 409 api_key_limit for the rest', async () => {
    // Prepare
    const { token } = await signedIn();

    // Act
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => createKey(token, { name: `worker ${i}` })));

    // Assess
    expect(replies.filter((reply) => reply.status === 201)).toHaveLength(10);
    for (const reply of replies.filter((candidate) => candidate.status !== 201)) expectError(reply, 409, 'api_key_limit');
    const listed = (await call('GET', '/api-keys', { token })).body.api_keys as Array<{ id: string; created_at: string }>;
    expect(listed).toHaveLength(10);
    expect([...listed].sort((a, b) => b.created_at.localeCompare(a.created_at)).map((key) => key.created_at)).toEqual(listed.map((key) => key.created_at));
    expectError(await createKey(token, { name: 'one more' }), 409, 'api_key_limit');
    expect((await call('DELETE', `/api-keys/${listed[0]!.id}`, { token })).status).toBe(200);
    expect((await createKey(token, { name: 'in the freed slot' })).status).toBe(201);
  });

  it('needs a session signed in with a second factor from a user with TOTP on (403 otp_session_required)', async () => {
    // Prepare: TOTP turned on from a password-only session, which stands (amr pwd)
    const user = await createUser(e2eApp());
    const session = await login(user.email, user.password);
    const setup = await call('POST', '/mfa/totp/setup', { token: session.token, body: { current_password: user.password } });
    const authenticator = new Authenticator(setup.body.secret);
    expect((await call('POST', '/mfa/totp/activate', { token: session.token, body: { code: await authenticator.next() } })).status).toBe(200);

    // Act
    const refused = await createKey(session.token);
    const challenge = await call('POST', '/login', { body: { email: user.email, password: user.password } });
    const verified = await call('POST', '/mfa/verify', { body: { mfa_token: challenge.body.mfa_token, code: await authenticator.next() } });
    const allowed = await createKey(verified.body.token);

    // Assess
    expectError(refused, 403, 'otp_session_required');
    expect(allowed.status).toBe(201);
  });

  it('counts ApiKeyCreated, ApiKeyRevoked and the authorizer\'s decisions by authMethod (CloudWatch EMF from the Lambdas)', async () => {
    // Prepare
    const { token } = await signedIn();
    const before = metricCounts();

    // Act: a key made, used, revoked, refused; a session's token allowed
    const { key, id } = await madeKey(token);
    expect((await protectedRoute(key)).status).toBe(200);
    expect((await protectedRoute(token)).status).toBe(200);
    expect((await call('DELETE', `/api-keys/${id}`, { token })).status).toBe(200);
    expect((await protectedRoute(key)).status).toBe(403);

    // Assess: each counted in total and, for the authorizer, by authMethod (other files run
    // alongside, so at least once more than before)
    await vi.waitFor(
      () => {
        const after = metricCounts();
        for (const name of ['ApiKeyCreated', 'ApiKeyRevoked', 'AuthorizerAllowed', 'AuthorizerAllowed|api_key', 'AuthorizerAllowed|session', 'AuthorizerDenied', 'AuthorizerDenied|api_key']) {
          expect(after.get(name) ?? 0, name).toBeGreaterThan(before.get(name) ?? 0);
        }
      },
      { timeout: 10_000, interval: 200 },
    );
  });

  it('is refused with 403 session_required by every endpoint that mints or manages credentials', async () => {
    // Prepare
    const { user, token } = await signedIn();
    const { key, id } = await madeKey(token);

    // Act
    const replies = {
      logout: await call('POST', '/logout', { token: key, body: {} }),
      logoutGlobal: await call('POST', '/logout', { token: key, body: { scope: 'global' } }),
      password: await call('POST', '/password', { token: key, body: { current_password: user.password, new_password: 'a brand new passphrase' } }),
      setup: await call('POST', '/mfa/totp/setup', { token: key, body: { current_password: user.password } }),
      activate: await call('POST', '/mfa/totp/activate', { token: key, body: { code: '123456' } }),
      recoveryCodes: await call('POST', '/mfa/recovery-codes', { token: key, body: { code: '123456' } }),
      turnOff: await call('DELETE', '/mfa/totp', { token: key, body: { code: '123456' } }),
      sessions: await call('GET', '/sessions', { token: key }),
      endSession: await call('DELETE', '/sessions/AAAAAAAAAAAAAAAAAAAAAA', { token: key }),
      createKey: await createKey(key),
      listKeys: await call('GET', '/api-keys', { token: key }),
      revokeKey: await call('DELETE', `/api-keys/${id}`, { token: key }),
      // The bearer is looked at before the body: a key gets the same answer whatever it sends
      ...Object.fromEntries(
        await Promise.all(
          (['/logout', '/password', '/mfa/totp/setup', '/mfa/totp/activate', '/mfa/recovery-codes'] as const).map(async (path) => [`${path} without a body`, await call('POST', path, { token: key })] as const),
        ),
      ),
      'DELETE /mfa/totp without a body': await call('DELETE', '/mfa/totp', { token: key }),
      'POST /api-keys with a bad body': await call('POST', '/api-keys', { token: key, body: { name: '' } }),
    };

    // Assess: each refused, and the key still works (nothing was done with it)
    for (const [name, reply] of Object.entries(replies)) {
      expect({ name, status: reply.status, code: reply.body?.error?.code }).toEqual({ name, status: 403, code: 'session_required' });
    }
    expect((await protectedRoute(key)).status).toBe(200);
    expect((await call('GET', '/me', { token })).status).toBe(200);
  });

  it('outlives a password change and a global logout (as GitHub\'s tokens do); ended by revoke-sessions --include-api-keys and by mfa-reset', async () => {
    // Prepare
    const { user, token } = await signedIn();
    const { key } = await madeKey(token);

    // Act and assess: a password change, then a global logout, leave it working
    const changed = await call('POST', '/password', { token, body: { current_password: user.password, new_password: 'a brand new passphrase' } });
    expect(changed.status, changed.text).toBe(200);
    expect((await call('POST', '/logout', { token: changed.body.token, body: { scope: 'global' } })).status).toBe(200);
    expect((await protectedRoute(key)).status).toBe(200);
    // revoke-sessions alone leaves it too; with --include-api-keys it ends
    expect((await users(['revoke-sessions', '--email', user.email])).code).toBe(0);
    expect((await protectedRoute(key)).status).toBe(200);
    const incident = await users(['revoke-sessions', '--email', user.email, '--include-api-keys']);
    expect(incident.code, incident.stderr).toBe(0);
    expect(auditLine(incident.stderr, 'logout_all')).toMatchObject({ userId: user.id, apiKeysEnded: true });
    expect((await protectedRoute(key)).status).toBe(403);
    // mfa-reset ends a key made afterwards as well
    const { token: again } = await login(user.email, 'a brand new passphrase');
    const second = await madeKey(again);
    expect((await users(['mfa-reset', '--email', user.email])).code).toBe(0);
    expect((await protectedRoute(second.key)).status).toBe(403);
  });

  it('is listed and revoked by the users CLI (audited)', async () => {
    // Prepare
    const { user, token } = await signedIn();
    const first = await madeKey(token, { name: 'first' });
    const second = await madeKey(token, { name: 'second' });

    // Act
    const table = await users(['api-keys', '--email', user.email]);
    const json = await users(['api-keys', '--email', user.email, '--json']);
    const revoked = await users(['revoke-api-key', '--id', first.id]);
    const unknown = await users(['revoke-api-key', '--id', 'ak_nope']);

    // Assess
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+ROLE\s+CREATED\s+EXPIRES\s+LAST USED\s+HINT/);
    expect(table.stdout).toContain(first.id);
    expect(JSON.parse(json.stdout).map((key: { name: string }) => key.name)).toEqual(['second', 'first']);
    expect(json.stdout).not.toContain(first.key.slice(4, -6));
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(auditLine(revoked.stderr, 'api_key_revoked')).toMatchObject({ userId: user.id, keyId: first.id, by: 'operator' });
    expect(unknown.code).not.toBe(0);
    expect((await protectedRoute(first.key)).status).toBe(403);
    expect((await protectedRoute(second.key)).status).toBe(200);
  });
});
