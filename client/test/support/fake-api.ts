/**
 * A fake of the auth API behind a fake fetch: just enough of the server's behaviour (token pairs
 * that rotate, a refresh token spent once) for the client's unit tests, with every request recorded
 * and any route replaceable by a test.
 */
import type { FetchLike, User } from '../../src/index.js';

export const BASE_URL = 'http://api.test/v1';

export const USER: User = {
  id: 'usr_AAAAAAAAAAAAAAAAAAAAAA',
  email: 'ada@example.com',
  name: 'Ada',
  role: 'user',
  created_at: '2026-01-01T00:00:00.000Z',
  last_login: null,
  mfa_enabled: false,
};

export interface Recorded {
  method: string;
  /** Without the /v1 prefix: '/auth/refresh'. */
  path: string;
  body: any;
  authorization: string | null;
}

type Handler = (request: Recorded) => Response | Promise<Response>;

export const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

export const apiError = (status: number, code: string, headers: Record<string, string> = {}) =>
  json(status, { success: false, error: { code, message: `message of ${code}` } }, headers);

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export function jwt(claims: Record<string, unknown>): string {
  return `${base64url({ alg: 'HS256', typ: 'JWT', kid: 'k1' })}.${base64url(claims)}.c2lnbmF0dXJl`;
}

/** Resolves when told: holds a fake route's answer until the test lets it go. */
export function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

export function fakeApi({ ttlSeconds = 900, sid = 'SESSION_ID_000000000001' } = {}) {
  let serial = 0;
  const requests: Recorded[] = [];
  const overrides = new Map<string, Handler>();
  /** The pair the server would accept now. */
  const live = { access: '', refresh: '' };
  let deviceSerial = 0;

  function pair() {
    serial++;
    const now = Math.floor(Date.now() / 1000);
    live.access = jwt({ sub: USER.id, sid, jti: `j${serial}`, iat: now, exp: now + ttlSeconds });
    live.refresh = `rt_${serial}`;
    return {
      success: true,
      token: live.access,
      token_type: 'Bearer',
      expires_in: ttlSeconds,
      refresh_token: live.refresh,
      refresh_expires_in: 86_400,
      user: USER,
    };
  }
  const signIn = () => ({ ...pair(), device_token: `dt_${++deviceSerial}` });
  const bearer = (r: Recorded) => r.authorization === `Bearer ${live.access}`;

  const defaults: Record<string, Handler> = {
    'POST /auth/login': () => json(200, signIn()),
    'POST /auth/refresh': (r) => (r.body?.refresh_token === live.refresh ? json(200, pair()) : apiError(401, 'refresh_token_reused')),
    'GET /auth/me': (r) => (bearer(r) ? json(200, { success: true, user: USER }) : apiError(401, 'token_expired')),
    'POST /auth/logout': (r) => (bearer(r) ? json(200, { success: true }) : apiError(401, 'invalid_token')),
  };

  const fetch: FetchLike = async (input, init) => {
    const request = new Request(input, init);
    const text = await request.text();
    const recorded: Recorded = {
      method: request.method,
      path: new URL(request.url).pathname.replace(/^\/v1/, ''),
      body: text ? JSON.parse(text) : undefined,
      authorization: request.headers.get('authorization'),
    };
    requests.push(recorded);
    const key = `${recorded.method} ${recorded.path}`;
    const handler = overrides.get(key) ?? defaults[key];
    if (!handler) return apiError(404, 'not_found');
    return handler(recorded);
  };

  return {
    fetch,
    requests,
    live,
    pair,
    signIn,
    /** Replaces a route: on('POST /auth/refresh', handler). */
    on(route: string, handler: Handler) {
      overrides.set(route, handler);
    },
    count: (route: string) => requests.filter((r) => `${r.method} ${r.path}` === route).length,
  };
}
