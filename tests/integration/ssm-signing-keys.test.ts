import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../lib/app.js';
import type { Caller } from '../../lib/auth/auth-service.js';
import { ApiError } from '../../lib/platform/errors.js';
import { loginService } from '../../lib/auth/login-service.js';
import { ParameterStore, ParameterStoreError } from '../../lib/platform/parameter-store.js';
import { LOCAL_CREDENTIALS, Sha256, startFakeSsm, type FakeSsm } from '../support/fake-ssm.js';
import { runScript } from '../support/cli.js';
import { TestClock, countCalls, createUser, testApp } from '../support/store.js';

const caller: Caller = { requestId: 'req', sourceIp: '198.51.100.80', userAgent: 'vitest' };

let ssm: FakeSsm;
beforeAll(async () => {
  ssm = await startFakeSsm();
});
afterAll(() => ssm.close());
// No injected failure outlives its test.
afterEach(() => ssm.failNext(0, 0, ''));

/** What ParameterStore tries a read in all. */
const ATTEMPTS = 2;

function store(overrides: { region?: string; secretAccessKey?: string; sessionToken?: string } = {}): ParameterStore {
  const credentials = {
    ...LOCAL_CREDENTIALS,
    ...(overrides.secretAccessKey ? { secretAccessKey: overrides.secretAccessKey } : {}),
    ...(overrides.sessionToken ? { sessionToken: overrides.sessionToken } : {}),
  };
  return new ParameterStore({ region: overrides.region ?? 'us-east-1', endpoint: ssm.endpoint, credentials: async () => credentials, sha256: Sha256 });
}

const newParameter = () => `/vpn-auth/t${randomBytes(4).toString('hex')}/jwt-signing-keys`;
const secret = () => randomBytes(32).toString('base64url');
const gets = () => ssm.calls.get('GetParameter') ?? 0;

async function failure(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => expect.fail('expected a failure'),
    (error: Error) => error,
  );
}

/** An app whose signing keys live in the (fake) SSM parameter `name`, as in AWS. */
function ssmApp(name: string, clock = new TestClock()) {
  return testApp(clock, { JWT_SECRET: '', JWT_SECRET_PARAMETER: name, SSM_ENDPOINT: ssm.endpoint, JWT_SECRET_CACHE_SECONDS: '300' });
}

describe('ParameterStore (the Lambdas\' SigV4-signed SSM read)', () => {
  it('reads a SecureString back decrypted', async () => {
    const name = newParameter();
    ssm.put(name, 'value-1');
    await expect(store().get(name)).resolves.toBe('value-1');
  });

  it('signs the session token of temporary credentials (a Lambda role) and the hash of the body', async () => {
    // Prepare
    const name = newParameter();
    ssm.put(name, 'with-session');

    // Act
    const value = await store({ sessionToken: 'a-session-token' }).get(name);

    // Assess
    expect(value).toBe('with-session');
    expect(ssm.lastHeaders()['x-amz-security-token']).toBe('a-session-token');
  });

  it('is refused when its signature is wrong: another region or another secret key', async () => {
    // Prepare
    const name = newParameter();
    ssm.put(name, 'v');

    // Act
    const wrongRegion = await failure(store({ region: 'eu-west-1' }).get(name));
    const wrongKey = await failure(store({ secretAccessKey: 'not-the-key' }).get(name));

    // Assess
    expect(wrongRegion).toMatchObject({ code: 'InvalidSignatureException' });
    expect(wrongKey).toMatchObject({ code: 'InvalidSignatureException', message: expect.stringContaining('signature does not match') });
  });

  it('retries throttling and 5xx, but not a missing parameter', async () => {
    // Prepare
    const name = newParameter();
    ssm.put(name, 'v');
    const before = gets();

    // Act
    ssm.failNext(1, 400, 'ThrottlingException');
    const value = await store().get(name);
    const afterRetries = gets();
    const missing = await failure(store().get(newParameter()));

    // Assess
    expect(value).toBe('v');
    expect(afterRetries - before).toBe(2);
    expect(missing).toBeInstanceOf(ParameterStoreError);
    expect(missing).toMatchObject({ code: 'ParameterNotFound', retryable: false });
    expect(gets() - afterRetries).toBe(1);
  });
});

