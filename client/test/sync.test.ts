/**
 * Instances that share a storage converge: through storage (processes on one fileStorage, tabs
 * on localStorage) and, where there is one, through BroadcastChannel (tabs), without a lock.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createAuthClient, memoryStorage, type AuthClient, type AuthEvent, type StorageAdapter } from '../src/index.js';
import { apiError, BASE_URL, fakeApi, gate, json, jwt, USER } from './support/fake-api.js';

const clients: AuthClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

let channels = 0;
function instance(api: ReturnType<typeof fakeApi>, storage: StorageAdapter, storageKey?: string) {
  // broadcast: true, as in a browser (Node's default is false).
  const auth = createAuthClient({ baseUrl: BASE_URL, fetch: api.fetch, storage, broadcast: true, ...(storageKey && { storageKey }) });
  clients.push(auth);
  const events: AuthEvent[] = [];
  auth.onChange((event) => events.push(event));
  return { auth, events };
}

/** The next event of a client. */
const nextEvent = (auth: AuthClient) =>
  new Promise<AuthEvent>((resolve) => {
    const off = auth.onChange((event) => {
      off();
      resolve(event);
    });
  });

describe('two instances on one storage, no BroadcastChannel', () => {
  function prepare() {
    vi.useFakeTimers({ now: new Date('2026-06-01T12:00:00Z') });
    vi.stubGlobal('BroadcastChannel', undefined);
    return { api: fakeApi(), storage: memoryStorage() };
  }

  it('the second to need a refresh adopts the pair the first stored, without a request', async () => {
    // Prepare
    const { api, storage } = prepare();
    const a = instance(api, storage);
    await a.auth.signIn({ email: USER.email, password: 'pw' });
    const b = instance(api, storage);
    vi.advanceTimersByTime(850_000);
    // Act
    const tokenA = await a.auth.getAccessToken();
    const tokenB = await b.auth.getAccessToken();
    // Assess
    expect(api.count('POST /auth/refresh')).toBe(1);
    expect(tokenB).toBe(tokenA);
    expect(b.events).toEqual(['token_refreshed']);
  });

  it('refreshing at the same moment, both end up with the pair the server settled on (its grace window)', async () => {
    // Prepare
    const { api, storage } = prepare();
    const a = instance(api, storage);
    await a.auth.signIn({ email: USER.email, password: 'pw' });
    const b = instance(api, storage);
    let previous = '';
    let answer: unknown;
    api.on('POST /auth/refresh', (r) => {
      if (r.body.refresh_token === previous) return json(200, answer); // raced within the grace window
      previous = r.body.refresh_token;
      answer = api.pair();
      return json(200, answer);
    });
    vi.advanceTimersByTime(850_000);
    // Act
    const [tokenA, tokenB] = await Promise.all([a.auth.getAccessToken(), b.auth.getAccessToken()]);
    // Assess
    expect(api.count('POST /auth/refresh')).toBe(2);
    expect(tokenA).toBe(tokenB);
    expect(await a.auth.me()).toEqual(USER);
    expect(await b.auth.me()).toEqual(USER);
  });

  it('refresh_token_reused after another instance stored a newer pair: adopted, not a sign-out', async () => {
    // Prepare
    const { api, storage } = prepare();
    const a = instance(api, storage);
    await a.auth.signIn({ email: USER.email, password: 'pw' });
    const b = instance(api, storage);
    const first = gate();
    const held = gate();
    let calls = 0;
    api.on('POST /auth/refresh', async () => {
      if (++calls === 1) {
        await first.opened;
        return json(200, api.pair());
      }
      await held.opened;
      return apiError(401, 'refresh_token_reused');
    });
    vi.advanceTimersByTime(850_000);
    // Act
    const pendingA = a.auth.getAccessToken();
    const pendingB = b.auth.getAccessToken();
    await vi.advanceTimersByTimeAsync(0);
    first.open();
    const tokenA = await pendingA;
    held.open();
    const tokenB = await pendingB;
    // Assess
    expect(calls).toBe(2);
    expect(tokenB).toBe(tokenA);
    expect(b.events).toEqual(['token_refreshed']);
    expect(b.auth.session).not.toBeNull();
  });

  it('a session the server ended, as found by one, is session_ended for the other too, with the same error', async () => {
    // Prepare
    const { api, storage } = prepare();
    const a = instance(api, storage);
    await a.auth.signIn({ email: USER.email, password: 'pw' });
    const b = instance(api, storage);
    api.on('GET /auth/me', () => apiError(401, 'invalid_token'));
    api.on('POST /auth/refresh', () => apiError(401, 'invalid_refresh_token'));
    // Act
    const errorA = await a.auth.me().catch((e: unknown) => e);
    const errorB = await b.auth.me().catch((e: unknown) => e);
    // Assess
    expect(errorA).toMatchObject({ status: 401, code: 'invalid_refresh_token' });
    expect(errorB).toMatchObject({ status: 401, code: 'invalid_refresh_token', message: 'message of invalid_refresh_token' });
    expect(a.events).toEqual(['signed_in', 'session_ended']);
    expect(b.events).toEqual(['session_ended']);
    expect(api.count('POST /auth/refresh')).toBe(1);
  });

  it('a sign-out by one is seen by the other at its next refresh', async () => {
    // Prepare
    const { api, storage } = prepare();
    const a = instance(api, storage);
    await a.auth.signIn({ email: USER.email, password: 'pw' });
    const b = instance(api, storage);
    await a.auth.signOut();
    vi.advanceTimersByTime(850_000);
    // Act
    const error = await b.auth.getAccessToken().catch((e: unknown) => e);
    // Assess
    expect(error).toMatchObject({ code: 'not_signed_in' });
    expect(b.events).toEqual(['signed_out']);
    expect(api.count('POST /auth/refresh')).toBe(0);
  });
});

