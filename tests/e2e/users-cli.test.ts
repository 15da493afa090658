import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadStoreConfig } from '../../lib/platform/config.js';
import { createDocumentClient } from '../../lib/platform/dynamo.js';
import { UsersRepository } from '../../lib/store/users.js';
import { ensureTables } from '../../scripts/local-stack.js';
import { stageParam } from '../../scripts/stage-params.js';
import { auditLine, runScript, type CliResult } from '../support/cli.js';
import { apiEnv, dynamoEndpoint } from '../support/context.js';
import { call, expectError, login, requestFrom } from '../support/http.js';
import { uniqueEmail } from '../support/store.js';

/** `npm run users -- …` as an operator runs it, pointed at the API's store. */
function users(args: string[], stdin = ''): Promise<CliResult> {
  return runScript('scripts/users.ts', args, { stdin, env: apiEnv() });
}

describe('the users CLI against the running API', () => {
  it('creates a user who can then sign in over HTTP, and lists it', async () => {
    // Prepare
    const email = uniqueEmail('cli');

    // Act
    const created = await users(['create', '--email', email.toUpperCase(), '--name', 'Cli User', '--role', 'user', '--password-stdin'], 'cli-password-1\n');

    // Assess
    expect(created, created.stderr).toMatchObject({ code: 0 });
    expect(created.stdout).toContain(email);
    const pair = await login(email, 'cli-password-1');
    expect(pair.user).toMatchObject({ email, name: 'Cli User', role: 'user' });
    const listed = await users(['list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`usr_\\S+\\s+${email.replace(/\./g, '\\.')}\\s+"Cli User"\\s+user\\s+active`));
    expect(listed.stdout).not.toContain('$2');
  });

  it.each([
    ['a duplicate email', (email: string) => ['create', '--email', email, '--name', 'Again', '--role', 'user', '--password-stdin'], 'another-password\n', 1, /already exists/],
    ['an invalid role', (email: string) => ['create', '--email', `x${email}`, '--name', 'X', '--role', 'root', '--password-stdin'], 'long-enough-pw\n', 2, /--role must be one of admin, user/],
    ['a short password', (email: string) => ['create', '--email', `y${email}`, '--name', 'Y', '--role', 'user', '--password-stdin'], 'short\n', 2, /at least 12 characters/],
    ['a common password', (email: string) => ['create', '--email', `v${email}`, '--name', 'V', '--role', 'user', '--password-stdin'], 'Password1234\n', 2, /too common/],
    ['a password containing the email', () => ['create', '--email', 'jane.localpart@example.com', '--name', 'U', '--role', 'user', '--password-stdin'], 'my JANE.LOCALPART pass\n', 2, /email/],
    ['an over-long password', (email: string) => ['create', '--email', `z${email}`, '--name', 'Z', '--role', 'user', '--password-stdin'], `${'é'.repeat(37)}\n`, 2, /at most 72 bytes/],
    ['a password on the command line', (email: string) => ['create', '--email', `w${email}`, '--name', 'W', '--role', 'user', '--password', 'secret123'], '', 2, /never given on the command line/],
    ['a malformed email', () => ['create', '--email', 'not-an-email', '--name', 'N', '--role', 'user', '--password-stdin'], 'long-enough-pw\n', 2, /not an email address/],
    ['an unknown command', () => ['delete-everything'], '', 2, /Unknown command/],
    ['an unknown user', () => ['disable', '--email', uniqueEmail('ghost')], '', 1, /No user/],
  ])('refuses %s with a clear message and a non-zero exit', async (_label, args, stdin, code, message) => {
    const email = uniqueEmail('dup');
    expect((await users(['create', '--email', email, '--name', 'First', '--role', 'user', '--password-stdin'], 'first-password\n')).code).toBe(0);
    const result = await users(args(email), stdin);
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('disables (ending sessions), enables, changes the password and revokes sessions', async () => {
    // Prepare
    const email = uniqueEmail('ops');
    expect((await users(['create', '--email', email, '--name', 'Ops', '--role', 'admin', '--password-stdin'], 'first-password\n')).code).toBe(0);
    const first = await login(email, 'first-password');

    // Disable: sign-in refused, the live session ends at once.
    expect((await users(['disable', '--email', email])).code).toBe(0);
    expectError(await call('POST', '/login', { body: { email, password: 'first-password' } }), 401, 'invalid_credentials');
    expectError(await call('GET', '/me', { token: first.token }), 401, 'invalid_token');

    // Enable: sign-in works again; the old session stays ended.
    expect((await users(['enable', '--email', email])).code).toBe(0);
    const second = await login(email, 'first-password');
    expectError(await call('GET', '/me', { token: first.token }), 401, 'invalid_token');

    // New password: the old one fails, existing sessions end.
    expect((await users(['set-password', '--email', email, '--password-stdin'], 'second-password\n')).code).toBe(0);
    expectError(await call('POST', '/login', { body: { email, password: 'first-password' } }), 401, 'invalid_credentials');
    expectError(await call('GET', '/me', { token: second.token }), 401, 'invalid_token');
    const third = await login(email, 'second-password');

    // Revoke sessions: the refresh token dies with the access token.
    expect((await users(['revoke-sessions', '--email', email])).code).toBe(0);
    expectError(await call('GET', '/me', { token: third.token }), 401, 'invalid_token');
    expectError(await call('POST', '/refresh', { body: { refresh_token: third.refresh_token } }), 401, 'invalid_refresh_token');
  });

  it('lists a user\'s live sessions as a table and as JSON, ends one by id, and refuses the current password as the new one (audited)', async () => {
    // Prepare
    const email = uniqueEmail('sessions');
    expect((await users(['create', '--email', email, '--name', 'S', '--role', 'user', '--password-stdin'], 'first-password\n')).code).toBe(0);
    const laptop = await requestFrom('127.0.0.1', 'POST', '/login', { body: JSON.stringify({ email, password: 'first-password' }), headers: { 'content-type': 'application/json', 'user-agent': 'Laptop/1.0' } });
    const phone = await requestFrom('127.0.0.1', 'POST', '/login', { body: JSON.stringify({ email, password: 'first-password' }), headers: { 'content-type': 'application/json', 'user-agent': 'Phone/2.0' } });
    const phoneSid = JSON.parse(Buffer.from(phone.body.token.split('.')[1], 'base64url').toString()).sid as string;

    // Act
    const table = await users(['sessions', '--email', email]);
    const json = await users(['sessions', '--email', email, '--json']);
    const ended = await users(['end-session', '--id', phoneSid]);
    const unknown = await users(['end-session', '--id', 'AAAAAAAAAAAAAAAAAAAAAA']);
    const same = await users(['set-password', '--email', email, '--password-stdin'], 'first-password\n');

    // Assess
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+CREATED\s+LAST USED\s+IP\s+USER AGENT/);
    expect(table.stdout).toContain('Laptop/1.0');
    expect(table.stdout).toContain(phoneSid);
    expect(auditLine(table.stderr, 'sessions_listed')).toMatchObject({ count: 2 });
    const sessions = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    expect(sessions.map((session) => session.user_agent)).toEqual(['Phone/2.0', 'Laptop/1.0']);
    expect(Object.keys(sessions[0]!).sort()).toEqual(['amr', 'created_at', 'id', 'idp', 'ip', 'last_used_at', 'user_agent']);
    expect(ended.code, ended.stderr).toBe(0);
    expect(auditLine(ended.stderr, 'session_ended')).toMatchObject({ endedSessionId: phoneSid });
    expectError(await call('GET', '/me', { token: phone.body.token }), 401, 'invalid_token');
    expect((await call('GET', '/me', { token: laptop.body.token })).status).toBe(200);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/No session/);
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/must differ from the current/);
    expect((await call('GET', '/me', { token: laptop.body.token })).status).toBe(200);
  });

  it('unlock clears the account\'s counters: the pair lock, the hourly cap and its device tokens\' locks (audited)', async () => {
    // Prepare: the account locked from one address, and its device token locked
    const email = uniqueEmail('locked');
    expect((await users(['create', '--email', email, '--name', 'Locked', '--role', 'user', '--password-stdin'], 'right-password\n')).code).toBe(0);
    const deviceToken = (await requestFrom('127.0.0.90', 'POST', '/login', { body: JSON.stringify({ email, password: 'right-password' }), headers: { 'content-type': 'application/json' } })).body.device_token as string;
    for (let i = 0; i < 5; i++) {
      await requestFrom('127.0.0.91', 'POST', '/login', { body: JSON.stringify({ email, password: `guess-${i}` }), headers: { 'content-type': 'application/json' } });
      await requestFrom('127.0.0.92', 'POST', '/login', { body: JSON.stringify({ email, password: `guess-${i}`, device_token: deviceToken }), headers: { 'content-type': 'application/json' } });
    }
    const signIn = (ip: string, body: Record<string, string>) => requestFrom(ip, 'POST', '/login', { body: JSON.stringify({ email, password: 'right-password', ...body }), headers: { 'content-type': 'application/json' } });
    expect((await signIn('127.0.0.91', {})).status).toBe(429);
    expect((await signIn('127.0.0.92', { device_token: deviceToken })).status).toBe(429);

    // Act
    const unlocked = await users(['unlock', '--email', email]);

    // Assess
    expect(unlocked, unlocked.stderr).toMatchObject({ code: 0 });
    expect(unlocked.stdout).toContain(`Unlocked ${email}`);
    expect(auditLine(unlocked.stderr, 'account_unlocked')).toMatchObject({ actor: 'users-cli', userId: expect.stringMatching(/^usr_/) });
    expect((await signIn('127.0.0.91', {})).status).toBe(200);
    expect((await signIn('127.0.0.92', { device_token: deviceToken })).status).toBe(200);
  });

  it("hashes with the stage's bcrypt cost from serverless.yml on --aws, whatever BCRYPT_COST the operator's shell holds", async () => {
    // Prepare: "AWS" is the e2e dynalite, reached the way the SDK reaches any endpoint (AWS_ENDPOINT_URL_DYNAMODB)
    const stage = `c${randomBytes(3).toString('hex')}`;
    await ensureTables(dynamoEndpoint(), stage);
    const email = uniqueEmail('cost');
    const aws = { AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint(), DYNAMODB_ENDPOINT: undefined, AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1', AWS_PROFILE: undefined, BCRYPT_COST: '5' };

    // Act
    const created = await runScript('scripts/users.ts', ['create', '--aws', '--stage', stage, '--email', email, '--name', 'Cost', '--role', 'user', '--password-stdin'], { stdin: 'a-good-password\n', env: aws });

    // Assess
    expect(created, created.stderr).toMatchObject({ code: 0 });
    const config = loadStoreConfig({ STAGE: stage, DYNAMODB_ENDPOINT: dynamoEndpoint() });
    const db = createDocumentClient(config);
    const user = await new UsersRepository(db, config.usersTable).findByEmail(email);
    db.destroy();
    expect(user?.passwordHash).toMatch(new RegExp(`^\\$2[aby]\\$${stageParam(stage, 'bcryptCost')}\\$`));
    expect(stageParam(stage, 'bcryptCost')).toBe(12);
  });
});
