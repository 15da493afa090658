import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuthError, createAuthClient, memoryStorage, type AuthClientOptions, type AuthEvent } from '../src/index.js';
import { apiError, BASE_URL, fakeApi, gate, json, USER } from './support/fake-api.js';

const SESSION_KEY = 'vpn-enterprise.auth.session';
const DEVICE_KEY = 'vpn-enterprise.auth.device-token';

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-06-01T12:00:00Z') });
  // The tabs' channel has its own tests (sync.test.ts); here every instance stands alone.
  vi.stubGlobal('BroadcastChannel', undefined);
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

function setup(options: Partial<AuthClientOptions> = {}, api = fakeApi()) {
  const storage = options.storage ?? memoryStorage();
  const auth = createAuthClient({ baseUrl: BASE_URL, fetch: api.fetch, storage, ...options });
  const events: AuthEvent[] = [];
  auth.onChange((event) => events.push(event));
  return { auth, api, storage, events };
}

async function signedIn(options: Partial<AuthClientOptions> = {}, api = fakeApi()) {
  const context = setup(options, api);
  await context.auth.signIn({ email: USER.email, password: 'correct horse battery' });
  context.events.length = 0;
  return context;
}

/** Past the 60 s margin of a 900 s token. */
const nearExpiry = () => vi.advanceTimersByTime(850_000);

