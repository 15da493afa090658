import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuthError, createAuthClient, memoryStorage, type AuthEvent } from '../src/index.js';
import { apiError, BASE_URL, fakeApi, json, USER } from './support/fake-api.js';

const FLOW_KEY = 'vpn-enterprise.auth.sso-flow';
const DEVICE_KEY = 'vpn-enterprise.auth.device-token';
const REDIRECT_URI = 'https://app.example.test/';

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-06-01T12:00:00Z') });
  vi.stubGlobal('BroadcastChannel', undefined);
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

function setup() {
  const api = fakeApi();
  const storage = memoryStorage();
  const auth = createAuthClient({ baseUrl: BASE_URL, fetch: api.fetch, storage });
  const events: AuthEvent[] = [];
  auth.onChange((event) => events.push(event));
  return { auth, api, storage, events };
}

/** Started for `target`: the authorize URL's query, and the callback the API would send back with a code. */
async function started(context: ReturnType<typeof setup>, target: { email: string } | { domain: string } = { email: 'ada@sso.example' }) {
  const { url } = await context.auth.sso.start(target, { redirectUri: REDIRECT_URI });
  const query = new URL(url).searchParams;
  const callback = `${REDIRECT_URI}?code=c_1&state=${encodeURIComponent(query.get('state')!)}`;
  return { url, query, callback };
}

