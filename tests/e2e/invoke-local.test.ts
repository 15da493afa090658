import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { paramArguments } from '../../infra/settings.js';
import { PROJECT_ROOT, SERVERLESS_BIN } from '../../scripts/local-stack.js';
import { E2E_STAGE } from '../support/api-setup.js';
import { apiEnv, apiUrl } from '../support/context.js';
import { runScript } from '../support/cli.js';

interface Invocation {
  statusCode: number;
  headers: Record<string, string>;
  body: any;
  /** What the handler logged before its result. */
  logs: string;
}

/**
 * `serverless invoke local -f <fn> -p <event>`: the bundled handler run by the framework,
 * as CI does, against the same dynalite as the HTTP tests.
 */
function invokeLocal(fn: string, eventPath: string): Promise<Invocation> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [SERVERLESS_BIN, 'invoke', 'local', '-f', fn, '-p', eventPath, '--stage', E2E_STAGE, ...paramArguments(apiEnv())], {
      cwd: PROJECT_ROOT,
      // Nothing of the stack's environment: the framework loads .env.test, as it loads .env.dev
      // that `npm start` writes (useDotenv).
      env: { ...process.env, ESBUILD_WORK_FOLDER: '.esbuild-invoke', LOG_LEVEL: 'info' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      // The result is the JSON object printed from a line `{` to a line `}`; log lines come before
      // it, and may come after it too (the signing keys' background read finishing, say).
      const match = /^\{\s*\n[\s\S]*?\n\}\s*$/m.exec(stdout);
      if (code !== 0 || !match) return reject(new Error(`invoke local ${fn} exited ${code}:\n${stdout}\n${stderr}`));
      try {
        const result = { ...(JSON.parse(match[0]) as Invocation), logs: stdout.slice(0, match.index) + stdout.slice(match.index + match[0].length) };
        if (typeof result.body === 'string') result.body = JSON.parse(result.body);
        resolveRun(result);
      } catch (error) {
        reject(new Error(`invoke local ${fn}: unreadable result (${(error as Error).message}):\n${stdout}`));
      }
    });
  });
}

const eventFile = (fn: string) => join(PROJECT_ROOT, 'events', `${fn}.json`);

/** A copy of a committed event with a fresh credential in it. */
function eventWith(fn: string, change: (event: any) => void): string {
  const event = JSON.parse(readFileSync(eventFile(fn), 'utf8'));
  change(event);
  const path = join(mkdtempSync(join(tmpdir(), 'vpn-auth-event-')), `${fn}.json`);
  writeFileSync(path, JSON.stringify(event));
  return path;
}