async function rejection(promise: Promise<unknown>): Promise<AuthError> {
  const error = await promise.then(
    () => expect.unreachable('should have rejected'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AuthError);
  return error as AuthError;
}

describe('signIn', () => {
  it('resolves to signed_in, stores the session and the device token, emits signed_in', async () => {
    // Prepare
    const { auth, api, storage, events } = setup();
    // Act
    const result = await auth.signIn({ email: USER.email, password: 'pw' });
    // Assess
    expect(result).toEqual({ status: 'signed_in', user: USER });
    expect(api.requests[0]).toMatchObject({ method: 'POST', path: '/auth/login', body: { email: USER.email, password: 'pw' } });
    expect(api.requests[0]!.body).not.toHaveProperty('device_token');
    expect(JSON.parse((await storage.get(SESSION_KEY))!)).toEqual({
      access_token: api.live.access,
      refresh_token: api.live.refresh,
      expires_at: Date.now() + 900_000,
      user: USER,
    });
    expect(await storage.get(DEVICE_KEY)).toBe('dt_1');
    expect(events).toEqual(['signed_in']);
    expect(auth.session).toEqual({ user: USER, expiresAt: Date.now() + 900_000 });
  });

  it('tolerates a trailing slash on baseUrl', async () => {
    // Prepare
    const { auth, api } = setup({ baseUrl: `${BASE_URL}/` });
    // Act
    await auth.signIn({ email: USER.email, password: 'pw' });
    // Assess
    expect(api.requests[0]!.path).toBe('/auth/login');
  });

  it('sends the stored device token, replaces it with the new one, and keeps it across signOut', async () => {
    // Prepare
    const { auth, api, storage } = await signedIn();
    api.on('POST /auth/login', () => json(200, { ...api.pair(), device_token: 'dt_renewed' }));
    // Act
    await auth.signOut();
    const kept = await storage.get(DEVICE_KEY);
    await auth.signIn({ email: USER.email, password: 'pw' });
    // Assess
    expect(kept).toBe('dt_1');
    expect(api.requests.at(-1)!.body.device_token).toBe('dt_1');
    expect(await storage.get(DEVICE_KEY)).toBe('dt_renewed');
  });

  it('mfa_required: verify({code}) sends mfa_token and code, then signs in', async () => {
    // Prepare
    const { auth, api, events } = setup();
    api.on('POST /auth/login', () =>
      json(401, { success: false, error: { code: 'mfa_required', message: 'm' }, mfa_token: 'mt_x', mfa_expires_in: 300 }),
    );
    api.on('POST /auth/mfa/verify', () => json(200, api.signIn()));
    // Act
    const result = await auth.signIn({ email: USER.email, password: 'pw' });
    if (result.status !== 'mfa_required') throw new Error(result.status);
    const done = await result.verify({ code: '123456' });
    // Assess
    expect(api.requests.at(-1)!.body).toEqual({ mfa_token: 'mt_x', code: '123456' });
    expect(done).toEqual({ status: 'signed_in', user: USER });
    expect(events).toEqual(['signed_in']);
    expect(await auth.getAccessToken()).toBe(api.live.access);
  });

  it('mfa_required: verify({recoveryCode}) sends recovery_code and reports the codes left', async () => {
    // Prepare
    const { auth, api } = setup();
    api.on('POST /auth/login', () =>
      json(401, { success: false, error: { code: 'mfa_required', message: 'm' }, mfa_token: 'mt_x', mfa_expires_in: 300 }),
    );
    api.on('POST /auth/mfa/verify', () => json(200, { ...api.signIn(), recovery_codes_left: 9 }));
    // Act
    const result = await auth.signIn({ email: USER.email, password: 'pw' });
    if (result.status !== 'mfa_required') throw new Error(result.status);
    const done = await result.verify({ recoveryCode: 'abcd-efgh-jkmn' });
    // Assess
    expect(api.requests.at(-1)!.body).toEqual({ mfa_token: 'mt_x', recovery_code: 'abcd-efgh-jkmn' });
    expect(done).toEqual({ status: 'signed_in', user: USER, recoveryCodesLeft: 9 });
  });

  it('mfa_required: a wrong code rejects with the server code, and a second try is allowed', async () => {
    // Prepare
    const { auth, api } = setup();
    api.on('POST /auth/login', () =>
      json(401, { success: false, error: { code: 'mfa_required', message: 'm' }, mfa_token: 'mt_x', mfa_expires_in: 300 }),
    );
    let tries = 0;
    api.on('POST /auth/mfa/verify', () => (++tries === 1 ? apiError(401, 'invalid_mfa_code') : json(200, api.signIn())));
    const result = await auth.signIn({ email: USER.email, password: 'pw' });
    if (result.status !== 'mfa_required') throw new Error(result.status);
    // Act
    const error = await rejection(result.verify({ code: '000000' }));
    const done = await result.verify({ code: '123456' });
    // Assess
    expect(error).toMatchObject({ status: 401, code: 'invalid_mfa_code', message: 'message of invalid_mfa_code' });
    expect(done.status).toBe('signed_in');
  });

  it('mfa_enrollment_required: setup() gives the secret, activate(code) signs in with the recovery codes', async () => {
    // Prepare
    const { auth, api, storage } = setup();
    const codes = Array.from({ length: 10 }, (_, i) => `aaaa-bbbb-000${i}`);
    api.on('POST /auth/login', () =>
      json(401, { success: false, error: { code: 'mfa_enrollment_required', message: 'm' }, mfa_token: 'mt_e', mfa_expires_in: 300 }),
    );
    api.on('POST /auth/mfa/totp/setup', () => json(200, { success: true, secret: 'S'.repeat(32), otpauth_url: 'otpauth://totp/x' }));
    api.on('POST /auth/mfa/totp/activate', () => json(200, { ...api.signIn(), device_token: 'dt_enrolled', recovery_codes: codes }));
    // Act
    const result = await auth.signIn({ email: USER.email, password: 'pw' });
    if (result.status !== 'mfa_enrollment_required') throw new Error(result.status);
    const secret = await result.setup();
    const done = await result.activate('123456');
    // Assess
    expect(secret).toEqual({ secret: 'S'.repeat(32), otpauthUrl: 'otpauth://totp/x' });
    expect(api.requests[1]!.body).toEqual({ mfa_token: 'mt_e' });
    expect(api.requests[2]!.body).toEqual({ code: '123456', mfa_token: 'mt_e' });
    expect(done).toEqual({ status: 'signed_in', user: USER, recoveryCodes: codes });
    expect(await storage.get(DEVICE_KEY)).toBe('dt_enrolled');
    expect(auth.session?.user).toEqual(USER);
  });

  it('a wrong password rejects with invalid_credentials and stores nothing', async () => {
    // Prepare
    const { auth, api, storage, events } = setup();
    api.on('POST /auth/login', () => apiError(401, 'invalid_credentials'));
    // Act
    const error = await rejection(auth.signIn({ email: USER.email, password: 'nope' }));
    // Assess
    expect(error).toMatchObject({ status: 401, code: 'invalid_credentials', message: 'message of invalid_credentials' });
    expect(error.retryAfter).toBeUndefined();
    expect(await storage.get(SESSION_KEY)).toBeNull();
    expect(events).toEqual([]);
  });

  it('a 429 rejects with retryAfter from Retry-After', async () => {
    // Prepare
    const { auth, api } = setup();
    api.on('POST /auth/login', () => apiError(429, 'too_many_attempts', { 'Retry-After': '42' }));
    // Act
    const error = await rejection(auth.signIn({ email: USER.email, password: 'pw' }));
    // Assess
    expect(error).toMatchObject({ status: 429, code: 'too_many_attempts', retryAfter: 42 });
  });

  it('a Retry-After given as an HTTP date becomes seconds', async () => {
    // Prepare
    const { auth, api } = setup();
    const later = new Date(Date.now() + 120_000).toUTCString();
    api.on('POST /auth/login', () => apiError(429, 'too_many_attempts', { 'Retry-After': later }));
    // Act
    const error = await rejection(auth.signIn({ email: USER.email, password: 'pw' }));
    // Assess
    expect(error).toMatchObject({ status: 429, retryAfter: 120 });
  });

  it('a network failure rejects with status 0 network_error', async () => {
    // Prepare
    const { auth } = setup({ fetch: () => Promise.reject(new TypeError('fetch failed')) });
    // Act
    const error = await rejection(auth.signIn({ email: USER.email, password: 'pw' }));
    // Assess
    expect(error).toMatchObject({ status: 0, code: 'network_error' });
  });

  it('an answer that is not JSON rejects with unexpected_response', async () => {
    // Prepare
    const { auth, api } = setup();
    api.on('POST /auth/login', () => new Response('<html>Bad gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } }));
    // Act
    const error = await rejection(auth.signIn({ email: USER.email, password: 'pw' }));
    // Assess
    expect(error).toMatchObject({ status: 502, code: 'unexpected_response' });
  });
});

describe('createAuthClient', () => {
  it.each([Number.NaN, -1, Number.POSITIVE_INFINITY, '60'])('refuses refreshMarginSeconds %s with a TypeError', (value) => {
    // Act
    const attempt = () => createAuthClient({ baseUrl: BASE_URL, refreshMarginSeconds: value as number });
    // Assess
    expect(attempt).toThrow(TypeError);
  });

  it('accepts a margin of 0', () => {
    // Act
    const attempt = () => createAuthClient({ baseUrl: BASE_URL, refreshMarginSeconds: 0 });
    // Assess
    expect(attempt).not.toThrow();
  });
});

describe('getAccessToken', () => {
  it('rejects with not_signed_in without a session, sending nothing', async () => {
    // Prepare
    const { auth, api } = setup();
    // Act
    const error = await rejection(auth.getAccessToken());
    // Assess
    expect(error).toMatchObject({ status: 401, code: 'not_signed_in' });
    expect(api.requests).toEqual([]);
  });

  it('returns the stored token until the margin, then refreshes first', async () => {
    // Prepare
    const { auth, api, events } = await signedIn({ refreshMarginSeconds: 60 });
    const first = api.live.access;
    // Act
    vi.advanceTimersByTime(839_000); // 61 s left
    const before = await auth.getAccessToken();
    vi.advanceTimersByTime(2_000); // 59 s left
    const after = await auth.getAccessToken();
    // Assess
    expect(before).toBe(first);
    expect(after).not.toBe(first);
    expect(after).toBe(api.live.access);
    expect(api.count('POST /auth/refresh')).toBe(1);
    expect(events).toEqual(['token_refreshed']);
  });

  it('keeps the margin under half the token lifetime, so short tokens are not refreshed at every call', async () => {
    // Prepare
    const { auth, api } = await signedIn({ refreshMarginSeconds: 60 }, fakeApi({ ttlSeconds: 10 }));
    // Act
    await auth.getAccessToken();
    vi.advanceTimersByTime(4_000);
    await auth.getAccessToken();
    vi.advanceTimersByTime(2_000);
    await auth.getAccessToken();
    // Assess
    expect(api.count('POST /auth/refresh')).toBe(1);
  });

  it('reads a session stored before the instance was created (a reload)', async () => {
    // Prepare
    const { api, storage } = await signedIn();
    const token = api.live.access;
    // Act
    const { auth } = setup({ storage }, api);
    // Assess
    expect(auth.session?.user).toEqual(USER);
    expect(await auth.getAccessToken()).toBe(token);
  });

  it('works with an async storage', async () => {
    // Prepare
    const values = new Map<string, string>();
    const storage = {
      get: async (key: string) => values.get(key) ?? null,
      set: async (key: string, value: string) => void values.set(key, value),
      remove: async (key: string) => void values.delete(key),
    };
    const { api } = await signedIn({ storage });
    // Act
    const { auth } = setup({ storage }, api);
    const token = await auth.getAccessToken();
    // Assess
    expect(token).toBe(api.live.access);
    expect(auth.session?.user).toEqual(USER);
  });
});

describe('single flight', () => {
  it('20 concurrent getAccessToken, fetch and me calls send exactly one refresh and all get its pair', async () => {
    // Prepare
    const { auth, api } = await signedIn();
    const held = gate();
    api.on('POST /auth/refresh', async () => {
      await held.opened;
      return json(200, api.pair());
    });
    api.on('GET /data', (r) => json(200, { authorization: r.authorization }));
    // Each me() call's own request: the Bearer it was sent with.
    const meBearers: (string | null)[] = [];
    api.on('GET /auth/me', (r) => {
      meBearers.push(r.authorization);
      return json(200, { success: true, user: USER });
    });
    nearExpiry();
    // Act
    const calls = Array.from({ length: 20 }, (_, i) =>
      i % 3 === 0
        ? auth.getAccessToken()
        : i % 3 === 1
          ? auth.fetch('http://api.test/v1/data').then(async (r) => ((await r.json()) as { authorization: string }).authorization.slice(7))
          : auth.me().then(() => 'me'),
    );
    await vi.advanceTimersByTimeAsync(0);
    held.open();
    const tokens = await Promise.all(calls);
    // Assess
    expect(api.count('POST /auth/refresh')).toBe(1);
    expect(new Set(tokens.filter((t) => t !== 'me'))).toEqual(new Set([api.live.access]));
    expect(meBearers).toEqual(Array.from({ length: 6 }, () => `Bearer ${api.live.access}`));
  });

  it('every waiting caller gets the same error when the one refresh fails, and the next call tries again', async () => {
    // Prepare
    const { auth, api } = await signedIn();
    const held = gate();
    api.on('POST /auth/refresh', async () => {
      await held.opened;
      return apiError(503, 'service_unavailable', { 'Retry-After': '5' });
    });
    nearExpiry();
    // Act
    const calls = Array.from({ length: 10 }, () => auth.getAccessToken().catch((e: unknown) => e));
    held.open();
    const errors = await Promise.all(calls);
    api.on('POST /auth/refresh', () => json(200, api.pair()));
    const next = await auth.getAccessToken();
    // Assess
    expect(new Set(errors).size).toBe(1);
    expect(errors[0]).toMatchObject({ status: 503, code: 'service_unavailable', retryAfter: 5 });
    expect(next).toBe(api.live.access);
    expect(api.count('POST /auth/refresh')).toBe(2);
  });

  it.each([
    ['a new pair for the old session', () => json(200, { success: true, token: 'eyJold.session.pair', token_type: 'Bearer', expires_in: 900, refresh_token: 'rt_old', refresh_expires_in: 1, user: USER })],
    ['invalid_refresh_token', () => apiError(401, 'invalid_refresh_token')],
  ])('a refresh answered after a new sign-in (%s) neither replaces the new session nor ends it', async (_, answer) => {
    // Prepare
    const { auth, api, events } = await signedIn();
    const held = gate();
    api.on('POST /auth/refresh', async () => {
      await held.opened;
      return answer();
    });
    nearExpiry();
    const pending = auth.getAccessToken();
    await vi.advanceTimersByTimeAsync(0);
    // Act
    await auth.signIn({ email: USER.email, password: 'pw' });
    const signedInToken = api.live.access;
    held.open();
    const token = await pending;
    // Assess
    expect(token).toBe(signedInToken);
    expect(await auth.getAccessToken()).toBe(signedInToken);
    expect(events).toEqual(['signed_in']);
  });
});

describe('auth.fetch', () => {
  it('sends the Bearer token and keeps the caller headers', async () => {
    // Prepare
    const api = fakeApi();
    api.on('GET /data', () => json(200, {}));
    let seen: Headers | undefined;
    const spy = async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
      if (String(input).endsWith('/data')) seen = new Headers(init?.headers);
      return api.fetch(input, init);
    };
    const { auth } = await signedIn({ fetch: spy }, api);
    // Act
    const response = await auth.fetch('http://api.test/v1/data', { headers: { 'x-trace': 't1' } });
    // Assess
    expect(response.status).toBe(200);
    expect(seen?.get('authorization')).toBe(`Bearer ${api.live.access}`);
    expect(seen?.get('x-trace')).toBe('t1');
  });

  it('on 401 token_expired: one refresh, one retry with the new token', async () => {
    // Prepare
    const { auth, api } = await signedIn();
    const old = api.live.access;
    api.on('GET /data', (r) => (r.authorization === `Bearer ${old}` ? apiError(401, 'token_expired') : json(200, { ok: true })));
    // Act
    const response = await auth.fetch('http://api.test/v1/data');
    // Assess
    expect(response.status).toBe(200);
    expect(api.count('POST /auth/refresh')).toBe(1);
    expect(api.count('GET /data')).toBe(2);
    expect(api.requests.at(-1)!.authorization).toBe(`Bearer ${api.live.access}`);
  });

  it('retries once, not twice: a second token_expired is returned to the caller', async () => {
    // Prepare
    const { auth, api } = await signedIn();
    api.on('GET /data', () => apiError(401, 'token_expired'));
    // Act
    const response = await auth.fetch('http://api.test/v1/data');
    // Assess
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('token_expired');
    expect(api.count('POST /auth/refresh')).toBe(1);
    expect(api.count('GET /data')).toBe(2);
    expect(auth.session).not.toBeNull();
  });

  it('does not refresh on a 401 of another kind or a 403', async () => {
    // Prepare
    const { auth, api } = await signedIn();
    api.on('GET /data', () => apiError(403, 'session_required'));
    api.on('GET /other', () => new Response('no', { status: 401 }));
    // Act
    const forbidden = await auth.fetch('http://api.test/v1/data');
    const plain = await auth.fetch('http://api.test/v1/other');
    // Assess
    expect([forbidden.status, plain.status]).toEqual([403, 401]);
    expect(api.count('POST /auth/refresh')).toBe(0);
  });

  it('a retry still answered invalid_token ends the session', async () => {
    // Prepare
    const { auth, api, events } = await signedIn();
    api.on('GET /data', () => apiError(401, 'invalid_token'));
    // Act
    const response = await auth.fetch('http://api.test/v1/data');
    // Assess
    expect(response.status).toBe(401);
    expect(events).toEqual(['token_refreshed', 'session_ended']);
    expect(auth.session).toBeNull();
  });

  it('sends nothing of the session to another origin: no token, no refresh, no retry', async () => {
    // Prepare
    const api = fakeApi();
    const seen: { url: string; init?: RequestInit }[] = [];
    const spy = async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
      if (!String(input).startsWith('http://api.test/')) {
        seen.push({ url: String(input), ...(init && { init }) });
        return apiError(401, 'token_expired');
      }
      return api.fetch(input, init);
    };
    const { auth } = await signedIn({ fetch: spy }, api);
    const init = { headers: { 'x-trace': 't1' } };
    // Act
    const response = await auth.fetch('https://elsewhere.example/data', init);
    // Assess
    expect(response.status).toBe(401);
    expect(seen).toEqual([{ url: 'https://elsewhere.example/data', init }]);
    expect(api.count('POST /auth/refresh')).toBe(0);
  });

  it('tokenOrigins: the token goes there too, but a 401 invalid_token from there does not end the session', async () => {
    // Prepare
    const api = fakeApi();
    const seen: (string | null)[] = [];
    const spy = async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
      if (String(input).startsWith('https://files.example/')) {
        seen.push(new Headers(init?.headers).get('authorization'));
        return apiError(401, 'invalid_token');
      }
      return api.fetch(input, init);
    };
    const { auth, events } = await signedIn({ fetch: spy, tokenOrigins: ['https://files.example'] }, api);
    // Act
    const response = await auth.fetch('https://files.example/report.pdf');
    // Assess
    expect(response.status).toBe(401);
    expect(seen).toEqual([expect.stringMatching(/^Bearer /), `Bearer ${api.live.access}`]);
    expect(events).toEqual(['token_refreshed']);
    expect(auth.session).not.toBeNull();
  });

  it('a network failure of the request rejects with AuthError network_error', async () => {
    // Prepare
    const api = fakeApi();
    const spy = (input: Parameters<typeof fetch>[0], init?: RequestInit) =>
      String(input).endsWith('/data') ? Promise.reject(new TypeError('fetch failed')) : api.fetch(input, init);
    const { auth } = await signedIn({ fetch: spy }, api);
    // Act
    const error = await rejection(auth.fetch('http://api.test/v1/data'));
    // Assess
    expect(error).toMatchObject({ status: 0, code: 'network_error', message: expect.stringMatching(/fetch failed/) });
    expect(auth.session).not.toBeNull();
  });

  it('replays a Request with a body on the retry', async () => {
    // Prepare
    const { auth, api } = await signedIn();
    const old = api.live.access;
    api.on('POST /data', (r) => (r.authorization === `Bearer ${old}` ? apiError(401, 'token_expired') : json(200, r.body)));
    // Act
    const response = await auth.fetch(new Request('http://api.test/v1/data', { method: 'POST', body: '{"n":1}' }));
    // Assess
    expect(await response.json()).toEqual({ n: 1 });
  });
});

