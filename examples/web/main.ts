/**
 * The example page: sign-in with a second factor, enrolment with a QR code, sessions, password
 * change and sign-out, all through @vpn-enterprise/auth-client. No framework: one view shown at a
 * time, every element found by id.
 *
 * Settings, from the query string: `api` (the API's base URL, else the page's <meta name="auth-api">),
 * `poll` (ms between checks that the session still stands, default 5000) and `margin` (the client's
 * refreshMarginSeconds).
 *
 * "Sign in with your company" leaves for the company's IdP and comes back to this page's own URL
 * (origin and path: what the API's SSO_REDIRECT_URIS lists) with `code` and `state`, or `error`.
 */
import QRCode from 'qrcode';
import { AuthError, browserStorage, createAuthClient, type ActiveSession, type SignInResult, type TotpSecret, type User } from '@vpn-enterprise/auth-client';

/** The page's URL before the trip to the IdP: its settings ride in the query, which the way back does not keep. */
const SSO_RETURN_KEY = 'example-page.sso-return';
const arrived = new URLSearchParams(location.search);
/** The IdP's answer, when the page is where the API sent the browser back. */
const ssoCallback = arrived.has('state') && (arrived.has('code') || arrived.has('error')) ? arrived : undefined;
if (ssoCallback) {
  // The one-time code leaves the address bar and the history at once; the settings come back.
  history.replaceState(null, '', sessionStorage.getItem(SSO_RETURN_KEY) ?? location.pathname);
  sessionStorage.removeItem(SSO_RETURN_KEY);
}

const params = new URLSearchParams(location.search);
const baseUrl = params.get('api') || document.querySelector<HTMLMetaElement>('meta[name="auth-api"]')?.content || 'http://localhost:3000/v1';
const pollMs = Math.max(250, Number(params.get('poll')) || 5000);
const margin = params.get('margin');

// localStorage: every tab of this origin shares the session, and the client keeps them in step.
const auth = createAuthClient({
  baseUrl,
  storage: browserStorage(window.localStorage),
  ...(margin !== null && margin !== '' ? { refreshMarginSeconds: Number(margin) } : {}),
});

type View = 'signin' | 'mfa' | 'enroll' | 'recovery' | 'account';
const VIEWS: View[] = ['signin', 'mfa', 'enroll', 'recovery', 'account'];
let current: View = 'signin';

type Verify = (input: { code: string } | { recoveryCode: string }) => Promise<unknown>;
type Activate = (code: string) => Promise<{ recoveryCodes: string[] }>;
/** The second-factor step of a sign-in, while it is shown. */
let pendingVerify: Verify | undefined;
/** The enrolment shown: its activation, and whether it is a sign-in's (else the signed-in user's). */
let pendingEnrolment: { activate: Activate; atSignIn: boolean } | undefined;

function element<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found as T;
}
const input = (id: string) => element<HTMLInputElement>(id);

function show(view: View): void {
  current = view;
  for (const name of VIEWS) element(`${name}-view`).hidden = name !== view;
  const focus = { signin: 'email', mfa: 'mfa-code', enroll: 'enroll-code', recovery: 'recovery-done', account: 'account-title' }[view];
  element(focus).focus();
}

function say(kind: 'error' | 'notice', text: string | undefined, code?: string): void {
  const box = element(kind);
  box.textContent = text ?? '';
  box.hidden = !text;
  if (code) box.dataset.code = code;
  else delete box.dataset.code;
}

function clearMessages(): void {
  say('error', undefined);
  say('notice', undefined);
}

function seconds(total: number): string {
  if (total < 120) return `${total} second${total === 1 ? '' : 's'}`;
  return `${Math.ceil(total / 60)} minutes`;
}

/** The server's own words; a 429 (or 503) says how long to wait. */
function showError(error: unknown): void {
  if (error instanceof AuthError) {
    const wait = error.retryAfter ? ` (Wait ${seconds(error.retryAfter)}.)` : '';
    say('error', `${error.message}${wait}`, error.code);
  } else {
    say('error', error instanceof Error ? error.message : String(error));
  }
}