describe('BroadcastChannel between two instances (tabs)', () => {
  function prepare() {
    const storageKey = `test-sync-${++channels}`;
    const api = fakeApi();
    const a = instance(api, memoryStorage(), storageKey);
    const b = instance(api, memoryStorage(), storageKey);
    return { api, a, b };
  }

  it('a sign-in, a refresh and a sign-out in one reach the other without a request', async () => {
    // Prepare
    const { api, a, b } = prepare();
    // Act: sign in
    const signedIn = nextEvent(b.auth);
    await a.auth.signIn({ email: USER.email, password: 'pw' });
    // Assess
    expect(await signedIn).toBe('signed_in');
    expect(b.auth.session).toEqual(a.auth.session);
    expect(await b.auth.getAccessToken()).toBe(api.live.access);

    // Act: refresh (the server's token expired early)
    const stale = api.live.access;
    api.on('GET /auth/me', (r) => (r.authorization === `Bearer ${stale}` ? apiError(401, 'token_expired') : json(200, { success: true, user: USER })));
    const refreshed = nextEvent(b.auth);
    await a.auth.me();
    // Assess
    expect(await refreshed).toBe('token_refreshed');
    expect(await b.auth.getAccessToken()).toBe(api.live.access);
    expect(await b.auth.me()).toEqual(USER);

    // Act: sign out
    const signedOut = nextEvent(b.auth);
    await a.auth.signOut();
    // Assess
    expect(await signedOut).toBe('signed_out');
    expect(b.auth.session).toBeNull();
    await expect(b.auth.getAccessToken()).rejects.toMatchObject({ code: 'not_signed_in' });
    expect(api.requests.map((r) => r.path)).toEqual(['/auth/login', '/auth/me', '/auth/refresh', '/auth/me', '/auth/me', '/auth/logout']);
    expect(a.events).toEqual(['signed_in', 'token_refreshed', 'signed_out']);
    expect(b.events).toEqual(['signed_in', 'token_refreshed', 'signed_out']);
  });

  it('a session ended in one tab is ended in the other, once', async () => {
    // Prepare
    const { api, a, b } = prepare();
    const signedIn = nextEvent(b.auth);
    await a.auth.signIn({ email: USER.email, password: 'pw' });
    await signedIn;
    api.on('GET /auth/me', () => apiError(401, 'invalid_token'));
    api.on('POST /auth/refresh', () => apiError(401, 'invalid_refresh_token'));
    // Act
    const ended = nextEvent(b.auth);
    await expect(a.auth.me()).rejects.toMatchObject({ code: 'invalid_refresh_token' });
    // Assess
    expect(await ended).toBe('session_ended');
    expect(b.auth.session).toBeNull();
    expect(a.events).toEqual(['signed_in', 'session_ended']);
    expect(b.events).toEqual(['signed_in', 'session_ended']);
  });

  /** A session as another tab would post it: a token of session `sid`, valid for `seconds`. */
  const posted = (sid: string, seconds: number, serial: string) => ({
    access_token: jwt({ sub: USER.id, sid, jti: serial, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + seconds }),
    refresh_token: `rt_${serial}`,
    expires_at: Date.now() + seconds * 1000,
    user: USER,
  });

  it("another session's refresh or sign-out is ignored; this session's are followed", async () => {
    // Prepare
    const storageKey = `test-sync-${++channels}`;
    const api = fakeApi({ sid: 'MY_SESSION_000000000001' });
    const tab = instance(api, memoryStorage(), storageKey);
    await tab.auth.signIn({ email: USER.email, password: 'pw' });
    const other = new BroadcastChannel(storageKey);
    const mine = posted('MY_SESSION_000000000001', 3_600, 'mine');
    const refreshed = nextEvent(tab.auth);
    // Act: another session's refresh and sign-out, then a refresh of this one
    other.postMessage({ from: 'elsewhere', event: 'token_refreshed', session: posted('OTHER_SESSION_00000001', 7_200, 'other'), sid: 'OTHER_SESSION_00000001' });
    other.postMessage({ from: 'elsewhere', event: 'signed_out', session: null, sid: 'OTHER_SESSION_00000001' });
    other.postMessage({ from: 'elsewhere', event: 'token_refreshed', session: mine, sid: 'MY_SESSION_000000000001' });
    // Assess
    expect(await refreshed).toBe('token_refreshed');
    expect(await tab.auth.getAccessToken()).toBe(mine.access_token);
    // Act: this session's sign-out
    const signedOut = nextEvent(tab.auth);
    other.postMessage({ from: 'elsewhere', event: 'signed_out', session: null, sid: 'MY_SESSION_000000000001' });
    // Assess
    expect(await signedOut).toBe('signed_out');
    expect(tab.events).toEqual(['signed_in', 'token_refreshed', 'signed_out']);
    other.close();
  });

  it('a refresh message older than the pair a tab holds is ignored', async () => {
    // Prepare
    const storageKey = `test-sync-${++channels}`;
    const api = fakeApi({ sid: 'MY_SESSION_000000000001' });
    const storage = memoryStorage();
    const tab = instance(api, storage, storageKey);
    await tab.auth.signIn({ email: USER.email, password: 'pw' });
    const other = new BroadcastChannel(storageKey);
    const older = posted('MY_SESSION_000000000001', 100, 'older');
    const newer = posted('MY_SESSION_000000000001', 3_600, 'newer');
    const refreshed = nextEvent(tab.auth);
    // Act: the newer first, then a late older one
    other.postMessage({ from: 'elsewhere', event: 'token_refreshed', session: newer, sid: 'MY_SESSION_000000000001' });
    other.postMessage({ from: 'elsewhere', event: 'token_refreshed', session: older, sid: 'MY_SESSION_000000000001' });
    await refreshed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Assess
    expect(tab.events).toEqual(['signed_in', 'token_refreshed']);
    expect(await tab.auth.getAccessToken()).toBe(newer.access_token);
    expect(JSON.parse((await storage.get('test-sync-' + channels + '.session'))!).refresh_token).toBe('rt_newer');
    other.close();
  });

  it('a tab that is signed out is not signed in by a refresh message (only by a sign-in)', async () => {
    // Prepare
    const storageKey = `test-sync-${++channels}`;
    const api = fakeApi();
    const tab = instance(api, memoryStorage(), storageKey);
    const other = new BroadcastChannel(storageKey);
    // Act
    other.postMessage({ from: 'elsewhere', event: 'token_refreshed', session: posted('SESSION_ID_000000000001', 900, 'x'), sid: 'SESSION_ID_000000000001' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Assess
    expect(tab.events).toEqual([]);
    expect(tab.auth.session).toBeNull();
    await expect(tab.auth.getAccessToken()).rejects.toMatchObject({ code: 'not_signed_in' });
    other.close();
  });

  it('a refresh answered while signOut is under way does not bring the session back, here or in another tab', async () => {
    // Prepare: tab A on a slow async storage, tab B on its own memory
    const storageKey = `test-sync-${++channels}`;
    const api = fakeApi();
    const values = new Map<string, string>();
    const slow: StorageAdapter = {
      get: async (key) => values.get(key) ?? null,
      set: async (key, value) => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        values.set(key, value);
      },
      remove: async (key) => void values.delete(key),
    };
    const a = instance(api, slow, storageKey);
    const b = instance(api, memoryStorage(), storageKey);
    const bSignedIn = nextEvent(b.auth);
    await a.auth.signIn({ email: USER.email, password: 'pw' });
    await bSignedIn;
    const old = api.live.access;
    const refreshGate = gate();
    const logoutGate = gate();
    api.on('GET /data', (r) => (r.authorization === `Bearer ${old}` ? apiError(401, 'token_expired') : json(200, {})));
    api.on('POST /auth/refresh', async () => {
      await refreshGate.opened;
      return json(200, api.pair());
    });
    api.on('POST /auth/logout', async () => {
      await logoutGate.opened;
      return json(200, { success: true });
    });
    const pending = a.auth.fetch('http://api.test/v1/data').catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 10));
    // Act
    const signingOut = a.auth.signOut();
    await new Promise((resolve) => setTimeout(resolve, 10));
    refreshGate.open();
    await new Promise((resolve) => setTimeout(resolve, 5));
    logoutGate.open();
    await signingOut;
    await pending;
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Assess
    expect(a.events).toEqual(['signed_in', 'signed_out']);
    expect(b.events).toEqual(['signed_in', 'signed_out']);
    expect(a.auth.session).toBeNull();
    expect(b.auth.session).toBeNull();
    expect(values.has(`${storageKey}.session`)).toBe(false);
  });

  it.each([
    ['broadcast: false', { broadcast: false }],
    ["Node's default", {}],
  ])('%s keeps an instance to itself', async (_, option) => {
    // Prepare
    const storageKey = `test-sync-${++channels}`;
    const api = fakeApi();
    const a = createAuthClient({ baseUrl: BASE_URL, fetch: api.fetch, storageKey, ...option });
    const b = instance(api, memoryStorage(), storageKey);
    // Act
    await a.signIn({ email: USER.email, password: 'pw' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Assess
    expect(b.events).toEqual([]);
  });

  it('after close() an instance no longer hears the others', async () => {
    // Prepare
    const { a, b } = prepare();
    b.auth.close();
    // Act
    await a.auth.signIn({ email: USER.email, password: 'pw' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Assess
    expect(b.events).toEqual([]);
    expect(b.auth.session).toBeNull();
  });
});