describe('a refresh that fails', () => {
  it.each([
    ['a network failure', () => Promise.reject(new TypeError('fetch failed')), { status: 0, code: 'network_error' }],
    ['a 500', () => apiError(500, 'internal_error'), { status: 500, code: 'internal_error' }],
    ['a 503 with Retry-After', () => apiError(503, 'service_unavailable', { 'Retry-After': '30' }), { status: 503, code: 'service_unavailable', retryAfter: 30 }],
    ['a 429 with Retry-After', () => apiError(429, 'too_many_attempts', { 'Retry-After': '7' }), { status: 429, code: 'too_many_attempts', retryAfter: 7 }],
    ['a non-JSON 502', () => new Response('Bad Gateway', { status: 502 }), { status: 502, code: 'unexpected_response' }],
    ['a non-JSON 401 (a proxy)', () => new Response('Unauthorized', { status: 401 }), { status: 401, code: 'unexpected_response' }],
  ])('%s rejects the call, keeps the session, and the next call tries again', async (_, answer, expected) => {
    // Prepare
    const api = fakeApi();
    const failing = vi.fn(answer);
    const fetchImpl = async (input: Parameters<typeof fetch>[0], init?: RequestInit) =>
      String(input).endsWith('/auth/refresh') && failing.mock.calls.length === 0 ? failing() : api.fetch(input, init);
    const { auth, storage, events } = await signedIn({ fetch: fetchImpl }, api);
    nearExpiry();
    // Act
    const error = await rejection(auth.getAccessToken());
    const stored = await storage.get(SESSION_KEY);
    const next = await auth.getAccessToken();
    // Assess
    expect(error).toMatchObject(expected);
    expect(stored).not.toBeNull();
    expect(next).toBe(api.live.access);
    expect(events).toEqual(['token_refreshed']);
  });

  it.each(['invalid_refresh_token', 'refresh_token_reused'])(
    '%s ends the session: storage cleared (device token kept), session_ended once, every caller rejected',
    async (code) => {
      // Prepare
      const { auth, api, storage, events } = await signedIn();
      api.on('POST /auth/refresh', () => apiError(401, code));
      const sessions: unknown[] = [];
      auth.onChange((_, session) => sessions.push(session));
      nearExpiry();
      // Act
      const errors = await Promise.all([auth.getAccessToken(), auth.me(), auth.fetch('http://api.test/v1/data')].map((p) => p.catch((e: unknown) => e)));
      const later = await rejection(auth.getAccessToken());
      // Assess
      for (const error of errors) expect(error).toMatchObject({ status: 401, code });
      expect(new Set(errors).size).toBe(1);
      expect(events).toEqual(['session_ended']);
      expect(sessions).toEqual([null]);
      // No token left: a note saying why, for the other instances on this storage.
      expect(JSON.parse((await storage.get(SESSION_KEY))!)).toEqual({ ended: 'session_ended', code, message: `message of ${code}`, sid: 'SESSION_ID_000000000001', at: Date.now() });
      expect(await storage.get(DEVICE_KEY)).toBe('dt_1');
      expect(auth.session).toBeNull();
      expect(later.code).toBe('not_signed_in');
      expect(api.count('POST /auth/refresh')).toBe(1);
    },
  );
});