/** Run a form's action with its button disabled, errors shown. */
function action(form: HTMLFormElement | HTMLButtonElement, run: () => Promise<void>): void {
  const go = async (event: Event) => {
    event.preventDefault();
    clearMessages();
    const buttons = form instanceof HTMLFormElement ? [...form.querySelectorAll('button')] : [form];
    for (const button of buttons) button.disabled = true;
    try {
      await run();
    } catch (error) {
      showError(error);
    } finally {
      for (const button of buttons) button.disabled = false;
    }
  };
  form.addEventListener(form instanceof HTMLFormElement ? 'submit' : 'click', (event) => void go(event));
}

// --- Signed out -----------------------------------------------------------------------------

function showSignIn(notice?: string): void {
  pendingVerify = undefined;
  pendingEnrolment = undefined;
  input('password').value = '';
  show('signin');
  if (notice) say('notice', notice);
}

/** Where a sign-in goes next, by password or through the company's IdP. */
async function afterSignIn(result: SignInResult): Promise<void> {
  if (result.status === 'signed_in') {
    await showAccount();
  } else if (result.status === 'mfa_required') {
    pendingVerify = result.verify;
    input('mfa-code').value = '';
    input('mfa-recovery-code').value = '';
    show('mfa');
  } else {
    await showEnrolment(await result.setup(), { activate: result.activate, atSignIn: true }, 'Your account needs two-factor authentication before you can sign in.');
  }
}

action(element<HTMLFormElement>('signin-form'), async () => {
  const result = await auth.signIn({ email: input('email').value, password: input('password').value });
  input('password').value = '';
  await afterSignIn(result);
});

action(element<HTMLButtonElement>('sso-button'), async () => {
  const email = input('email').value.trim();
  if (!email.includes('@')) {
    say('error', 'Enter your work email first: its domain finds your company.');
    input('email').focus();
    return;
  }
  const { url } = await auth.sso.start({ email }, { redirectUri: location.origin + location.pathname });
  sessionStorage.setItem(SSO_RETURN_KEY, location.href);
  location.assign(url);
});

/** Back from the IdP: the code redeemed, or the refusal shown in the server's words. */
async function completeSso(callback: URLSearchParams): Promise<void> {
  try {
    await afterSignIn(await auth.sso.complete(callback));
  } catch (error) {
    showSignIn();
    showError(error);
  }
}

action(element<HTMLFormElement>('mfa-form'), async () => {
  const recoveryCode = input('mfa-recovery-code').value.trim();
  const code = input('mfa-code').value.trim();
  if (!pendingVerify) return showSignIn();
  await pendingVerify(recoveryCode && !code ? { recoveryCode } : { code });
  pendingVerify = undefined;
  await showAccount();
});

element('mfa-cancel').addEventListener('click', () => {
  clearMessages();
  showSignIn();
});

// --- Enrolment --------------------------------------------------------------------------------

async function showEnrolment(secret: TotpSecret, enrolment: { activate: Activate; atSignIn: boolean }, reason = ''): Promise<void> {
  pendingEnrolment = enrolment;
  element<HTMLImageElement>('enroll-qr').src = await QRCode.toDataURL(secret.otpauthUrl, { width: 200, margin: 1 });
  element('enroll-secret').textContent = secret.secret;
  element('enroll-reason').textContent = reason;
  input('enroll-code').value = '';
  show('enroll');
}

action(element<HTMLFormElement>('enroll-form'), async () => {
  if (!pendingEnrolment) return showSignIn();
  const { recoveryCodes } = await pendingEnrolment.activate(input('enroll-code').value.trim());
  pendingEnrolment = undefined;
  const list = element('recovery-codes');
  list.replaceChildren(...recoveryCodes.map((code) => Object.assign(document.createElement('li'), { textContent: code })));
  show('recovery');
});

element('enroll-cancel').addEventListener('click', () => {
  clearMessages();
  const atSignIn = pendingEnrolment?.atSignIn ?? true;
  pendingEnrolment = undefined;
  if (atSignIn || !auth.session) showSignIn();
  else void showAccount();
});

element('recovery-done').addEventListener('click', () => {
  element('recovery-codes').replaceChildren();
  clearMessages();
  if (auth.session) void showAccount();
  else showSignIn();
});

// --- Signed in --------------------------------------------------------------------------------

function showUser(user: User): void {
  element('user-email').textContent = user.email;
  // For password managers: which account the password fields are for.
  for (const field of document.querySelectorAll<HTMLInputElement>('.account-username')) field.value = user.email;
  element('user-name').textContent = user.name;
  element('user-role').textContent = user.role;
  element('mfa-status').textContent = user.mfa_enabled ? 'on' : 'off';
  element('enable-mfa').hidden = user.mfa_enabled;
}

