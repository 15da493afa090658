import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { MIN_REFETCH_SECONDS } from '../../lib/auth/signing-keys.js';
import { Authenticator } from '../support/authenticator.js';
import { auditLine, runScript } from '../support/cli.js';
import { e2eRing, requestFrom } from '../support/http.js';
import { stageApi } from '../support/stage-api.js';
import { createUser } from '../support/store.js';
import { openClientSecret, sealClientSecret } from '../../lib/auth/identity-providers.js';
import { SsoRepository } from '../../lib/store/sso.js';
import { parseSigningKeys } from '../../lib/platform/config.js';

const amrOf = (token: string) => decodeJwt(token).amr;
const auth = (token: string) => ({ authorization: `Bearer ${token}` });

const APP_ORIGIN = 'https://app.example.com';

/**
 * The API as the prod stage runs it (REQUIRE_HTTPS on by default there, CORS for one origin),
 * in a serverless-offline of its own. API Gateway sets X-Forwarded-Proto in AWS; here the
 * test plays API Gateway and sets it.
 */
describe('the prod stage over HTTP, as the README recommends it: HTTPS only, HSTS, CORS for listed origins, two factors for admins', () => {
  const api = stageApi('prod', { CORS_ORIGINS: APP_ORIGIN, MFA_REQUIRED_ROLES: 'admin' });
  let user: Awaited<ReturnType<typeof createUser>>;
  beforeAll(async () => {
    user = await createUser(api.app());
  });

  const send = (path: string, init: RequestInit = {}) => fetch(`${api.url}/v1/auth${path}`, { ...init, signal: AbortSignal.timeout(20_000) });
  const https = { 'x-forwarded-proto': 'https', 'content-type': 'application/json' };

  it('refuses plain HTTP with 403 https_required, as JSON, with HSTS', async () => {
    const plain: Record<string, string>[] = [{ 'content-type': 'application/json' }, { 'content-type': 'application/json', 'x-forwarded-proto': 'http' }];
    for (const headers of plain) {
      const response = await send('/login', { method: 'POST', headers, body: JSON.stringify({ email: user.email, password: user.password }) });
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual({ success: false, error: { code: 'https_required', message: expect.any(String) } });
      expect(response.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    }
  });

  it('serves HTTPS with HSTS on every response, success or error', async () => {
    const login = await send('/login', { method: 'POST', headers: https, body: JSON.stringify({ email: user.email, password: user.password }) });
    expect(login.status).toBe(200);
    expect(login.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    const { token } = (await login.json()) as { token: string };
    const me = await send('/me', { headers: { ...https, authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    const denied = await send('/me', { headers: https });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
  });

  it('answers CORS as API Gateway does: the listed origin only, on every response and preflight, never credentials', async () => {
    // Act
    const allowed = await send('/me', { headers: { ...https, origin: APP_ORIGIN } });
    const unlisted = await send('/me', { headers: { ...https, origin: 'https://evil.example.com' } });
    const preflight = await send('/login', {
      method: 'OPTIONS',
      headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    const foreignPreflight = await send('/login', { method: 'OPTIONS', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' } });

    // Assess
    expect(allowed.status).toBe(401);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    // A page reads a 429's or 503's wait only if it is exposed.
    expect(allowed.headers.get('access-control-expose-headers')).toBe('Retry-After');
    expect(corsHeaders(unlisted)).toEqual([]);
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET,POST,DELETE,OPTIONS');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('Content-Type,Authorization');
    expect(preflight.headers.get('access-control-max-age')).toBe('600');
    expect(foreignPreflight.status).toBe(204);
    expect(corsHeaders(foreignPreflight)).toEqual([]);
    for (const response of [allowed, unlisted, preflight, foreignPreflight]) expect(response.headers.get('access-control-allow-credentials')).toBeNull();
  });

  describe('two factors for admins (MFA_REQUIRED_ROLES=admin), and the MFA key ring rotated under running Lambdas', () => {
    const post = (path: string, body: Record<string, unknown>, token?: string) =>
      requestFrom('127.0.0.1', 'POST', path, { body: JSON.stringify(body), headers: { ...https, ...(token ? auth(token) : {}) }, baseUrl: api.url });

    // First in this stage: the old key can retire only once no user's TOTP needs it, so no other user here may have TOTP yet.
    it('rotates the MFA ring: secrets reseal under the new key and keep working, the old key retires once nothing needs it', async () => {
      // Prepare: a user enrolled under the stage's first MFA key
      const user = await createUser(api.app(), { role: 'user' });
      const keys = (...args: string[]) =>
        runScript('scripts/keys.ts', [...args, '--ring', 'mfa', '--aws', '--stage', 'prod'], {
          env: { ...api.env(), AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_DYNAMODB: api.env().DYNAMODB_ENDPOINT, AWS_PROFILE: undefined },
        });
      const session = await post('/login', { email: user.email, password: user.password });
      const setup = await post('/mfa/totp/setup', { current_password: user.password }, session.body.token);
      const app = new Authenticator(setup.body.secret);
      const activated = await post('/mfa/totp/activate', { code: await app.next() }, session.body.token);
      expect(activated.status, activated.text).toBe(200);
      // The verify Lambda reads the ring (the old key alone) now, before the rotation
      expect((await post('/mfa/verify', { mfa_token: `mt_${'A'.repeat(64)}`, code: '123456' })).body.error.code).toBe('invalid_mfa_token');
      const lastMfaRequestAt = Date.now();
      const [oldKid] = (await keys('list')).stdout.split('\n')[1]!.split(/\s+/);
      // An SSO connection, its client secret sealed under the same (old) key
      const sso = new SsoRepository(api.app().db, api.app().config.usersTable, api.app().config.attemptsTable);
      const ssoDomain = `rotate-${Date.now()}.example`;
      await sso.addConnection({ domain: ssoDomain, issuer: 'https://idp.rotate.example', clientId: 'c', sealedClientSecret: sealClientSecret(await api.app().mfaKeyRing!.current(), 'the-client-secret', ssoDomain), enforce: false, adminGroup: undefined, groupsClaim: 'groups', createdAt: new Date().toISOString() });

      // Act: a new key, then the old one may not go while a secret and the recovery codes need it
      const rotated = await keys('rotate');
      const early = await keys('retire');
      const resealed = await keys('reseal');
      const listed = await keys('list');

      // Assess
      expect(rotated.code, rotated.stderr).toBe(0);
      expect(early).toMatchObject({ code: 1, stderr: expect.stringMatching(new RegExp(`Still needed \\(${oldKid}: \\d+ TOTP secret\\(s\\), \\d+ recovery-code set\\(s\\), 1 SSO client secret\\(s\\)`)) });
      expect(resealed.code, resealed.stderr).toBe(0);
      expect(resealed.stdout).toMatch(/Resealed [1-9]\d* TOTP secret\(s\)/);
      expect(resealed.stdout).toContain('Resealed 1 SSO client secret(s).');
      const resealedConnection = (await sso.connection(ssoDomain))!;
      expect(resealedConnection.sealedClientSecret.split('.')[1]).not.toBe(oldKid);
      expect(openClientSecret(parseSigningKeys(await e2eRing('prod', 'mfa'), 'MFA_KEY'), resealedConnection.sealedClientSecret, ssoDomain)).toBe('the-client-secret');
      await sso.removeConnection(ssoDomain);
      expect(auditLine(resealed.stderr, 'mfa_secrets_resealed')).toMatchObject({ unreadable: 0 });
      expect(listed.stdout).toMatch(new RegExp(`${oldKid}  previous \\(opens only\\)\\s+0 TOTP secret\\(s\\), [1-9]\\d* recovery-code set\\(s\\)`));

      // Act: sign in with a code; the Lambda has not seen the new key, and reads the ring again for it
      // (at most once per MIN_REFETCH_SECONDS: what is left of them since the last MFA request here)
      await new Promise((done) => setTimeout(done, Math.max(0, lastMfaRequestAt + MIN_REFETCH_SECONDS * 1000 + 100 - Date.now())));
      const challenge = await post('/login', { email: user.email, password: user.password });
      const verified = await post('/mfa/verify', { mfa_token: challenge.body.mfa_token, code: await app.next() });

      // Assess
      expect(verified.status, verified.text).toBe(200);

      // Act: new recovery codes (under the new key); now the old key can go, and they still work
      const renewed = await post('/mfa/recovery-codes', { code: await app.next() }, verified.body.token);
      const unused = await keys('list');
      // Nothing needs it now, but containers may still seal with it until their cache runs out (300 s here): forced
      const waiting = await keys('retire');
      const retired = await keys('retire', '--force');
      const again = await post('/login', { email: user.email, password: user.password });
      const recovered = await post('/mfa/verify', { mfa_token: again.body.mfa_token, recovery_code: renewed.body.recovery_codes[0] });

      // Assess
      expect(renewed.status, renewed.text).toBe(200);
      expect(unused.stdout).toMatch(new RegExp(`${oldKid}  previous \\(opens only\\)  unused`));
      expect(waiting).toMatchObject({ code: 1, stderr: expect.stringContaining('may still seal with the previous keys until') });
      expect(retired.code, retired.stderr).toBe(0);
      expect(retired.stdout).toContain(`Retired ${oldKid}`);
      expect(recovered.status, recovered.text).toBe(200);
      expect(recovered.body.recovery_codes_left).toBe(9);
      // No output ever shows a key
      const ring = await e2eRing('prod', 'mfa');
      const output = [rotated, early, resealed, listed, unused, waiting, retired].map((result) => result.stdout + result.stderr).join('\n');
      for (const secret of Object.values(JSON.parse(ring) as Record<string, string>)) expect(output).not.toContain(secret);
    });

    it('makes a listed role enrol at sign-in with an mfa_token good for setup and activate only; activation signs in with both factors', async () => {
      // Prepare
      const admin = await createUser(api.app(), { role: 'admin' });
      const member = await createUser(api.app(), { role: 'user' });

      // Act
      const challenge = await post('/login', { email: admin.email, password: admin.password });

      // Assess: the right password leads to enrolment; a wrong one is the usual refusal
      expect(challenge.status, challenge.text).toBe(401);
      expect(challenge.body).toEqual({ success: false, error: { code: 'mfa_enrollment_required', message: expect.any(String) }, mfa_token: expect.stringMatching(/^mt_/), mfa_expires_in: 300 });
      expect((await post('/login', { email: admin.email, password: 'wrong password' })).body.error.code).toBe('invalid_credentials');
      expect((await post('/login', { email: member.email, password: member.password })).status).toBe(200);
      const mfaToken = challenge.body.mfa_token;
      expect((await post('/mfa/verify', { mfa_token: mfaToken, code: '123456' })).body.error.code).toBe('invalid_mfa_token');

      // Act: set up and activate with the enrolment token
      const setup = await post('/mfa/totp/setup', { mfa_token: mfaToken });
      expect(setup.status, setup.text).toBe(200);
      const app = new Authenticator(setup.body.secret);
      const activated = await post('/mfa/totp/activate', { mfa_token: mfaToken, code: await app.next() });

      // Assess: the recovery codes and a session, exactly a sign-in's answer besides
      expect(activated.status, activated.text).toBe(200);
      expect(activated.body).toMatchObject({ success: true, token_type: 'Bearer', user: { id: admin.id, mfa_enabled: true }, device_token: expect.stringMatching(/^dt_/) });
      expect(activated.body.recovery_codes).toHaveLength(10);
      expect(amrOf(activated.body.token)).toEqual(['pwd', 'otp']);
      expect((await post('/mfa/totp/activate', { mfa_token: mfaToken, code: await app.next() })).body.error.code).toBe('invalid_mfa_token');
      // From now on: password then code; and TOTP cannot be turned off
      const next = await post('/login', { email: admin.email, password: admin.password });
      expect(next.body.error.code).toBe('mfa_required');
      const off = await requestFrom('127.0.0.1', 'DELETE', '/mfa/totp', { body: JSON.stringify({ code: await app.next() }), headers: { ...https, ...auth(activated.body.token) }, baseUrl: api.url });
      expect({ status: off.status, code: off.body.error.code }).toEqual({ status: 403, code: 'mfa_required_by_policy' });
    });
  });
});

const corsHeaders = (response: Response) => [...response.headers.keys()].filter((name) => name.startsWith('access-control-'));