describe('events', () => {
  it('a listener that throws breaks neither the client nor the other listeners; off() unsubscribes', async () => {
    // Prepare
    const { auth, events } = setup();
    const bug = new Error('listener bug');
    auth.onChange(() => {
      throw bug;
    });
    const shown = vi.spyOn(console, 'error').mockImplementation(() => {});
    const seen: AuthEvent[] = [];
    const off = auth.onChange((event) => seen.push(event));
    // Act
    await auth.signIn({ email: USER.email, password: 'pw' });
    off();
    await auth.signOut();
    // Assess
    expect(events).toEqual(['signed_in', 'signed_out']);
    expect(seen).toEqual(['signed_in']);
    expect(shown).toHaveBeenCalledWith(expect.any(String), bug);
    shown.mockRestore();
  });

  it('listeners get the session without tokens', async () => {
    // Prepare
    const { auth } = setup();
    const sessions: unknown[] = [];
    auth.onChange((_, session) => sessions.push(session));
    // Act
    await auth.signIn({ email: USER.email, password: 'pw' });
    // Assess
    expect(sessions).toEqual([{ user: USER, expiresAt: Date.now() + 900_000 }]);
    expect(JSON.stringify(auth.session)).not.toMatch(/rt_|eyJ/);
  });
});

describe('signOut', () => {
  it('local by default: POST /auth/logout with the Bearer, session cleared, signed_out', async () => {
    // Prepare
    const { auth, api, storage, events } = await signedIn();
    const token = api.live.access;
    // Act
    await auth.signOut();
    // Assess
    expect(api.requests.at(-1)).toMatchObject({ method: 'POST', path: '/auth/logout', body: { scope: 'local' }, authorization: `Bearer ${token}` });
    expect(await storage.get(SESSION_KEY)).toBeNull();
    expect(auth.session).toBeNull();
    expect(events).toEqual(['signed_out']);
  });

  it('refreshes first only when the access token is about to expire', async () => {
    // Prepare
    const { auth, api } = await signedIn();
    nearExpiry();
    // Act
    await auth.signOut({ scope: 'global' });
    // Assess
    expect(api.requests.slice(-2).map((r) => r.path)).toEqual(['/auth/refresh', '/auth/logout']);
    expect(api.requests.at(-1)!.body).toEqual({ scope: 'global' });
  });

  it('offline, a local sign-out still clears the session; a global one clears it and rejects', async () => {
    // Prepare
    const api = fakeApi();
    let offline = false;
    const fetchImpl = (input: Parameters<typeof fetch>[0], init?: RequestInit) =>
      offline ? Promise.reject(new TypeError('fetch failed')) : api.fetch(input, init);
    const local = await signedIn({ fetch: fetchImpl }, api);
    const global = await signedIn({ fetch: fetchImpl }, api);
    offline = true;
    // Act
    await local.auth.signOut();
    const error = await rejection(global.auth.signOut({ scope: 'global' }));
    // Assess
    expect(local.auth.session).toBeNull();
    expect(local.events).toEqual(['signed_out']);
    expect(global.auth.session).toBeNull();
    expect(global.events).toEqual(['signed_out']);
    expect(error.code).toBe('network_error');
  });

  it('without a session: nothing sent, no event', async () => {
    // Prepare
    const { auth, api, events } = setup();
    // Act
    await auth.signOut();
    // Assess
    expect(api.requests).toEqual([]);
    expect(events).toEqual([]);
  });
});