async function showAccount(): Promise<void> {
  const session = auth.session;
  if (!session) return showSignIn();
  showUser(session.user);
  show('account');
  try {
    // The stored user is as the sign-in saw it (TOTP turned on since, say): the server's is current.
    const [user] = await Promise.all([auth.me(), loadSessions()]);
    showUser(user);
  } catch (error) {
    showError(error);
  }
}

/** How a session was signed in (its amr, RFC 8176), in words. */
const HOW: Record<ActiveSession['amr'][number], string> = { pwd: 'password', otp: 'authenticator code', fed: 'your company', mfa: "your company's MFA" };

async function loadSessions(): Promise<void> {
  const sessions = await auth.sessions.list();
  const items = sessions.map((session) => {
    const item = document.createElement('li');
    item.dataset.testid = 'session';
    item.dataset.sessionId = session.id;
    if (session.current) item.dataset.current = 'true';
    item.dataset.amr = session.amr.join(' ');
    const started = new Date(session.created_at).toLocaleString();
    const how = session.amr.map((method) => HOW[method]).join(' + ');
    const label = `${session.current ? 'This browser' : session.user_agent || 'Unknown device'}, from ${session.ip ?? 'an unknown address'}, signed in ${started} with ${how}`;
    const text = document.createElement('span');
    text.textContent = `${label} `;
    const end = document.createElement('button');
    end.type = 'button';
    end.textContent = 'Sign out';
    end.dataset.testid = 'end-session';
    end.setAttribute('aria-label', `Sign out: ${label}`);
    action(end, async () => {
      await auth.sessions.end(session.id);
      if (session.current) return;
      say('notice', 'That session has ended.');
      await loadSessions();
    });
    item.append(text, end);
    return item;
  });
  element('sessions-list').replaceChildren(...items);
}

action(element<HTMLButtonElement>('sessions-reload'), loadSessions);

action(element<HTMLFormElement>('password-form'), async () => {
  await auth.changePassword({ currentPassword: input('current-password').value, newPassword: input('new-password').value });
  input('current-password').value = '';
  input('new-password').value = '';
  await showAccount();
  say('notice', 'Password changed. Every other session has been signed out.');
});

action(element<HTMLFormElement>('enable-mfa-form'), async () => {
  const secret = await auth.mfa.setup({ currentPassword: input('enable-mfa-password').value });
  input('enable-mfa-password').value = '';
  await showEnrolment(secret, { activate: (code) => auth.mfa.activate(code), atSignIn: false });
});

action(element<HTMLButtonElement>('signout-button'), () => auth.signOut());
action(element<HTMLButtonElement>('signout-everywhere-button'), () => auth.signOut({ scope: 'global' }));

// --- Staying in step ----------------------------------------------------------------------------

/** A sign-in under way here (its own steps), or recovery codes not yet saved: not to be taken away. */
const busyHere = () => current === 'signin' || current === 'mfa' || current === 'recovery' || (current === 'enroll' && pendingEnrolment?.atSignIn === true);

auth.onChange((event) => {
  if ((event === 'session_ended' || event === 'signed_out') && busyHere()) return;
  if (event === 'session_ended') {
    showSignIn();
    say('notice', 'Your session has ended. Please sign in again.');
  } else if (event === 'signed_out') {
    showSignIn();
    say('notice', 'You are signed out.');
  } else if (event === 'signed_in' && (current === 'signin' || current === 'mfa')) {
    // Signed in in another tab.
    clearMessages();
    void showAccount();
  }
});

/**
 * Does the session still stand? (It may have been ended from another device, or by a password
 * change there.) The client answers 'session_ended' through onChange when it does not; a network
 * failure is not a sign-out and is left for the next check.
 */
async function check(): Promise<void> {
  if (!auth.session) return;
  try {
    const user = await auth.me();
    if (current === 'account') showUser(user);
  } catch {
    // An ended session has been reported through onChange; anything else waits for the next check.
  }
}

setInterval(() => void check(), pollMs);
window.addEventListener('focus', () => void check());
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') void check();
});

if (ssoCallback) {
  showSignIn();
  void completeSso(ssoCallback);
} else if (auth.session) {
  void showAccount();
  void check();
} else {
  showSignIn();
}
