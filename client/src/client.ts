/**
 * createAuthClient: signs in (with the second factor), keeps the access token fresh with one
 * refresh in flight per instance, and keeps instances that share a storage in step.
 *
 * How a refresh goes: every caller that needs one shares the same promise. Before sending it, the
 * session is read again from storage: if another instance (a tab, a process on the same file) has
 * refreshed meanwhile, its pair is adopted and nothing is sent. The server's grace window settles
 * the races that remain, so there is no lock between instances. Only the server's word ends a
 * session (invalid_refresh_token, refresh_token_reused); a network failure or a 5xx leaves it be.
 */
import type { components } from './generated/openapi.js';
import { AuthError, notSignedIn, storageError, type AuthErrorCode } from './errors.js';
import {
  answerOf,
  codeOf,
  errorOf,
  jsonOf,
  networkError,
  send,
  urlOf,
  type Answer,
  type ApiPath,
  type Call,
  type FetchLike,
  type MethodOf,
} from './http.js';
import { memoryStorage, type StorageAdapter } from './storage.js';

export type User = components['schemas']['User'];
/** One of the user's sessions, as sessions.list() answers. */
export type ActiveSession = components['schemas']['Session'];
type SignInAnswer = components['schemas']['SignInFields'];
type MfaChallenge = components['schemas']['MfaChallenge'];

export interface AuthClientOptions {
  /** The API's base, with its version: 'https://api.example.com/v1'. */
  baseUrl: string;
  /** Where the session and the device token are kept; memoryStorage() by default. */
  storage?: StorageAdapter;
  /** Refresh this long before the access token expires (at most half its lifetime). Default 60. */
  refreshMarginSeconds?: number;
  /** Default globalThis.fetch. */
  fetch?: FetchLike;
  /**
   * Origins besides baseUrl's to which auth.fetch may send the access token ('https://files.example.com').
   * Requests to any other origin are sent untouched: no token, no refresh, no retry.
   */
  tokenOrigins?: string[];
  /** Prefix of the storage keys and the BroadcastChannel's name. Default 'vpn-enterprise.auth'. */
  storageKey?: string;
  /**
   * Keep instances in step through a BroadcastChannel named after storageKey. Default: true in
   * browsers (tabs of one origin), false in Node, where a channel reaches every instance of the
   * process and a server acting for several users must not have them adopt each other's sign-ins.
   * Set false in a browser for sessions of their own per tab (sessionStorage with different users).
   */
  broadcast?: boolean;
}

export type AuthEvent = 'signed_in' | 'token_refreshed' | 'signed_out' | 'session_ended';
/** What the page may know of the session: never a token. expiresAt is the access token's, ms since the epoch. */
export interface AuthSession {
  user: User;
  expiresAt: number;
}
export type AuthListener = (event: AuthEvent, session: AuthSession | null) => void;

export interface SignedIn {
  status: 'signed_in';
  user: User;
}
export interface TotpSecret {
  secret: string;
  /** The otpauth:// URL to show as a QR code. */
  otpauthUrl: string;
}
export interface MfaRequired {
  status: 'mfa_required';
  verify(input: { code: string } | { recoveryCode: string }): Promise<SignedIn & { recoveryCodesLeft?: number }>;
}
export interface MfaEnrollmentRequired {
  status: 'mfa_enrollment_required';
  setup(): Promise<TotpSecret>;
  activate(code: string): Promise<SignedIn & { recoveryCodes: string[] }>;
}
export type SignInResult = SignedIn | MfaRequired | MfaEnrollmentRequired;

/** Whose company IdP signs the user in: the email's domain picks the connection, or the domain itself. */
export type SsoTarget = { email: string } | { domain: string };
/** The query of the URL the API sent the browser back to: `code` and `state`, or `error`, `error_description` and `state`. */
export type SsoCallback = string | URL | URLSearchParams | Record<string, string | undefined>;