describe('the endpoints behind a session', () => {
  it('me() answers the user; sessions.list() the sessions', async () => {
    // Prepare
    const { auth, api } = await signedIn();
    const listed = [{ id: 'SESSION_ID_000000000001', created_at: 'c', last_used_at: 'l', ip: null, user_agent: null, current: true }];
    api.on('GET /auth/sessions', () => json(200, { success: true, sessions: listed }));
    // Act
    const user = await auth.me();
    const sessions = await auth.sessions.list();
    // Assess
    expect(user).toEqual(USER);
    expect(sessions).toEqual(listed);
  });

  it('sessions.end(id) of another session keeps this one; of its own, signs out', async () => {
    // Prepare
    const { auth, api, events } = await signedIn();
    const token = api.live.access;
    api.on('DELETE /auth/sessions/OTHER_SESSION_00000001', () => json(200, { success: true }));
    api.on('DELETE /auth/sessions/SESSION_ID_000000000001', () => json(200, { success: true }));
    // Act
    await auth.sessions.end('OTHER_SESSION_00000001');
    const after = auth.session;
    await auth.sessions.end('SESSION_ID_000000000001');
    // Assess
    expect(api.requests.slice(-2).map((r) => [r.method, r.path, r.authorization])).toEqual([
      ['DELETE', '/auth/sessions/OTHER_SESSION_00000001', `Bearer ${token}`],
      ['DELETE', '/auth/sessions/SESSION_ID_000000000001', `Bearer ${token}`],
    ]);
    expect(after).not.toBeNull();
    expect(auth.session).toBeNull();
    expect(events).toEqual(['signed_out']);
  });

  it('sessions.end rejects with session_not_found', async () => {
    // Prepare
    const { auth, api } = await signedIn();
    api.on('DELETE /auth/sessions/nope', () => apiError(404, 'session_not_found'));
    // Act
    const error = await rejection(auth.sessions.end('nope'));
    // Assess
    expect(error).toMatchObject({ status: 404, code: 'session_not_found' });
  });

  it('changePassword sends the fields in snake_case and stores the new session and device token', async () => {
    // Prepare
    const { auth, api, storage, events } = await signedIn();
    api.on('POST /auth/password', () => json(200, { ...api.signIn(), device_token: 'dt_after_change' }));
    // Act
    await auth.changePassword({ currentPassword: 'old password', newPassword: 'a new long password' });
    // Assess
    expect(api.requests.at(-1)!.body).toEqual({ current_password: 'old password', new_password: 'a new long password' });
    expect(await auth.getAccessToken()).toBe(api.live.access);
    expect(await storage.get(DEVICE_KEY)).toBe('dt_after_change');
    expect(events).toEqual(['signed_in']);
  });

  it('changePassword rejects a weak password with its message', async () => {
    // Prepare
    const { auth, api } = await signedIn();
    api.on('POST /auth/password', () => apiError(400, 'weak_password'));
    // Act
    const error = await rejection(auth.changePassword({ currentPassword: 'a', newPassword: 'b' }));
    // Assess
    expect(error).toMatchObject({ status: 400, code: 'weak_password', message: 'message of weak_password' });
  });

  it('mfa.setup, activate, regenerateRecoveryCodes and disable send what the endpoints take', async () => {
    // Prepare
    const { auth, api } = await signedIn();
    const codes = Array.from({ length: 10 }, (_, i) => `aaaa-bbbb-000${i}`);
    api.on('POST /auth/mfa/totp/setup', () => json(200, { success: true, secret: 'S'.repeat(32), otpauth_url: 'otpauth://x' }));
    api.on('POST /auth/mfa/totp/activate', () => json(200, { success: true, recovery_codes: codes }));
    api.on('POST /auth/mfa/recovery-codes', () => json(200, { success: true, recovery_codes: codes }));
    api.on('DELETE /auth/mfa/totp', () => json(200, { success: true }));
    // Act
    const secret = await auth.mfa.setup({ currentPassword: 'pw' });
    const activated = await auth.mfa.activate('111111');
    const regenerated = await auth.mfa.regenerateRecoveryCodes({ code: '222222' });
    await auth.mfa.disable('333333');
    // Assess
    expect(secret).toEqual({ secret: 'S'.repeat(32), otpauthUrl: 'otpauth://x' });
    expect(activated).toEqual({ recoveryCodes: codes });
    expect(regenerated).toEqual(codes);
    expect(api.requests.slice(-4).map((r) => [r.method, r.path, r.body, r.authorization])).toEqual([
      ['POST', '/auth/mfa/totp/setup', { current_password: 'pw' }, `Bearer ${api.live.access}`],
      ['POST', '/auth/mfa/totp/activate', { code: '111111' }, `Bearer ${api.live.access}`],
      ['POST', '/auth/mfa/recovery-codes', { code: '222222' }, `Bearer ${api.live.access}`],
      ['DELETE', '/auth/mfa/totp', { code: '333333' }, `Bearer ${api.live.access}`],
    ]);
  });

  it('keeps auth.session.user as the server says it is: me(), TOTP turned on and off (memory and storage, no event)', async () => {
    // Prepare
    const { auth, api, storage, events } = await signedIn();
    api.on('POST /auth/mfa/totp/activate', () => json(200, { success: true, recovery_codes: [] }));
    api.on('DELETE /auth/mfa/totp', () => json(200, { success: true }));
    api.on('GET /auth/me', () => json(200, { success: true, user: { ...USER, name: 'Ada L.', mfa_enabled: true } }));
    const stored = async () => JSON.parse((await storage.get(SESSION_KEY))!).user;
    // Act / Assess
    await auth.mfa.activate('111111');
    expect(auth.session!.user.mfa_enabled).toBe(true);
    expect((await stored()).mfa_enabled).toBe(true);
    await auth.mfa.disable('222222');
    expect(auth.session!.user.mfa_enabled).toBe(false);
    await auth.me();
    expect(auth.session!.user).toEqual({ ...USER, name: 'Ada L.', mfa_enabled: true });
    expect(await stored()).toEqual({ ...USER, name: 'Ada L.', mfa_enabled: true });
    expect(events).toEqual([]);
  });

  it('never writes a fresh user over a newer pair another instance stored', async () => {
    // Prepare: another instance has refreshed; this one still holds the older pair
    const { auth, api, storage } = await signedIn();
    const newer = { ...JSON.parse((await storage.get(SESSION_KEY))!), refresh_token: 'rt_newer', access_token: 'newer' };
    await storage.set(SESSION_KEY, JSON.stringify(newer));
    api.on('GET /auth/me', () => json(200, { success: true, user: { ...USER, name: 'Ada L.' } }));
    // Act
    await auth.me();
    // Assess
    expect(JSON.parse((await storage.get(SESSION_KEY))!)).toEqual(newer);
    expect(auth.session!.user.name).toBe('Ada L.');
  });

  it('me() after the token expired on the server: one refresh, one retry', async () => {
    // Prepare
    const { auth, api } = await signedIn();
    const stale = api.live.access;
    api.live.access = 'server moved on';
    api.on('GET /auth/me', (r) => (r.authorization === `Bearer ${stale}` ? apiError(401, 'token_expired') : json(200, { success: true, user: USER })));
    // Act
    const user = await auth.me();
    // Assess
    expect(user).toEqual(USER);
    expect(api.count('POST /auth/refresh')).toBe(0 + 1);
  });
});

