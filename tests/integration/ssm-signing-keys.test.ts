import { randomBytes } from 'node:crypto';
import { SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { mfaKeyAlias, mfaKeyParameter, ringEncryptionContext, signingKeyAlias, signingKeyParameter } from '../../infra/signing-keys.js';
import { createApp } from '../../lib/app.js';
import type { Caller } from '../../lib/auth/auth-service.js';
import { RingRefusedError } from '../../lib/auth/sealed-ring.js';
import { ApiError } from '../../lib/platform/errors.js';
import { loginService } from '../../lib/auth/login-service.js';
import { mfaService } from '../../lib/mfa/mfa-service.js';
import { ParameterStore, ParameterStoreError } from '../../lib/platform/parameter-store.js';
import { startFakeKms, type FakeKms } from '../support/fake-kms.js';
import { LOCAL_CREDENTIALS, LOCAL_USER_ARN, Sha256, startFakeSsm, type FakeSsm } from '../support/fake-ssm.js';
import { runScript } from '../support/cli.js';
import { captureLog } from '../support/log-capture.js';
import { putSealedRing, readSealedRing, sealRing } from '../support/sealed-rings.js';
import { TestClock, countCalls, createUser, testApp } from '../support/store.js';

const caller: Caller = { requestId: 'req', sourceIp: '198.51.100.80', userAgent: 'vitest' };

let ssm: FakeSsm;
let kms: FakeKms;
beforeAll(async () => {
  ssm = await startFakeSsm();
  kms = await startFakeKms();
});
afterAll(async () => {
  await ssm.close();
  await kms.close();
});
// No injected failure or log capture outlives its test.
afterEach(() => {
  ssm.failNext(0, 0, '');
  kms.failNext(0, 0, '');
  vi.restoreAllMocks();
});

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
const newStage = () => `t${randomBytes(4).toString('hex')}`;
const secret = () => randomBytes(32).toString('base64url');
const gets = () => ssm.calls.get('GetParameter') ?? 0;
const fakes = () => ({ ssm: ssm.endpoint, kms: kms.endpoint });
/** What `npm run keys -- … --aws --stage <stage>` writes: the ring sealed under the stage's key, for its signing ring. */
const putRing = (stage: string, text: string) => putSealedRing(fakes(), stage, 'signing', text);

async function failure(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => expect.fail('expected a failure'),
    (error: Error) => error,
  );
}