export interface AuthClient {
  signIn(input: { email: string; password: string }): Promise<SignInResult>;
  /** Sign-in with the company's identity provider (OpenID Connect, authorization code with PKCE). */
  sso: {
    /**
     * The URL to send the browser to. A PKCE verifier and a state are kept in storage under
     * `<storageKey>.sso-flow` (one flow at a time, single use) until complete() redeems them.
     */
    start(target: SsoTarget, options: { redirectUri: string }): Promise<{ url: string }>;
    /**
     * The redirect URI's query (the URL itself, or its parameters): checks the state, redeems the code
     * at POST /auth/sso/token and resolves as signIn does. Rejects with AuthError `access_denied`
     * (the server's error_description as message) or `invalid_state`.
     */
    complete(callback: SsoCallback): Promise<SignInResult>;
  };
  /** A valid access token, refreshed first when it expires within the margin. */
  getAccessToken(): Promise<string>;
  /**
   * fetch with the Bearer token, for baseUrl's origin (and tokenOrigins) only; on a 401 token_expired
   * or invalid_token: one refresh, one retry. Other origins get a plain fetch.
   */
  fetch(input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response>;
  me(): Promise<User>;
  sessions: {
    list(): Promise<ActiveSession[]>;
    /** Ends one session; ending this client's own signs it out. */
    end(id: string): Promise<void>;
  };
  /** Answers a new session (stored here); every other session of the user ends. */
  changePassword(input: { currentPassword: string; newPassword: string }): Promise<void>;
  mfa: {
    setup(input: { currentPassword: string }): Promise<TotpSecret>;
    activate(code: string): Promise<{ recoveryCodes: string[] }>;
    regenerateRecoveryCodes(input: { code: string }): Promise<string[]>;
    disable(code: string): Promise<void>;
  };
  /** Default scope 'local'. The session is cleared here even when the server cannot be told. */
  signOut(input?: { scope?: 'local' | 'global' }): Promise<void>;
  onChange(listener: AuthListener): () => void;
  readonly session: AuthSession | null;
  /** Closes the BroadcastChannel; the client still works, without hearing other tabs. */
  close(): void;
}

/** What storage holds under `<storageKey>.session`. */
interface StoredSession {
  access_token: string;
  refresh_token: string;
  /** ms since the epoch */
  expires_at: number;
  user: User;
}

/**
 * What storage holds under `<storageKey>.session` once the server ended the session (no token): the
 * other instances on that storage then emit session_ended, not signed_out, and reject with `code`.
 */
interface Ended {
  ended: 'session_ended';
  code: AuthErrorCode;
  message: string;
  sid?: string | undefined;
  /** ms since the epoch */
  at: number;
}

function parseEnded(text: string): Ended | undefined {
  try {
    const e = JSON.parse(text) as Partial<Ended> | null;
    return e?.ended === 'session_ended' && typeof e.code === 'string' && typeof e.message === 'string' ? (e as Ended) : undefined;
  } catch {
    return undefined;
  }
}

/** What the client needs of a BroadcastChannel (browsers' and Node's alike). */
interface TabChannel {
  postMessage(message: unknown): void;
  close(): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  unref?(): void;
}

interface Message {
  from: string;
  event: AuthEvent;
  session: StoredSession | null;
  /** The session (its `sid`) that a refresh renewed or a sign-out ended: other sessions' tabs ignore it. */
  sid?: string | undefined;
}

function parseSession(value: unknown): StoredSession | null {
  try {
    const s = (typeof value === 'string' ? JSON.parse(value) : value) as Partial<StoredSession> | null;
    return s && typeof s.access_token === 'string' && typeof s.refresh_token === 'string' &&
      typeof s.expires_at === 'number' && typeof s.user === 'object' && s.user !== null
      ? (s as StoredSession)
      : null;
  } catch {
    return null;
  }
}

/** The claims of a JWT, unverified (the server verifies; the client reads exp, iat, sid). */
function claimsOf(token: string): { exp?: number; iat?: number; sid?: string } {
  try {
    return JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')));
  } catch {
    return {};
  }
}

const EVENTS: readonly AuthEvent[] = ['signed_in', 'token_refreshed', 'signed_out', 'session_ended'];
const sidOf = (s: StoredSession | null) => (s ? claimsOf(s.access_token).sid : undefined);

function isSignInAnswer(body: unknown): body is SignInAnswer {
  const b = body as Partial<SignInAnswer> | undefined;
  return typeof b?.token === 'string' && typeof b.refresh_token === 'string' && typeof b.expires_in === 'number' &&
    typeof b.user === 'object' && b.user !== null;
}

/** The origin of a URL (relative to the page in a browser), or undefined. */
function originOf(input: string | URL | Request): string | undefined {
  try {
    const page = (globalThis as { location?: { href: string } }).location?.href;
    return new URL(input instanceof Request ? input.url : input, page).origin;
  } catch {
    return undefined;
  }
}

/** What storage holds under `<storageKey>.sso-flow` between sso.start() and sso.complete(). */
interface SsoFlow {
  state: string;
  verifier: string;
  redirectUri: string;
}

function parseFlow(text: string | null | undefined): SsoFlow | undefined {
  try {
    const f = JSON.parse(text ?? '') as Partial<SsoFlow> | null;
    return typeof f?.state === 'string' && typeof f.verifier === 'string' ? (f as SsoFlow) : undefined;
  } catch {
    return undefined;
  }
}

const base64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
/** `size` random bytes from Web Crypto, base64url: 32 make a 43-character PKCE verifier (RFC 7636 §4.1). */
const randomToken = (size: number) => base64url(crypto.getRandomValues(new Uint8Array(size)));

function paramsOf(callback: SsoCallback): URLSearchParams {
  if (callback instanceof URLSearchParams) return callback;
  if (typeof callback === 'string' || callback instanceof URL) {
    const text = String(callback);
    // A whole URL, or just its query ('?code=…&state=…', 'code=…&state=…').
    return /^[a-z][a-z0-9+.-]*:/i.test(text) ? new URL(text).searchParams : new URLSearchParams(text);
  }
  return new URLSearchParams(Object.entries(callback).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}

/** How many dead refresh tokens an instance remembers (one a refresh: days of a busy script). */
const DEAD_TOKENS_KEPT = 64;

const unexpected = (status: number) =>
  new AuthError(status, 'unexpected_response', `Unexpected answer from the API (HTTP ${status}).`);

export function createAuthClient(options: AuthClientOptions): AuthClient {
  const storage = options.storage ?? memoryStorage();
  const margin = options.refreshMarginSeconds ?? 60;
  if (typeof margin !== 'number' || !Number.isFinite(margin) || margin < 0) {
    throw new TypeError(`refreshMarginSeconds must be a finite number >= 0, not ${String(margin)}`);
  }
  const marginMs = margin * 1000;
  const prefix = options.storageKey ?? 'vpn-enterprise.auth';
  const SESSION_KEY = `${prefix}.session`;
  const DEVICE_KEY = `${prefix}.device-token`;
  const SSO_FLOW_KEY = `${prefix}.sso-flow`;
  const doFetch: FetchLike = (input, init) => (options.fetch ?? globalThis.fetch)(input, init);
  const api = <P extends ApiPath, M extends MethodOf<P>>(call: Call<P, M>) => send(doFetch, options.baseUrl, call);
  const apiOrigin = originOf(options.baseUrl);
  const tokenOrigins = new Set([apiOrigin, ...(options.tokenOrigins ?? []).map(originOf)]);
  const listeners = new Set<AuthListener>();
  const instanceId = globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random()}`;

  let current: StoredSession | null = null;
  /** Set once anything has decided the session, so that a slow first read does not undo it. */
  let decided = false;
  let refreshing: Promise<StoredSession> | null = null;
  /** Counts sign-ins and ends: a refresh answered after one of them belongs to a session that is gone. */
  let generation = 0;
  /** How the session of `generation` ended, if the server ended it. */
  let ended: { generation: number; error: AuthError } | undefined;
  /**
   * Refresh tokens this instance has spent (a refresh answered 200), signed out or seen ended: never
   * sent or adopted again, whatever storage still holds after a write that failed.
   */
  const dead = new Set<string>();
  /** Remember a token as dead; the oldest are forgotten past a bound (no storage holds them that long). */
  const bury = (token: string) => {
    dead.add(token);
    if (dead.size > DEAD_TOKENS_KEPT) dead.delete(dead.values().next().value!);
  };
  /** This instance's last session could not be stored: memory holds a newer one than storage. */
  let unsaved = false;
  let writes: Promise<unknown> = Promise.resolve();

  /**
   * This instance's writes, one at a time and in order, so that a sign-out's remove never lands
   * before the set of a refresh answered just before it. A failure is an AuthError storage_error.
   */
  function write(key: string, value: string | null): Promise<void> {
    const done = writes
      .then(() => (value === null ? storage.remove(key) : storage.set(key, value)))
      .then(
        () => {},
        (error: unknown) => {
          throw storageError(error);
        },
      );
    writes = done.catch(() => {});
    return done;
  }

  async function read(key: string): Promise<string | null | undefined> {
    try {
      return await storage.get(key);
    } catch (error) {
      throw storageError(error);
    }
  }

  /** The stored session, and why there is none when the server ended it. */
  async function readSlot(): Promise<[StoredSession | null, Ended | undefined]> {
    const text = await read(SESSION_KEY);
    return text ? [parseSession(text), parseEnded(text)] : [null, undefined];
  }

  const readStored = async () => (await readSlot())[0];

  // The first read: at once for a sync storage, so that `session` is right from the start.
  let ready: Promise<void> = Promise.resolve();
  try {
    const first = storage.get(SESSION_KEY);
    if (first && typeof (first as Promise<unknown>).then === 'function') {
      ready = (first as Promise<string | null | undefined>).then(
        (text) => void (decided || (current = text ? parseSession(text) : null)),
        () => {},
      );
    } else {
      current = first ? parseSession(first) : null;
    }
  } catch {
    // An unreadable storage reads as signed out; the next read tries again.
  }

  const publicSession = (): AuthSession | null =>
    current && { user: current.user, expiresAt: current.expires_at };

  function emit(event: AuthEvent): void {
    const session = publicSession();
    for (const listener of [...listeners]) {
      try {
        listener(event, session);
      } catch (error) {
        // A listener's failure is its own: the client and the other listeners go on. Still shown.
        const report = (globalThis as { reportError?: (error: unknown) => void }).reportError;
        if (report) report(error);
        else console.error('auth client: an onChange listener threw', error);
      }
    }
  }

  // ---- other tabs -------------------------------------------------------------------------
  const Channel = (globalThis as unknown as { BroadcastChannel?: new (name: string) => TabChannel }).BroadcastChannel;
  let channel: TabChannel | undefined;
  try {
    const inNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
    channel = Channel && (options.broadcast ?? !inNode) ? new Channel(prefix) : undefined;
    // Node: a channel must not keep a script alive.
    channel?.unref?.();
    if (channel) channel.onmessage = (message) => void receive(message.data as Partial<Message> | null).catch(() => {});
  } catch {
    channel = undefined;
  }

  function post(event: AuthEvent, session: StoredSession | null, sid: string | undefined): void {
    try {
      channel?.postMessage({ from: instanceId, event, session, sid } satisfies Message);
    } catch {
      // A closed channel: this instance no longer talks to the others.
    }
  }

  /**
   * Another instance's change: adopted without a request, and the same event emitted here.
   * Storage first (a storage of this instance's own, memory or sessionStorage, must hold it too:
   * refreshes read it), then the event, so that a listener that calls back finds it there.
   */
  async function receive(data: Partial<Message> | null): Promise<void> {
    if (!data || data.from === instanceId || !EVENTS.includes(data.event as AuthEvent)) return;
    const event = data.event as AuthEvent;
    const next = parseSession(data.session ?? null);
    await ready;
    // A refresh or an end of another session than this tab's is not this tab's business.
    if (event !== 'signed_in' && current && data.sid !== undefined && sidOf(current) !== data.sid) return;
    // Only a sign-in signs a tab in; a refresh older than the pair held here, or of a token spent here, is old news.
    if (event === 'token_refreshed' && (!current || !next || next.expires_at < current.expires_at)) return;
    if (next && dead.has(next.refresh_token)) return;
    const stored = await readStored();
    if (next) {
      if (stored?.refresh_token !== next.refresh_token && (!stored || stored.expires_at <= next.expires_at || data.event === 'signed_in')) {
        await write(SESSION_KEY, JSON.stringify(next)).catch(() => {});
      }
      decided = true;
      if (current?.access_token === next.access_token) return;
      if (event === 'signed_in') generation++;
      current = next;
      emit(event);
    } else {
      if (stored && stored.refresh_token === current?.refresh_token) await write(SESSION_KEY, null).catch(() => {});
      decided = true;
      if (!current) return;
      generation++;
      current = null;
      emit(event);
    }
  }

  // ---- the session ------------------------------------------------------------------------
  /** Stores a session of this instance's making, then tells listeners and the other tabs. */
  async function commit(next: StoredSession | null, event: AuthEvent): Promise<void> {
    const sid = sidOf(next ?? current);
    if (event !== 'token_refreshed') generation++;
    const mine = generation;
    if (!next && current) bury(current.refresh_token);
    current = next;
    decided = true;
    let failure: unknown;
    try {
      await write(SESSION_KEY, next && JSON.stringify(next));
    } catch (error) {
      // Kept in memory all the same: the next refresh sends this pair's token, not the spent one in storage.
      failure = error;
    }
    unsaved = failure !== undefined && next !== null;
    // A sign-in, sign-out or end while the write was awaited: this change is old news, told to no one.
    if (generation !== mine) return;
    emit(event);
    post(event, next, sid);
    if (failure) throw failure;
  }

  /**
   * The user as the server now says it is (me(), TOTP turned on or off): kept in memory, and in
   * storage only while storage still holds this very pair (never over a newer one another instance
   * stored). No event: the session itself has not changed.
   */
  async function freshUser(change: (user: User) => User): Promise<void> {
    if (!current) return;
    const held = current;
    const user = change(held.user);
    if (user.id !== held.user.id) return;
    current = { ...held, user };
    try {
      const stored = parseSession(await read(SESSION_KEY));
      if (stored?.refresh_token === held.refresh_token && current.refresh_token === held.refresh_token) await write(SESSION_KEY, JSON.stringify(current));
    } catch {
      // Memory has it; storage catches up at the next refresh.
    }
  }

  /** A session another instance stored: taken over without a request. */
  function adopt(stored: StoredSession): StoredSession {
    if (stored.access_token !== current?.access_token) {
      const event: AuthEvent = current && current.user.id === stored.user.id ? 'token_refreshed' : 'signed_in';
      if (event === 'signed_in') generation++;
      current = stored;
      decided = true;
      emit(event);
    }
    return stored;
  }

  /**
   * The server has ended the session: cleared here (the device token stays), announced once. Calls of
   * the session's generation still in flight get `error` rather than not_signed_in (within()).
   */
  async function end(error: AuthError): Promise<void> {
    if (!current) return;
    const sid = sidOf(current);
    bury(current.refresh_token);
    ended = { generation, error };
    generation++;
    current = null;
    decided = true;
    emit('session_ended');
    post('session_ended', null, sid);
    try {
      const gone: Ended = { ended: 'session_ended', code: error.code, message: error.message, sid, at: Date.now() };
      await write(SESSION_KEY, JSON.stringify(gone));
    } catch {
      // Nothing more to do: the session is dead either way, and its refresh token is never sent again.
    }
  }

  /**
   * Storage has no session any more: another instance signed out, or found the session ended by the
   * server (`gone`, its note), which is told as session_ended with the server's error.
   */
  function lost(gone?: Ended): void {
    if (!current) return;
    bury(current.refresh_token);
    const byServer = gone !== undefined && (gone.sid === undefined || gone.sid === sidOf(current));
    if (byServer) ended = { generation, error: new AuthError(401, gone.code, gone.message) };
    generation++;
    current = null;
    decided = true;
    emit(byServer ? 'session_ended' : 'signed_out');
  }

  function needsRefresh(s: StoredSession): boolean {
    const { exp, iat } = claimsOf(s.access_token);
    const lifetimeMs = exp !== undefined && iat !== undefined ? (exp - iat) * 1000 : Infinity;
    // A margin beyond half the token's life would refresh at every call.
    return Date.now() >= s.expires_at - Math.min(marginMs, lifetimeMs / 2);
  }

  function sessionOf(answer: SignInAnswer): StoredSession {
    return {
      access_token: answer.token,
      refresh_token: answer.refresh_token,
      expires_at: Date.now() + answer.expires_in * 1000,
      user: answer.user,
    };
  }

  /** One refresh per instance at a time, shared by every caller; `stale` is the token found wanting. */
  function refresh(stale: string): Promise<StoredSession> {
    refreshing ??= runRefresh(stale).finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  async function runRefresh(stale: string): Promise<StoredSession> {
    let [stored, gone] = await readSlot();
    // Memory is the newer when this instance's last write failed: storage then holds a spent token.
    if (current && (stored ? dead.has(stored.refresh_token) || (sidOf(stored) === sidOf(current) && stored.expires_at < current.expires_at) : unsaved)) {
      stored = current;
    }
    if (!stored || dead.has(stored.refresh_token)) {
      lost(gone);
      throw notSignedIn();
    }
    if (stored.access_token !== stale && !needsRefresh(stored)) return adopt(stored);
    const started = generation;
    const response = await api({ method: 'post', path: '/v1/auth/refresh', body: { refresh_token: stored.refresh_token } });
    if (response.ok) bury(stored.refresh_token);
    const body = await jsonOf(response);
    // A sign-in, sign-out or end came first: this answer, good or bad, is about a session that is gone.
    if (generation !== started) return afterChange();
    if (response.ok) {
      if (!isSignInAnswer(body)) throw unexpected(response.status);
      const next = sessionOf(body);
      await commit(next, 'token_refreshed');
      return generation === started ? next : afterChange();
    }
    const error = errorOf(response, body);
    if (error.code === 'invalid_refresh_token' || error.code === 'refresh_token_reused') {
      // Lost a race to another instance? Then it has stored the pair that won.
      const again = await readStored();
      if (again && again.refresh_token !== stored.refresh_token && !dead.has(again.refresh_token)) return adopt(again);
      await end(error);
    }
    throw error;
  }

  function afterChange(): StoredSession {
    if (current) return current;
    throw notSignedIn();
  }

  async function validSession(): Promise<StoredSession> {
    await ready;
    let s = current;
    if (!s) {
      s = await readStored();
      if (!s || dead.has(s.refresh_token)) throw notSignedIn();
      adopt(s);
    }
    return needsRefresh(s) ? refresh(s.access_token) : s;
  }

  /**
   * Runs a call for the session of this moment. If the server ends that session meanwhile, the call
   * rejects with the AuthError that ended it (invalid_refresh_token, invalid_token…), not not_signed_in.
   */
  async function within<T>(run: () => Promise<T>): Promise<T> {
    await ready;
    const mine = generation;
    try {
      return await run();
    } catch (error) {
      throw (error as AuthError).code === 'not_signed_in' && ended?.generation === mine ? ended.error : error;
    }
  }

  /** Runs a request with the access token; on 401 token_expired/invalid_token, one refresh and one retry. */
  function authorized(attempt: (token: string) => Promise<Response>, ours = true): Promise<Response> {
    return within(async () => {
      const first = await validSession();
      const response = await attempt(first.access_token);
      if (response.status !== 401) return response;
      const code = codeOf(await jsonOf(response.clone()));
      if (code !== 'token_expired' && code !== 'invalid_token') return response;
      const fresh = await refresh(first.access_token);
      const mine = generation;
      const retried = await attempt(fresh.access_token);
      const body = retried.status === 401 ? await jsonOf(retried.clone()) : undefined;
      // Our API refused a token minted this moment (and still this session's): the session has ended.
      if (ours && codeOf(body) === 'invalid_token' && generation === mine) await end(errorOf(retried, body));
      return retried;
    });
  }

  function authed<P extends ApiPath, M extends MethodOf<P>>(call: Omit<Call<P, M>, 'token'>): Promise<Answer<P, M>> {
    return authorized((token) => api({ ...call, token } as Call<P, M>)).then((response) => answerOf<Answer<P, M>>(response));
  }

  // ---- signing in -------------------------------------------------------------------------
  /** A new session and its device token: the session is kept (in memory at least) even if a write fails. */
  async function keep(answer: SignInAnswer, next: StoredSession): Promise<void> {
    const device = typeof answer.device_token === 'string' ? write(DEVICE_KEY, answer.device_token) : undefined;
    device?.catch(() => {});
    await commit(next, 'signed_in');
    await device;
  }

  async function signedIn(answer: unknown, status: number): Promise<SignedIn> {
    if (!isSignInAnswer(answer)) throw unexpected(status);
    await keep(answer, sessionOf(answer));
    return { status: 'signed_in', user: answer.user };
  }

  async function verify(mfaToken: string, input: { code: string } | { recoveryCode: string }) {
    const response = await api({
      method: 'post',
      path: '/v1/auth/mfa/verify',
      body: 'code' in input ? { mfa_token: mfaToken, code: input.code } : { mfa_token: mfaToken, recovery_code: input.recoveryCode },
    });
    const answer = await answerOf<Answer<'/v1/auth/mfa/verify', 'post'>>(response);
    const result = await signedIn(answer, response.status);
    return answer.recovery_codes_left === undefined ? result : { ...result, recoveryCodesLeft: answer.recovery_codes_left };
  }

  async function enrol(mfaToken: string): Promise<TotpSecret> {
    const answer = await answerOf<Answer<'/v1/auth/mfa/totp/setup', 'post'>>(
      await api({ method: 'post', path: '/v1/auth/mfa/totp/setup', body: { mfa_token: mfaToken } }),
    );
    return { secret: answer.secret, otpauthUrl: answer.otpauth_url };
  }

  async function activateEnrolment(mfaToken: string, code: string) {
    const response = await api({ method: 'post', path: '/v1/auth/mfa/totp/activate', body: { code, mfa_token: mfaToken } });
    const answer = await answerOf<Answer<'/v1/auth/mfa/totp/activate', 'post'>>(response);
    return { ...(await signedIn(answer, response.status)), recoveryCodes: answer.recovery_codes };
  }

  /** The answer of POST /auth/login or /auth/sso/token (they answer alike): signed in, or a second factor owed. */
  async function answered(response: Response): Promise<SignInResult> {
    const body = await jsonOf(response);
    if (response.ok) return signedIn(body, response.status);
    const challenge = body as Partial<MfaChallenge> | undefined;
    const mfaToken = challenge?.mfa_token;
    if (response.status === 401 && typeof mfaToken === 'string') {
      if (codeOf(body) === 'mfa_required') {
        return { status: 'mfa_required', verify: (input) => verify(mfaToken, input) };
      }
      if (codeOf(body) === 'mfa_enrollment_required') {
        return {
          status: 'mfa_enrollment_required',
          setup: () => enrol(mfaToken),
          activate: (code) => activateEnrolment(mfaToken, code),
        };
      }
    }
    throw errorOf(response, body);
  }

  const auth: AuthClient = {
    async signIn({ email, password }) {
      const deviceToken = await read(DEVICE_KEY);
      return answered(
        await api({
          method: 'post',
          path: '/v1/auth/login',
          body: { email, password, ...(deviceToken ? { device_token: deviceToken } : {}) },
        }),
      );
    },

    sso: {
      async start(target, { redirectUri }) {
        // Browsers keep Web Crypto's digest to secure contexts: an http page on another host than localhost has none.
        if (!globalThis.crypto?.subtle) {
          throw new AuthError(0, 'https_required', 'Sign-in with your company needs a secure page (https, or localhost): Web Crypto is not available here.');
        }
        const verifier = randomToken(32);
        const state = randomToken(16);
        const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
        await write(SSO_FLOW_KEY, JSON.stringify({ state, verifier, redirectUri } satisfies SsoFlow));
        const query = new URLSearchParams({
          ...('email' in target ? { email: target.email } : { domain: target.domain }),
          redirect_uri: redirectUri,
          state,
          code_challenge: base64url(new Uint8Array(digest)),
          code_challenge_method: 'S256',
        });
        return { url: `${urlOf(options.baseUrl, '/v1/auth/sso/authorize')}?${query}` };
      },

      async complete(callback) {
        const query = paramsOf(callback);
        const flow = parseFlow(await read(SSO_FLOW_KEY));
        // A callback of another state (forged, or of an older flow) leaves the flow under way be.
        if (!flow || query.get('state') !== flow.state) {
          throw new AuthError(0, 'invalid_state', 'This sign-in was not started here, or has already been used: please start again.');
        }
        // Single use: a callback replayed, or a second complete() of the same flow, finds nothing.
        await write(SSO_FLOW_KEY, null);
        const error = query.get('error');
        if (error !== null) {
          throw new AuthError(401, error === 'access_denied' ? 'access_denied' : 'unexpected_response', query.get('error_description') || error);
        }
        const code = query.get('code');
        if (!code) throw new AuthError(0, 'invalid_state', 'The sign-in came back without a code: please start again.');
        return answered(await api({ method: 'post', path: '/v1/auth/sso/token', body: { code, code_verifier: flow.verifier } }));
      },
    },

    async getAccessToken() {
      return (await within(validSession)).access_token;
    },

    fetch(input, init) {
      const origin = originOf(input);
      // The token goes to our API (and the origins named), never to whatever URL a caller passes.
      if (origin === undefined || !tokenOrigins.has(origin)) return doFetch(input, init);
      return authorized(async (token) => {
        const request = input instanceof Request ? input.clone() : input;
        const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
        headers.set('authorization', `Bearer ${token}`);
        try {
          return await doFetch(request, { ...init, headers });
        } catch (cause) {
          throw networkError(cause);
        }
      }, origin === apiOrigin);
    },

    async me() {
      const { user } = await authed({ method: 'get', path: '/v1/auth/me' });
      await freshUser(() => user);
      return user;
    },

    sessions: {
      async list() {
        return (await authed({ method: 'get', path: '/v1/auth/sessions' })).sessions;
      },
      async end(id) {
        const own = current && claimsOf(current.access_token).sid === id;
        await authed({ method: 'delete', path: '/v1/auth/sessions/{id}', params: { id } });
        if (own && current) await commit(null, 'signed_out');
      },
    },

    async changePassword({ currentPassword, newPassword }) {
      const answer = await authed({
        method: 'post',
        path: '/v1/auth/password',
        body: { current_password: currentPassword, new_password: newPassword },
      });
      if (!isSignInAnswer(answer)) throw unexpected(200);
      // A new session (a new sid): the old one, and every other, has ended on the server.
      await keep(answer, sessionOf(answer));
    },

    mfa: {
      async setup({ currentPassword }) {
        const answer = await authed({ method: 'post', path: '/v1/auth/mfa/totp/setup', body: { current_password: currentPassword } });
        return { secret: answer.secret, otpauthUrl: answer.otpauth_url };
      },
      async activate(code) {
        const answer = await authed({ method: 'post', path: '/v1/auth/mfa/totp/activate', body: { code } });
        await freshUser((user) => ({ ...user, mfa_enabled: true }));
        return { recoveryCodes: answer.recovery_codes };
      },
      async regenerateRecoveryCodes({ code }) {
        return (await authed({ method: 'post', path: '/v1/auth/mfa/recovery-codes', body: { code } })).recovery_codes;
      },
      async disable(code) {
        await authed({ method: 'delete', path: '/v1/auth/mfa/totp', body: { code } });
        await freshUser((user) => ({ ...user, mfa_enabled: false }));
      },
    },

    async signOut({ scope = 'local' } = {}) {
      await ready;
      current ??= await readStored();
      if (!current) return;
      let failure: unknown;
      try {
        await authed({ method: 'post', path: '/v1/auth/logout', body: { scope } });
      } catch (error) {
        failure = error;
      }
      // Already gone if the refresh before the logout found the session ended (session_ended told).
      if (current) await commit(null, 'signed_out');
      // A local sign-out is done whatever the server heard; a global one that failed must say so.
      if (failure !== undefined && scope === 'global') throw failure;
    },

    onChange(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },

    get session() {
      return publicSession();
    },

    close() {
      channel?.close();
      channel = undefined;
    },
  };
  return auth;
}