describe('storage failures', () => {
  /** A memory storage whose next set (or every get) fails, as a full quota or a read-only disk would. */
  function flakyStorage() {
    const values = new Map<string, string>();
    const faults = { nextSet: false, get: false };
    const storage = {
      get: (key: string) => {
        if (faults.get) throw new Error('EACCES: permission denied');
        return values.get(key) ?? null;
      },
      set: (key: string, value: string) => {
        if (faults.nextSet) {
          faults.nextSet = false;
          throw new Error('QuotaExceededError');
        }
        values.set(key, value);
      },
      remove: (key: string) => void values.delete(key),
    };
    return { storage, faults, values };
  }

  it('a refresh whose write fails rejects with storage_error, keeps the new pair in memory, and never sends the spent token again', async () => {
    // Prepare
    const { storage, faults } = flakyStorage();
    const { auth, api, events } = await signedIn({ storage });
    nearExpiry();
    faults.nextSet = true;
    // Act
    const error = await rejection(auth.getAccessToken());
    const sameWindow = await auth.getAccessToken();
    nearExpiry();
    const nextWindow = await auth.getAccessToken();
    // Assess
    expect(error).toMatchObject({ status: 0, code: 'storage_error', message: expect.stringMatching(/QuotaExceededError/) });
    const sent = api.requests.filter((r) => r.path === '/auth/refresh').map((r) => r.body.refresh_token);
    expect(sent).toEqual(['rt_1', 'rt_2']);
    expect(nextWindow).toBe(api.live.access);
    expect(sameWindow).not.toBe(nextWindow);
    expect(events).toEqual(['token_refreshed', 'token_refreshed']);
    expect(JSON.parse((await storage.get(SESSION_KEY))!).refresh_token).toBe('rt_3');
  });

  it('a sign-in whose write fails still signs in here, and says so with storage_error', async () => {
    // Prepare
    const { storage, faults } = flakyStorage();
    const { auth, api, events } = setup({ storage });
    faults.nextSet = true;
    // Act
    const error = await rejection(auth.signIn({ email: USER.email, password: 'pw' }));
    const token = await auth.getAccessToken();
    // Assess
    expect(error.code).toBe('storage_error');
    expect(events).toEqual(['signed_in']);
    expect(token).toBe(api.live.access);
  });

  it('a sign-out whose write fails does not let the session stored before it come back', async () => {
    // Prepare
    const { storage } = flakyStorage();
    const { auth, api } = await signedIn({ storage });
    storage.remove = () => {
      throw new Error('EROFS: read-only file system');
    };
    // Act
    const error = await rejection(auth.signOut());
    const after = await rejection(auth.getAccessToken());
    // Assess
    expect(error.code).toBe('storage_error');
    expect(auth.session).toBeNull();
    expect(after.code).toBe('not_signed_in');
    expect(api.count('POST /auth/refresh')).toBe(0);
  });

  it('a storage that cannot be read rejects with storage_error', async () => {
    // Prepare
    const { storage, faults } = flakyStorage();
    const { auth } = setup({ storage });
    faults.get = true;
    // Act
    const errors = await Promise.all([auth.getAccessToken(), auth.signIn({ email: USER.email, password: 'pw' })].map((p) => rejection(p)));
    // Assess
    expect(errors.map((e) => [e.status, e.code])).toEqual([
      [0, 'storage_error'],
      [0, 'storage_error'],
    ]);
  });
});