/** An app of `stage` whose signing keys live in the stage's (fake) SSM parameter, sealed by the (fake) KMS, as the template sets a Lambda up. */
function ssmApp(stage: string, clock = new TestClock(), env: Record<string, string> = {}) {
  return testApp(clock, {
    STAGE: stage,
    JWT_SECRET: '',
    JWT_SECRET_PARAMETER: signingKeyParameter(stage),
    JWT_SECRET_KMS_KEY: signingKeyAlias(stage),
    SSM_ENDPOINT: ssm.endpoint,
    KMS_ENDPOINT: kms.endpoint,
    JWT_SECRET_CACHE_SECONDS: '300',
    ...env,
  });
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

describe('signing keys read from SSM (JWT_SECRET_PARAMETER), sealed by KMS', () => {
  it('reads the ring once at the first request and reuses it until the cache expires', async () => {
    // Prepare
    const stage = newStage();
    await putRing(stage, JSON.stringify({ k1: secret() }));
    const app = await ssmApp(stage);
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
    const stage = newStage();
    const oldSecret = secret();
    await putRing(stage, JSON.stringify({ k1: oldSecret }));
    const lambdaA = await ssmApp(stage);
    const user = await createUser(lambdaA);
    const oldPair = await loginService(lambdaA).login(user.email, user.password, caller);
    await putRing(stage, JSON.stringify({ k2: secret(), k1: oldSecret }));
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
    const stage = newStage();
    await putRing(stage, secret());
    const app = await ssmApp(stage);
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
    const stage = newStage();
    await putRing(stage, secret());
    const app = await ssmApp(stage);
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
    const stage = newStage();
    await putRing(stage, secret());
    const app = await ssmApp(stage);
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
    const stage = newStage();
    await putRing(stage, 'too-short');
    const app = await ssmApp(stage);
    const user = await createUser(app);

    // Act
    const error = await failure(loginService(app).login(user.email, user.password, caller));

    // Assess
    expect(error).toMatchObject({ code: 'service_unavailable', status: 503 });
    expect(String((error as { cause?: Error }).cause?.message)).toContain('JWT_SECRET_PARAMETER keys must be at least 32 bytes');
  });
});

/** A token as the Lambdas would sign it, with a key and kid of the test's choosing: what a planted key would mint. */
async function mintWith(kid: string, key: string, like: string): Promise<string> {
  const claims = decodeJwt(like);
  return new SignJWT({ sid: claims.sid, role: 'admin' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid })
    .setIssuer(claims.iss!)
    .setAudience(claims.aud!)
    .setSubject(claims.sub!)
    .setJti('planted')
    .setIssuedAt(claims.iat!)
    .setExpirationTime(claims.exp!)
    .sign(new TextEncoder().encode(key));
}

const refusals = (lines: Array<Record<string, unknown>>, event = 'signing_keys_refused') => lines.filter((line) => line.message === event);

describe("a ring the stage's operators did not seal: refused, the Lambdas fail closed", () => {
  it("accepts a ring sealed under the stage's key for its stage and ring, naming both to KMS", async () => {
    // Prepare
    const stage = newStage();
    const key = secret();
    await putRing(stage, JSON.stringify({ k1: key }));
    const app = await ssmApp(stage);
    const user = await createUser(app);

    // Act
    const pair = await loginService(app).login(user.email, user.password, caller);

    // Assess: the parameter holds a ciphertext, neither the ring's JSON nor its key (in any encoding)
    const stored = ssm.parameters.get(signingKeyParameter(stage))!.value;
    expect(decodeProtectedHeader(pair.token).kid).toBe('k1');
    for (const plain of ['"k1"', key, Buffer.from(key).toString('base64')]) expect(stored).not.toContain(plain);
    expect(Buffer.from(stored, 'base64').toString('utf8')).not.toContain(key);
    expect(kms.decrypts.at(-1)).toEqual({ KeyId: signingKeyAlias(stage), EncryptionContext: { stage, ring: 'signing' } });
  });

  it.each<[string, (stage: string, ring: string, key: string) => Promise<string> | string]>([
    ['a plaintext ring (the format before sealing, or anyone allowed ssm:PutParameter)', (_stage, ring) => ring],
    ['a bare plaintext key', (_stage, _ring, key) => key],
    ["a ring sealed under a key of someone else's making, which KMS would decrypt for the Lambda", (stage, ring) => sealRing(fakes(), stage, 'signing', ring, { keyId: kms.createKey().arn })],
    ["the stage's MFA ring copied into the signing parameter", (stage, ring) => sealRing(fakes(), stage, 'mfa', ring)],
    ["a ring sealed under the stage's signing key, but for the MFA ring", (stage, ring) => sealRing(fakes(), stage, 'signing', ring, { context: ringEncryptionContext(stage, 'mfa') })],
    ["another stage's signing ring", (_stage, ring) => sealRing(fakes(), newStage(), 'signing', ring)],
    ["a ring sealed under the stage's signing key, but for another stage", (stage, ring) => sealRing(fakes(), stage, 'signing', ring, { context: ringEncryptionContext(newStage(), 'signing') })],
    ['base64 that is no ciphertext', () => randomBytes(120).toString('base64')],
  ])('refuses %s: 503 on every endpoint, an error in the log, the planted key never used', async (_case, forge) => {
    // Prepare: a session from a container that read the genuine ring; then the parameter is overwritten
    const stage = newStage();
    const planted = secret();
    await putRing(stage, JSON.stringify({ k1: secret() }));
    const app = await ssmApp(stage);
    const user = await createUser(app);
    const pair = await loginService(createApp(app.config, new TestClock().now)).login(user.email, user.password, caller);
    ssm.put(signingKeyParameter(stage), await forge(stage, JSON.stringify({ planted }), planted));
    const forged = await mintWith('planted', planted, pair.token);
    const logged = captureLog();

    // Act: a cold container reads the parameter now
    const login = await failure(loginService(app).login(user.email, user.password, caller));
    app.testClock.advance(5);
    const me = await failure(app.auth.me(forged));

    // Assess
    for (const error of [login, me]) expect(error).toMatchObject({ code: 'service_unavailable', status: 503 });
    expect((login as { cause?: Error }).cause).toBeInstanceOf(RingRefusedError);
    const lines = refusals(logged());
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'ERROR', source: signingKeyParameter(stage), held: false, error: { name: 'RingRefusedError' } });
    expect(JSON.stringify(logged())).not.toContain(planted);
  });

  it('keeps the ring it holds when the parameter is overwritten with one it must refuse, never accepts the planted key, and stops trusting the held ring after an hour', async () => {
    // Prepare
    const stage = newStage();
    await putRing(stage, JSON.stringify({ k1: secret() }));
    const app = await ssmApp(stage);
    const user = await createUser(app);
    const pair = await loginService(app).login(user.email, user.password, caller);
    const planted = secret();
    ssm.put(signingKeyParameter(stage), JSON.stringify({ planted, k1: secret() }));
    const forged = await mintWith('planted', planted, pair.token);
    const logged = captureLog();

    // Act: the cache runs out; the background read meets the planted ring
    app.testClock.advance(301);
    const during = await app.auth.me(pair.token);
    await expect.poll(() => refusals(logged()).length).toBe(1);
    app.testClock.advance(5);
    const plantedToken = await failure(app.auth.me(forged));
    const signedAfter = await loginService(app).login(user.email, user.password, caller);
    app.testClock.advance(3600);
    const stale = await failure(app.auth.me(pair.token));

    // Assess
    expect(during.id).toBe(user.id);
    expect(refusals(logged())[0]).toMatchObject({ level: 'ERROR', held: true });
    // An unknown kid makes the container read again (refused again), and the token is refused
    expect(plantedToken).toMatchObject({ code: 'invalid_token', status: 401 });
    expect(refusals(logged()).length).toBeGreaterThanOrEqual(2);
    expect(decodeProtectedHeader(signedAfter.token).kid).toBe('k1');
    expect(stale).toMatchObject({ code: 'service_unavailable', status: 503 });
  });

  it('refuses an MFA ring the operators did not seal: the MFA functions answer 503, sign-ins without a second factor go on', async () => {
    // Prepare: the signing ring's own ciphertext copied into the MFA parameter
    const stage = newStage();
    await putRing(stage, JSON.stringify({ k1: secret() }));
    ssm.put(mfaKeyParameter(stage), ssm.parameters.get(signingKeyParameter(stage))!.value);
    const app = await ssmApp(stage, new TestClock(), { MFA_KEY_PARAMETER: mfaKeyParameter(stage), MFA_KEY_KMS_KEY: mfaKeyAlias(stage) });
    const user = await createUser(app);
    const logged = captureLog();

    // Act
    const pair = await loginService(app).login(user.email, user.password, caller);
    const setup = await failure(mfaService(app).setup({ accessToken: pair.token, currentPassword: user.password }, caller));

    // Assess
    expect(pair.token_type).toBe('Bearer');
    expect(setup).toMatchObject({ code: 'service_unavailable', status: 503 });
    expect(refusals(logged(), 'mfa_keys_refused')).toEqual([expect.objectContaining({ level: 'ERROR', source: mfaKeyParameter(stage), error: expect.objectContaining({ message: expect.stringContaining('IncorrectKeyException') }) })]);
    expect(kms.decrypts.at(-1)).toEqual({ KeyId: mfaKeyAlias(stage), EncryptionContext: { stage, ring: 'mfa' } });
  });

  it('tells an unreachable KMS from a refused ring: 503 and signing_keys_unavailable, then recovers without a restart', async () => {
    // Prepare
    const stage = newStage();
    await putRing(stage, JSON.stringify({ k1: secret() }));
    const app = await ssmApp(stage);
    const user = await createUser(app);
    const logged = captureLog();

    // Act: both attempts of the Decrypt throttled
    kms.failNext(ATTEMPTS, 400, 'ThrottlingException');
    const outage = await failure(loginService(app).login(user.email, user.password, caller));
    app.testClock.advance(5);
    const recovered = await loginService(app).login(user.email, user.password, caller);

    // Assess
    expect(outage).toMatchObject({ code: 'service_unavailable', status: 503 });
    expect(logged().map((line) => line.message)).toContain('signing_keys_unavailable');
    expect(refusals(logged())).toEqual([]);
    expect(recovered.token_type).toBe('Bearer');
  });
});

