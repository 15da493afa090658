import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { signingKeyParameter } from '../../infra/signing-keys.js';
import { loadConfig, signingKeyEntries } from '../../lib/platform/config.js';
import { E2E_STAGE } from '../support/api-setup.js';
import { auditLine, runScript } from '../support/cli.js';
import { DEMO_USER, apiEnv } from '../support/context.js';
import { LOCAL_CREDENTIALS } from '../support/fake-ssm.js';
import { call, e2eRing, login } from '../support/http.js';
import { stageApi } from '../support/stage-api.js';
import { createUser } from '../support/store.js';
import { newSecret } from '../../scripts/key-ring.js';

/** `npm run keys -- … --aws`, against the SSM the running Lambdas read (a fake on loopback). */
function keysOnAws(args: string[]) {
  return runScript('scripts/keys.ts', [...args, '--aws'], {
    env: { ...apiEnv(), AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1', AWS_PROFILE: undefined },
  });
}

function keysLocal(args: string[]) {
  return runScript('scripts/keys.ts', args);
}

const ring = async (stage: string) => signingKeyEntries(await e2eRing(stage));

describe('npm run keys -- … --aws: the signing-key ring in SSM', () => {
  it('creates the ring once, rotates in a new key, refuses to retire the old one early, retires it with --force', async () => {
    // Prepare: a stage of its own, so the running API is not touched
    const stage = `k${randomBytes(3).toString('hex')}`;

    // Act
    const before = await keysOnAws(['list', '--stage', stage]);
    const init = await keysOnAws(['init', '--stage', stage]);
    const initAgain = await keysOnAws(['init', '--stage', stage]);
    const created = await ring(stage);
    const rotated = await keysOnAws(['rotate', '--stage', stage]);
    const afterRotation = await ring(stage);
    const early = await keysOnAws(['retire', '--stage', stage]);
    const forced = await keysOnAws(['retire', '--stage', stage, '--force']);
    const afterRetire = await ring(stage);
    const listed = await keysOnAws(['list', '--stage', stage]);

    // Assess
    expect(before).toMatchObject({ code: 1, stderr: expect.stringContaining('npm run keys -- init --aws') });
    expect(init, init.stderr).toMatchObject({ code: 0, stdout: expect.stringContaining(`SSM parameter /vpn-auth/${stage}/jwt-signing-keys`) });
    expect(initAgain).toMatchObject({ code: 1, stderr: expect.stringContaining('already exists') });
    expect(created).toHaveLength(1);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(afterRotation.map(([kid]) => kid)).toEqual([expect.stringMatching(/^k\d{8}T\d{6}Z(-\d+)?$/), created[0]![0]]);
    expect(afterRotation[1]).toEqual(created[0]);
    expect(early).toMatchObject({ code: 1, stderr: expect.stringContaining('may be valid until') });
    expect(forced.code, forced.stderr).toBe(0);
    expect(afterRetire).toEqual([afterRotation[0]]);
    expect(listed.stdout).toContain(`${afterRotation[0]![0]}  current (signs and verifies)`);
    // The audit trail on stderr names kids, never keys; no output ever shows a key.
    expect(auditLine(rotated.stderr, 'signing_key_rotated')).toMatchObject({ actor: 'keys-cli' });
    const output = [init, rotated, forced, listed].map((result) => result.stdout + result.stderr).join('\n');
    for (const [, secret] of afterRotation) expect(output).not.toContain(secret);
  });

  it('rotates the running stage: tokens the new key signs are accepted at once, the old tokens still are', async () => {
    // Prepare
    const { token: oldToken } = await login(DEMO_USER.email, DEMO_USER.password);
    const claims = decodeJwt(oldToken);

    // Act
    const rotated = await keysOnAws(['rotate', '--stage', E2E_STAGE]);
    const [current, ...previous] = await ring(E2E_STAGE);
    const [newKid, newSecret] = current!;
    const newToken = await new SignJWT({ sid: claims.sid, role: claims.role })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: newKid })
      .setIssuer(claims.iss!)
      .setAudience(claims.aud!)
      .setSubject(claims.sub!)
      .setJti('rotated')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(newSecret));

    // Assess: the Lambda meets a kid it lacks and reads the ring again (at most every 5 s)
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(previous.map(([kid]) => kid)).toContain(decodeProtectedHeader(oldToken).kid);
    await expect.poll(async () => (await call('GET', '/me', { token: newToken })).status, { timeout: 15_000, interval: 500 }).toBe(200);
    expect((await call('GET', '/me', { token: oldToken })).status).toBe(200);
  });
});