describe('when the server ends the session', () => {
  it('calls already in flight reject with the AuthError that ended it, not not_signed_in', async () => {
    // Prepare
    const { auth, api, events } = await signedIn();
    const gates = [gate(), gate(), gate()];
    let n = 0;
    api.on('GET /auth/me', async () => {
      await gates[n++]!.opened;
      return apiError(401, 'invalid_token');
    });
    api.on('POST /auth/refresh', () => apiError(401, 'invalid_refresh_token'));
    const calls = [auth.me(), auth.me(), auth.fetch('http://api.test/v1/auth/me')].map((p) => p.catch((e: unknown) => e));
    await vi.waitFor(() => expect(api.count('GET /auth/me')).toBe(3));
    // Act: the first answer ends the session; the two others come after
    gates[0]!.open();
    await vi.waitFor(() => expect(events).toEqual(['session_ended']));
    gates[1]!.open();
    gates[2]!.open();
    const [first, second, third] = await Promise.all(calls);
    // Assess
    expect(first).toMatchObject({ status: 401, code: 'invalid_refresh_token' });
    expect(second).toBe(first);
    expect(third).toBe(first);
    expect(api.count('POST /auth/refresh')).toBe(1);
    expect(events).toEqual(['session_ended']);
    await expect(auth.getAccessToken()).rejects.toMatchObject({ code: 'not_signed_in' });
  });

  it('session_ended comes once when a retry and a refresh both find the session ended', async () => {
    // Prepare: an async storage whose reads can be held
    const values = new Map<string, string>();
    const held = { on: false, gate: gate() };
    const storage = {
      get: async (key: string) => {
        if (held.on) await held.gate.opened;
        return values.get(key) ?? null;
      },
      set: async (key: string, value: string) => void values.set(key, value),
      remove: async (key: string) => void values.delete(key),
    };
    const { auth, api, events } = await signedIn({ storage });
    const old = api.live.access;
    const retry = gate();
    let refreshes = 0;
    api.on('GET /a', async (r) => {
      if (r.authorization === `Bearer ${old}`) return apiError(401, 'token_expired');
      await retry.opened;
      return apiError(401, 'invalid_token');
    });
    api.on('GET /b', () => apiError(401, 'token_expired'));
    api.on('POST /auth/refresh', () => {
      if (++refreshes === 1) return json(200, api.pair());
      held.on = true; // runRefresh's second read (did another instance win?) waits
      return apiError(401, 'invalid_refresh_token');
    });
    const a = auth.fetch('http://api.test/v1/a');
    await vi.waitFor(() => expect(api.count('GET /a')).toBe(2));
    const b = auth.fetch('http://api.test/v1/b').catch((e: unknown) => e);
    await vi.waitFor(() => expect(refreshes).toBe(2));
    // Act: a's retry ends the session while b's refresh is reading storage, then b's read goes on
    retry.open();
    const response = await a;
    held.gate.open();
    const error = await b;
    // Assess
    expect(response.status).toBe(401);
    expect(error).toMatchObject({ code: 'invalid_refresh_token' });
    expect(events).toEqual(['token_refreshed', 'session_ended']);
  });
});