async function rejection(promise: Promise<unknown>): Promise<AuthError> {
  const error = await promise.then(
    () => expect.unreachable('should have rejected'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AuthError);
  return error as AuthError;
}

const challenge = (code: string) => json(401, { success: false, error: { code, message: 'm' }, mfa_token: 'mt_s', mfa_expires_in: 300 });

describe('sso.start', () => {
  it("answers the API's authorize URL with the email, the redirect URI, a random state and the verifier's S256 challenge", async () => {
    // Prepare
    const context = setup();
    // Act
    const { url, query } = await started(context);
    // Assess
    expect(url.startsWith(`${BASE_URL}/auth/sso/authorize?`)).toBe(true);
    const flow = JSON.parse((await context.storage.get(FLOW_KEY))!);
    expect(flow.verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Object.fromEntries(query)).toEqual({
      email: 'ada@sso.example',
      redirect_uri: REDIRECT_URI,
      state: flow.state,
      code_challenge: createHash('sha256').update(flow.verifier).digest('base64url'),
      code_challenge_method: 'S256',
    });
    expect(flow.redirectUri).toBe(REDIRECT_URI);
    expect(context.api.requests).toEqual([]);
  });

  it('takes a domain instead of an email, and makes a new state and verifier each time', async () => {
    // Prepare
    const context = setup();
    // Act
    const first = await started(context, { domain: 'sso.example' });
    const second = await started(context, { domain: 'sso.example' });
    // Assess
    expect(first.query.get('domain')).toBe('sso.example');
    expect(first.query.has('email')).toBe(false);
    expect(second.query.get('state')).not.toBe(first.query.get('state'));
    expect(second.query.get('code_challenge')).not.toBe(first.query.get('code_challenge'));
  });

  it('without Web Crypto (an http page off localhost) rejects with https_required and keeps no flow', async () => {
    // Prepare
    const context = setup();
    vi.stubGlobal('crypto', { getRandomValues: crypto.getRandomValues.bind(crypto) });
    // Act
    const error = await rejection(context.auth.sso.start({ domain: 'sso.example' }, { redirectUri: REDIRECT_URI }));
    // Assess
    expect(error).toMatchObject({ status: 0, code: 'https_required' });
    expect(await context.storage.get(FLOW_KEY)).toBeNull();
  });
});

describe('sso.complete', () => {
  it('redeems the code with the verifier, signs in like signIn (session, device token, signed_in), and spends the flow', async () => {
    // Prepare
    const context = setup();
    const { callback } = await started(context);
    const { verifier } = JSON.parse((await context.storage.get(FLOW_KEY))!);
    context.api.on('POST /auth/sso/token', () => json(200, context.api.signIn()));
    // Act
    const result = await context.auth.sso.complete(callback);
    // Assess
    expect(result).toEqual({ status: 'signed_in', user: USER });
    expect(context.api.requests).toMatchObject([{ method: 'POST', path: '/auth/sso/token', body: { code: 'c_1', code_verifier: verifier } }]);
    expect(context.events).toEqual(['signed_in']);
    expect(context.auth.session?.user).toEqual(USER);
    expect(await context.storage.get(DEVICE_KEY)).toBe('dt_1');
    expect(await context.storage.get(FLOW_KEY)).toBeNull();
  });

  it('takes the query as a URL, a URLSearchParams or a plain object', async () => {
    for (const form of ['url', 'search', 'params', 'object'] as const) {
      // Prepare
      const context = setup();
      const { callback } = await started(context);
      context.api.on('POST /auth/sso/token', () => json(200, context.api.signIn()));
      const url = new URL(callback);
      const input = { url, search: url.search, params: url.searchParams, object: Object.fromEntries(url.searchParams) }[form];
      // Act
      const result = await context.auth.sso.complete(input);
      // Assess
      expect(result.status, form).toBe('signed_in');
    }
  });

  it('mfa_required: verify() goes on as after signIn', async () => {
    // Prepare
    const context = setup();
    const { callback } = await started(context);
    context.api.on('POST /auth/sso/token', () => challenge('mfa_required'));
    context.api.on('POST /auth/mfa/verify', () => json(200, context.api.signIn()));
    // Act
    const result = await context.auth.sso.complete(callback);
    if (result.status !== 'mfa_required') throw new Error(result.status);
    const done = await result.verify({ code: '123456' });
    // Assess
    expect(context.api.requests.at(-1)!.body).toEqual({ mfa_token: 'mt_s', code: '123456' });
    expect(done).toEqual({ status: 'signed_in', user: USER });
    expect(context.events).toEqual(['signed_in']);
  });

  it('mfa_enrollment_required: setup() and activate() go on as after signIn', async () => {
    // Prepare
    const context = setup();
    const { callback } = await started(context);
    context.api.on('POST /auth/sso/token', () => challenge('mfa_enrollment_required'));
    context.api.on('POST /auth/mfa/totp/setup', () => json(200, { success: true, secret: 'S'.repeat(32), otpauth_url: 'otpauth://totp/x' }));
    context.api.on('POST /auth/mfa/totp/activate', () => json(200, { ...context.api.signIn(), recovery_codes: ['aaaa-bbbb-cccc'] }));
    // Act
    const result = await context.auth.sso.complete(callback);
    if (result.status !== 'mfa_enrollment_required') throw new Error(result.status);
    await result.setup();
    const done = await result.activate('123456');
    // Assess
    expect(context.api.requests.slice(1).map((r) => r.body)).toEqual([{ mfa_token: 'mt_s' }, { code: '123456', mfa_token: 'mt_s' }]);
    expect(done).toEqual({ status: 'signed_in', user: USER, recoveryCodes: ['aaaa-bbbb-cccc'] });
  });

  it("error=access_denied rejects with access_denied and the server's error_description, sends nothing, and spends the flow", async () => {
    // Prepare
    const context = setup();
    const { query } = await started(context);
    const callback = new URLSearchParams({ error: 'access_denied', error_description: 'End-User aborted interaction', state: query.get('state')! });
    // Act
    const error = await rejection(context.auth.sso.complete(callback));
    // Assess
    expect(error).toMatchObject({ status: 401, code: 'access_denied', message: 'End-User aborted interaction' });
    expect(context.api.requests).toEqual([]);
    expect(await context.storage.get(FLOW_KEY)).toBeNull();
  });

  it("a state that is not the flow's rejects with invalid_state, sends nothing, and leaves the flow under way be", async () => {
    // Prepare
    const context = setup();
    const { callback } = await started(context);
    context.api.on('POST /auth/sso/token', () => json(200, context.api.signIn()));
    // Act
    const error = await rejection(context.auth.sso.complete({ code: 'c_1', state: 'forged' }));
    const sent = context.api.requests.length;
    const result = await context.auth.sso.complete(callback);
    // Assess
    expect(error).toMatchObject({ status: 0, code: 'invalid_state' });
    expect(sent).toBe(0);
    expect(result.status).toBe('signed_in');
  });

  it('is single use: the same callback a second time rejects with invalid_state, and so does one with no flow started', async () => {
    // Prepare
    const context = setup();
    const { callback } = await started(context);
    context.api.on('POST /auth/sso/token', () => json(200, context.api.signIn()));
    await context.auth.sso.complete(callback);
    // Act
    const again = await rejection(context.auth.sso.complete(callback));
    const never = await rejection(setup().auth.sso.complete(callback));
    // Assess
    expect(again.code).toBe('invalid_state');
    expect(never.code).toBe('invalid_state');
    expect(context.api.count('POST /auth/sso/token')).toBe(1);
  });

  it("the server's refusal (invalid_grant) rejects with its code and stores nothing", async () => {
    // Prepare
    const context = setup();
    const { callback } = await started(context);
    context.api.on('POST /auth/sso/token', () => apiError(400, 'invalid_grant'));
    // Act
    const error = await rejection(context.auth.sso.complete(callback));
    // Assess
    expect(error).toMatchObject({ status: 400, code: 'invalid_grant', message: 'message of invalid_grant' });
    expect(context.auth.session).toBeNull();
    expect(context.events).toEqual([]);
  });
});