describe('serverless invoke local -f <fn> -p events/<fn>.json, after the one helper `npm run events`', () => {
  it('works for every function against the running stack', async () => {
    // Prepare: the committed events, filled in by the helper (into a copy, to leave the checkout alone)
    const dir = mkdtempSync(join(tmpdir(), 'vpn-auth-events-'));
    cpSync(join(PROJECT_ROOT, 'events'), dir, { recursive: true });
    const helper = await runScript('scripts/events.ts', ['--dir', dir], { env: { PORT: new URL(apiUrl()).port } });
    expect(helper.code, helper.stderr).toBe(0);
    const invoke = (fn: string, file: string) => invokeLocal(fn, join(dir, `${file}.json`));

    // Act, one function after the other
    const me = await invoke('me', 'me');
    const authorizer = (await invoke('authorizer', 'authorizer')) as unknown as { isAuthorized: boolean };
    const example = await invoke('exampleProtected', 'example-protected');
    const notFound = await invoke('notFound', 'not-found');
    const sessions = await invoke('listSessions', 'list-sessions');
    const endSession = await invoke('endSession', 'end-session');
    const changePassword = await invoke('changePassword', 'change-password');
    const mfa = {
      setup: await invoke('mfaSetup', 'mfa-setup'),
      activate: await invoke('mfaActivate', 'mfa-activate'),
      verify: await invoke('mfaVerify', 'mfa-verify'),
      recoveryCodes: await invoke('mfaRecoveryCodes', 'mfa-recovery-codes'),
      turnOff: await invoke('mfaTurnOff', 'mfa-turn-off'),
    };
    const apiKeys = {
      create: await invoke('createApiKey', 'create-api-key'),
      list: await invoke('listApiKeys', 'list-api-keys'),
      revoke: await invoke('revokeApiKey', 'revoke-api-key'),
    };
    const refresh = await invoke('refresh', 'refresh');
    const logout = await invoke('logout', 'logout');
    const login = await invoke('login', 'login');

    // Assess
    expect(me.statusCode).toBe(200);
    expect(authorizer).toMatchObject({ isAuthorized: true });
    expect(example.statusCode).toBe(200);
    expect(example.body.caller.sub).toBe(me.body.user.id);
    expect(notFound.statusCode).toBe(404);
    expect(notFound.body.error.code).toBe('not_found');
    expect(sessions.statusCode).toBe(200);
    expect(sessions.body.sessions.length).toBeGreaterThanOrEqual(2);
    expect(endSession.statusCode).toBe(200);
    // The committed event asks for the current password as the new one: refused, the demo user's kept
    expect(changePassword.statusCode).toBe(400);
    expect(changePassword.body.error.code).toBe('weak_password');
    expect(refresh.statusCode).toBe(200);
    expect(logout.statusCode).toBe(200);
    expect(login.statusCode).toBe(200);
    // A real key for the demo user, listed; the committed revoke event's id is a placeholder
    expect(apiKeys.create.statusCode).toBe(201);
    expect(apiKeys.create.body.key).toMatch(/^vak_/);
    expect(apiKeys.list.statusCode).toBe(200);
    expect(apiKeys.list.body.api_keys.map((key: { id: string }) => key.id)).toContain(apiKeys.create.body.api_key.id);
    expect(`${apiKeys.revoke.statusCode} ${apiKeys.revoke.body.error.code}`).toBe('404 api_key_not_found');
    // The MFA events leave the demo user's sign-in as it is: a pending secret, placeholders refused
    expect(mfa.setup.statusCode).toBe(200);
    expect(mfa.setup.body.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect([mfa.activate, mfa.verify, mfa.recoveryCodes, mfa.turnOff].map((reply) => `${reply.statusCode} ${reply.body.error.code}`)).toEqual([
      '401 invalid_mfa_code',
      '401 invalid_mfa_token',
      '409 mfa_not_enabled',
      '409 mfa_not_enabled',
    ]);
  }, 240_000);
});

describe('serverless invoke local with the committed API Gateway v2 events', () => {
  it('runs login, me, refresh and logout end to end', async () => {
    // login: events/login.json as committed (the demo user's credentials)
    const login = await invokeLocal('login', eventFile('login'));
    expect(login.statusCode).toBe(200);
    expect(login.headers['Content-Type']).toBe('application/json');
    expect(login.body.user.email).toBe('user@company.com');

    // me: the committed event with the token just issued
    const me = await invokeLocal('me', eventWith('me', (event) => (event.headers.authorization = `Bearer ${login.body.token}`)));
    expect(me.statusCode).toBe(200);
    expect(me.body.user.id).toBe(login.body.user.id);

    // refresh: the committed event with the refresh token just issued
    const refresh = await invokeLocal('refresh', eventWith('refresh', (event) => (event.body = JSON.stringify({ refresh_token: login.body.refresh_token }))));
    expect(refresh.statusCode).toBe(200);
    expect(decodeJwt(refresh.body.token).sid).toBe(decodeJwt(login.body.token).sid);

    // logout: the committed event with the refreshed access token
    const logout = await invokeLocal('logout', eventWith('logout', (event) => (event.headers.authorization = `Bearer ${refresh.body.token}`)));
    expect(logout.statusCode).toBe(200);
    expect(logout.body).toEqual({ success: true });

    // The audit lines these invocations wrote carry ids, never the credentials.
    const logs = [login, me, refresh, logout].map((invocation) => invocation.logs).join('\n');
    // One Powertools JSON line per event, with the Lambda context injected.
    const loginLine = login.logs.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line)).find((line) => line.message === 'login_succeeded');
    expect(loginLine).toMatchObject({
      level: 'INFO',
      service: 'vpn-auth',
      function_name: `vpn-auth-${E2E_STAGE}-login`,
      function_request_id: expect.any(String),
      cold_start: expect.any(Boolean),
      userId: login.body.user.id,
      sessionId: decodeJwt(login.body.token).sid,
    });
    // Its metrics, in CloudWatch's embedded metric format: counted, under the service only.
    const emf = (invocation: Invocation) => invocation.logs.split('\n').filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line));
    expect(emf(login)).toContainEqual(expect.objectContaining({ SignInSucceeded: 1, service: 'vpn-auth', stage: E2E_STAGE, _aws: expect.objectContaining({ CloudWatchMetrics: [expect.objectContaining({ Namespace: 'VpnEnterprise/Auth', Dimensions: [['service', 'stage']] })] }) }));
    expect(emf(refresh)).toContainEqual(expect.objectContaining({ TokenRefreshed: 1 }));
    expect(emf(logout)).toContainEqual(expect.objectContaining({ Logout: 1, scope: 'local' }));
    for (const secret of ['secure_password', login.body.token, login.body.refresh_token, refresh.body.token, refresh.body.refresh_token]) {
      expect(logs).not.toContain(secret);
    }
  });

  it('runs the authorizer: the committed event (placeholder token) is denied, a fresh token is allowed', async () => {
    const denied = (await invokeLocal('authorizer', eventFile('authorizer'))) as unknown as { isAuthorized: boolean };
    expect(denied).toMatchObject({ isAuthorized: false });
    const login = await invokeLocal('login', eventFile('login'));
    const allowed = (await invokeLocal(
      'authorizer',
      eventWith('authorizer', (event) => {
        event.headers.authorization = `Bearer ${login.body.token}`;
        event.identitySource = [event.headers.authorization];
      }),
    )) as unknown as { isAuthorized: boolean; context: Record<string, string> };
    expect(allowed).toMatchObject({ isAuthorized: true, context: { sub: login.body.user.id, role: 'admin' } });
  });

  it('answers the committed events that carry placeholders with proper 401s', async () => {
    const me = await invokeLocal('me', eventFile('me'));
    expect(me.statusCode).toBe(401);
    expect(me.body.error.code).toBe('invalid_token');
    const refresh = await invokeLocal('refresh', eventFile('refresh'));
    expect(refresh.statusCode).toBe(401);
    expect(refresh.body.error.code).toBe('invalid_refresh_token');
  });
});