describe('signing keys read from SSM (JWT_SECRET_PARAMETER)', () => {
  it('reads the ring once at the first request and reuses it until the cache expires', async () => {
    // Prepare
    const name = newParameter();
    ssm.put(name, JSON.stringify({ k1: secret() }));
    const app = await ssmApp(name);
    const user = await createUser(app);
    const before = gets();

    // Act
    const pair = await loginService(app).login(user.email, user.password, caller);
    for (let i = 0; i < 5; i++) await app.auth.me(pair.token);
    const whileCached = gets() - before;
    app.testClock.advance(301);
    await app.auth.me(pair.token);

    // Assess: the expired ring still served that request, and was fetched again alongside it
    expect(decodeProtectedHeader(pair.token).kid).toBe('k1');
    expect(whileCached).toBe(1);
    await expect.poll(() => gets() - before).toBe(2);
  });

  it('after a rotation, accepts a token signed with the new key by fetching the ring again (at most every 5 s)', async () => {
    // Prepare: two Lambdas share the parameter; A has cached the old ring
    const name = newParameter();
    const oldSecret = secret();
    ssm.put(name, JSON.stringify({ k1: oldSecret }));
    const lambdaA = await ssmApp(name);
    const user = await createUser(lambdaA);
    const oldPair = await loginService(lambdaA).login(user.email, user.password, caller);
    ssm.put(name, JSON.stringify({ k2: secret(), k1: oldSecret }));
    const lambdaB = createApp(lambdaA.config, new TestClock().now);
    const newPair = await loginService(lambdaB).login(user.email, user.password, caller);
    const before = gets();

    // Act
    const tooSoon = await failure(lambdaA.auth.me(newPair.token));
    const afterTooSoon = gets();
    lambdaA.testClock.advance(5);
    const accepted = await lambdaA.auth.me(newPair.token);

    // Assess
    expect(decodeProtectedHeader(newPair.token).kid).toBe('k2');
    expect((tooSoon as ApiError).code).toBe('invalid_token');
    expect(afterTooSoon).toBe(before);
    expect(accepted.id).toBe(user.id);
    expect(gets() - before).toBe(1);
    // Tokens signed before the rotation still verify on both.
    await expect(lambdaB.auth.me(oldPair.token)).resolves.toMatchObject({ id: user.id });
    await expect(lambdaB.auth.refresh(oldPair.refresh_token, caller)).resolves.toMatchObject({ token_type: 'Bearer' });
  });

  it('answers 503 while SSM cannot be read at a cold start, and recovers without a restart', async () => {
    // Prepare
    const name = newParameter();
    ssm.put(name, secret());
    const app = await ssmApp(name);
    const user = await createUser(app);

    // Act
    ssm.failNext(ATTEMPTS, 500, 'InternalServerError');
    const outage = await failure(loginService(app).login(user.email, user.password, caller));
    const callsAfterOutage = gets();
    const meanwhile = await failure(loginService(app).login(user.email, user.password, caller));
    const callsMeanwhile = gets() - callsAfterOutage;
    app.testClock.advance(5);
    const recovered = await loginService(app).login(user.email, user.password, caller);

    // Assess
    expect(outage).toBeInstanceOf(ApiError);
    expect(outage).toMatchObject({ code: 'service_unavailable', status: 503, headers: { 'Retry-After': '1' } });
    // Within 5 s of the failed read the next request is refused without asking SSM again.
    expect(meanwhile).toMatchObject({ code: 'service_unavailable' });
    expect(callsMeanwhile).toBe(0);
    expect(recovered.token_type).toBe('Bearer');
  });

  it('answers 503 on every endpoint while a cold container cannot read SSM; login spends no attempt on it', async () => {
    // Prepare: a session made by a container that has the keys; this one has none yet
    const name = newParameter();
    ssm.put(name, secret());
    const app = await ssmApp(name);
    const user = await createUser(app);
    const pair = await loginService(createApp(app.config, new TestClock().now)).login(user.email, user.password, caller);
    const { calls: dynamoCalls } = countCalls(app);

    // Act
    ssm.failNext(ATTEMPTS, 500, 'InternalServerError');
    const login = await failure(loginService(app).login(user.email, user.password, caller));
    const me = await failure(app.auth.me(pair.token));
    const logout = await failure(app.auth.logout(pair.token, 'local', caller));
    const callsBeforeRefresh = [...dynamoCalls];
    const refresh = await failure(app.auth.refresh(pair.refresh_token, caller));

    // Assess
    for (const error of [login, me, logout, refresh]) expect(error).toMatchObject({ code: 'service_unavailable', status: 503 });
    expect(callsBeforeRefresh).toEqual([]);
    // The session is left as it was: the same refresh token works once SSM answers.
    app.testClock.advance(5);
    await expect(app.auth.refresh(pair.refresh_token, caller)).resolves.toMatchObject({ token_type: 'Bearer' });
  });

  it('keeps using the ring it holds when a later refetch fails', async () => {
    // Prepare
    const name = newParameter();
    ssm.put(name, secret());
    const app = await ssmApp(name);
    const user = await createUser(app);
    const pair = await loginService(app).login(user.email, user.password, caller);
    app.testClock.advance(301);

    const before = gets();

    // Act
    ssm.failNext(ATTEMPTS, 400, 'ThrottlingException');
    const during = await app.auth.me(pair.token);

    // Assess: served from the held ring while the refetch (every attempt throttled) failed
    expect(during.id).toBe(user.id);
    await expect.poll(() => gets() - before).toBe(ATTEMPTS);
    await expect(app.auth.me(pair.token)).resolves.toMatchObject({ id: user.id });
  });

  it('answers 503, not 500, when the parameter holds no usable key, and names the problem in the log only', async () => {
    // Prepare
    const name = newParameter();
    ssm.put(name, 'too-short');
    const app = await ssmApp(name);
    const user = await createUser(app);

    // Act
    const error = await failure(loginService(app).login(user.email, user.password, caller));

    // Assess
    expect(error).toMatchObject({ code: 'service_unavailable', status: 503 });
    expect(String((error as { cause?: Error }).cause?.message)).toContain('JWT_SECRET_PARAMETER keys must be at least 32 bytes');
  });
});