/** The keys CLI's environment: the fakes, signed for with the local credentials. */
const cliEnv = () => ({ SSM_ENDPOINT: ssm.endpoint, KMS_ENDPOINT: kms.endpoint, AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1', AWS_PROFILE: undefined });
const keys = (args: string[]) => runScript('scripts/keys.ts', args, { env: cliEnv() });

describe('npm run keys -- --aws: the ring sealed under the stage\'s KMS key', () => {
  it("seals the ring under the stage's own KMS key (alias/vpn-auth-<stage>-signing-keys) for its stage and ring, in a SecureString under the same key, on init and on every rotation", async () => {
    // Prepare
    const stage = newStage();

    // Act
    const init = await keys(['init', '--aws', '--stage', stage]);
    const afterInit = { ...ssm.parameters.get(signingKeyParameter(stage))! };
    const rotate = await keys(['rotate', '--aws', '--stage', stage]);
    const ring = JSON.parse(await readSealedRing(fakes(), stage, 'signing')) as Record<string, string>;

    // Assess
    expect(init.code, init.stderr).toBe(0);
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(afterInit.keyId).toBe(`alias/vpn-auth-${stage}-signing-keys`);
    expect(afterInit.value).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(ssm.parameters.get(signingKeyParameter(stage))).toMatchObject({ version: 2, keyId: `alias/vpn-auth-${stage}-signing-keys` });
    expect(Object.keys(ring)).toHaveLength(2);
    for (const key of Object.values(ring)) expect(ssm.parameters.get(signingKeyParameter(stage))!.value).not.toContain(key);
  }, 30_000);

  it('refuses to rotate a ring someone else wrote (in plaintext, or sealed under another key), and leaves it as it is', async () => {
    // Prepare
    const plain = newStage();
    const foreign = newStage();
    ssm.put(signingKeyParameter(plain), JSON.stringify({ planted: secret() }));
    ssm.put(signingKeyParameter(foreign), await sealRing(fakes(), foreign, 'signing', JSON.stringify({ planted: secret() }), { keyId: kms.createKey().arn }));

    // Act
    const rotatePlain = await keys(['rotate', '--aws', '--stage', plain]);
    const rotateForeign = await keys(['rotate', '--aws', '--stage', foreign]);
    const sealForeign = await keys(['seal', '--aws', '--stage', foreign]);

    // Assess
    expect(rotatePlain).toMatchObject({ code: 1, stderr: expect.stringContaining('holds a ring in plaintext, which the Lambdas refuse') });
    expect(rotatePlain.stderr).toContain(`npm run keys -- seal --aws --stage ${plain}`);
    for (const refused of [rotateForeign, sealForeign]) expect(refused).toMatchObject({ code: 1, stderr: expect.stringContaining(`does not hold a ring sealed under alias/vpn-auth-${foreign}-signing-keys`) });
    expect(ssm.parameters.get(signingKeyParameter(plain))!.version).toBe(1);
    expect(ssm.parameters.get(signingKeyParameter(foreign))!.version).toBe(1);
  }, 30_000);

  it('seals a plaintext ring of the format before as it is, saying who wrote it; the Lambdas refuse it before and accept it after', async () => {
    // Prepare: a stage whose ring was written before rings were sealed
    const stage = newStage();
    const k1 = secret();
    ssm.put(signingKeyParameter(stage), JSON.stringify({ k1 }), { keyId: signingKeyAlias(stage), user: 'arn:aws:iam::123456789012:user/old-deployer' });
    const app = await ssmApp(stage);
    const user = await createUser(app);
    const before = await failure(loginService(app).login(user.email, user.password, caller));

    // Act
    const sealed = await keys(['seal', '--aws', '--stage', stage]);
    const again = await keys(['seal', '--aws', '--stage', stage]);
    app.testClock.advance(5);
    const after = await loginService(app).login(user.email, user.password, caller);

    // Assess
    expect(before).toMatchObject({ code: 'service_unavailable' });
    expect(sealed.code, sealed.stderr).toBe(0);
    expect(sealed.stdout).toContain('written');
    expect(sealed.stdout).toContain('by arn:aws:iam::123456789012:user/old-deployer');
    expect(sealed.stdout).toContain('k1');
    expect(sealed.stdout + sealed.stderr).not.toContain(k1);
    expect(again).toMatchObject({ code: 0, stdout: expect.stringContaining('already') });
    expect(ssm.parameters.get(signingKeyParameter(stage))).toMatchObject({ version: 2, keyId: signingKeyAlias(stage), lastModifiedUser: LOCAL_USER_ARN });
    expect(JSON.parse(await readSealedRing(fakes(), stage, 'signing'))).toEqual({ k1 });
    expect(decodeProtectedHeader(after.token).kid).toBe('k1');
  }, 30_000);

  it('restores the newest version the stage\'s key sealed over versions someone else wrote, saying which it passed over', async () => {
    // Prepare: two versions by the CLI, then two by someone who cannot seal
    const stage = newStage();
    expect((await keys(['init', '--aws', '--stage', stage])).code).toBe(0);
    expect((await keys(['rotate', '--aws', '--stage', stage])).code).toBe(0);
    const sealedRing = await readSealedRing(fakes(), stage, 'signing');
    ssm.put(signingKeyParameter(stage), JSON.stringify({ planted: secret() }), { user: 'arn:aws:iam::123456789012:role/ParameterWriter' });
    ssm.put(signingKeyParameter(stage), await sealRing(fakes(), stage, 'signing', JSON.stringify({ planted: secret() }), { keyId: kms.createKey().arn }));

    // Act
    const restored = await keys(['restore', '--aws', '--stage', stage]);
    const again = await keys(['restore', '--aws', '--stage', stage]);

    // Assess
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/^Restored version 2 of /);
    expect(restored.stdout).toContain('version 4');
    expect(restored.stdout).toContain('version 3 (');
    expect(restored.stdout).toContain('role/ParameterWriter');
    expect(ssm.parameters.get(signingKeyParameter(stage))).toMatchObject({ version: 5, keyId: signingKeyAlias(stage) });
    expect(await readSealedRing(fakes(), stage, 'signing')).toBe(sealedRing);
    expect(again).toMatchObject({ code: 0, stdout: expect.stringContaining('nothing to restore') });
  }, 30_000);

  it("writes with the SDK's SSM client, whose retries ride out a throttled SSM; every request is signed", async () => {
    // Prepare
    const stage = newStage();
    const env = cliEnv();
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