describe('a signing ring put by someone allowed only ssm:PutParameter, against running Lambdas', () => {
  const stage = 'planted';
  const api = stageApi(stage, {});
  let user: Awaited<ReturnType<typeof createUser>>;
  beforeAll(async () => {
    user = await createUser(api.app());
  });
  const send = (path: string, init: RequestInit = {}) => fetch(`${api.url}/v1/auth${path}`, { ...init, signal: AbortSignal.timeout(20_000) });
  const signIn = () => send('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: user.email, password: user.password }) });

  it('is refused: 503 on every endpoint and signing_keys_refused in the log, never a token of the planted key; `keys restore` puts the sealed ring back', async () => {
    // Prepare: before the Lambdas' first read, the parameter overwritten with a key of the writer's
    // choosing, under SSM's aws/ssm (no KMS permission needed); and a token that key would mint
    const planted = newSecret();
    const ssm = new SSMClient({ region: 'us-east-1', endpoint: apiEnv().SSM_ENDPOINT, credentials: LOCAL_CREDENTIALS });
    await ssm.send(new PutParameterCommand({ Name: signingKeyParameter(stage), Value: JSON.stringify({ planted }), Type: 'SecureString', Overwrite: true }));
    ssm.destroy();
    const forged = await new SignJWT({ sid: 'any', role: 'admin' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: 'planted' })
      .setIssuer('vpn-enterprise-auth')
      .setAudience('vpn-enterprise')
      .setSubject(user.id)
      .setJti('planted')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(planted));

    // Act
    const refused = await signIn();
    const me = await send('/me', { headers: { authorization: `Bearer ${forged}` } });
    const restored = await keysOnAws(['restore', '--stage', stage]);

    // Assess
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({ success: false, error: { code: 'service_unavailable', message: expect.any(String) } });
    expect(me.status).toBe(503);
    const lines = api.output().split('\n').filter((line) => line.includes('"signing_keys_refused"'));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(lines[0]!.slice(lines[0]!.indexOf('{')))).toMatchObject({ level: 'ERROR', source: signingKeyParameter(stage), error: { name: 'RingRefusedError' } });
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/^Restored version 1 of /);
    expect(restored.stdout).toContain('version 2');
    // Within 5 s of its last read a container (one per function) does not read again; then it takes
    // the restored ring, and the planted key's token is an unknown kid's
    await expect.poll(async () => (await signIn()).status, { timeout: 15_000, interval: 1000 }).toBe(200);
    await expect.poll(async () => (await send('/me', { headers: { authorization: `Bearer ${forged}` } })).status, { timeout: 15_000, interval: 1000 }).toBe(401);
  });
});

describe('npm run keys -- … on a local ring file', () => {
  it('creates an owner-only ring that the service accepts, and rotates it', async () => {
    // Prepare
    const file = join(mkdtempSync(join(tmpdir(), 'vpn-auth-keys-')), 'jwt-secret');

    // Act
    const init = await keysLocal(['init', '--file', file]);
    const first = readFileSync(file, 'utf8');
    const rotated = await keysLocal(['rotate', '--file', file]);
    const listed = await keysLocal(['list', '--file', file]);
    const config = loadConfig({ JWT_SECRET: readFileSync(file, 'utf8') });

    // Assess
    expect(init.code, init.stderr).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(rotated).toMatchObject({ code: 0, stdout: expect.stringContaining('Restart `npm start`') });
    const kids = signingKeyEntries(readFileSync(file, 'utf8').trim()).map(([kid]) => kid);
    expect(kids).toHaveLength(2);
    expect(kids[1]).toBe(signingKeyEntries(first.trim())[0]![0]);
    expect(config.signingKeySource).toMatchObject({ kind: 'inline', keys: { currentKid: kids[0] } });
    expect(listed.stdout.split('\n').filter((line) => line.startsWith('k'))).toEqual([
      expect.stringContaining(`${kids[0]}  current`),
      expect.stringContaining(`${kids[1]}  previous (verifies only)`),
    ]);
  });

  it.each([
    ['--stage without --aws', ['list', '--stage', 'prod'], 2, /--stage goes with --aws/],
    ['--file with --aws', ['list', '--aws', '--file', '/tmp/x'], 2, /--file is for a local ring/],
    ['an unknown command', ['shred'], 2, /Unknown command "shred"/],
    ['no ring file', ['list', '--file', '/nonexistent/jwt-secret'], 1, /No key ring at \/nonexistent\/jwt-secret/],
  ])('refuses %s with a clear message', async (_case, args, code, message) => {
    const result = await keysLocal(args);
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(message);
  });
});