describe('npm run keys -- --aws: the KMS key the ring is encrypted with', () => {
  it("writes the ring under the stage's own KMS key (alias/vpn-auth-<stage>-signing-keys), on init and on every rotation", async () => {
    // Prepare
    const stage = `t${randomBytes(4).toString('hex')}`;
    const env = { SSM_ENDPOINT: ssm.endpoint, AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1', AWS_PROFILE: undefined };

    // Act
    const init = await runScript('scripts/keys.ts', ['init', '--aws', '--stage', stage], { env });
    const afterInit = ssm.parameters.get(`/vpn-auth/${stage}/jwt-signing-keys`)?.keyId;
    const rotate = await runScript('scripts/keys.ts', ['rotate', '--aws', '--stage', stage], { env });

    // Assess
    expect(init.code, init.stderr).toBe(0);
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(afterInit).toBe(`alias/vpn-auth-${stage}-signing-keys`);
    expect(ssm.parameters.get(`/vpn-auth/${stage}/jwt-signing-keys`)).toMatchObject({ version: 2, keyId: `alias/vpn-auth-${stage}-signing-keys` });
  }, 30_000);

  it("writes with the SDK's SSM client, whose retries ride out a throttled SSM; every request is signed", async () => {
    // Prepare
    const stage = `t${randomBytes(4).toString('hex')}`;
    const env = { SSM_ENDPOINT: ssm.endpoint, AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1', AWS_PROFILE: undefined };
    const calls = () => (ssm.calls.get('PutParameter') ?? 0) + (ssm.calls.get('GetParameter') ?? 0);
    const before = calls();

    // Act: the first request (init's read) is throttled
    ssm.failNext(1, 400, 'ThrottlingException');
    const init = await runScript('scripts/keys.ts', ['init', '--aws', '--stage', stage], { env });
    const initCalls = calls() - before;
    const again = await runScript('scripts/keys.ts', ['init', '--aws', '--stage', stage], { env });
    const wrongKey = await runScript('scripts/keys.ts', ['list', '--aws', '--stage', stage], { env: { ...env, AWS_SECRET_ACCESS_KEY: 'not-the-key' } });

    // Assess
    expect(init.code, init.stderr).toBe(0);
    // read throttled, read again (not found), one write
    expect(initCalls).toBe(3);
    expect(again).toMatchObject({ code: 1, stderr: expect.stringContaining('already exists') });
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/signature/i);
    expect(ssm.parameters.get(`/vpn-auth/${stage}/jwt-signing-keys`)?.version).toBe(1);
  }, 30_000);
});
