import { createHash, randomBytes } from 'node:crypto';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealClientSecret } from '../../lib/auth/identity-providers.js';
import { sessionKey } from '../../lib/store/sessions.js';
import { SsoRepository } from '../../lib/store/sso.js';
import { SSO_TEST_REDIRECT_URIS } from '../support/api-setup.js';
import { auditLine, runScript } from '../support/cli.js';
import { apiEnv, apiUrl } from '../support/context.js';
import { call, e2eApp, expectError } from '../support/http.js';
import { startForgingIdp } from '../support/forging-idp.js';
import { startTestIdp, type IdpAccount, type TestIdp } from '../support/oidc-idp.js';
import { contractViolation } from '../support/openapi.js';
import { createUser } from '../support/store.js';
import { Authenticator } from '../support/authenticator.js';
import { recordSecret } from '../support/secrets.js';

const WEB_APP = SSO_TEST_REDIRECT_URIS[0]!;
const DESKTOP = 'http://127.0.0.1:53124/sso/desktop';

let idp: TestIdp;

beforeAll(async () => {
  const base = apiEnv().PUBLIC_BASE_URL!;
  idp = await startTestIdp({ callbackUrl: `${base}/v1/auth/sso/callback`, backchannelLogoutUrl: `${base}/v1/auth/sso/backchannel-logout` });
  // The run's end checks that no Lambda ever logged it.
  recordSecret(idp.clientSecret);
});

afterAll(async () => {
  await idp?.close();
});

const sso = () => new SsoRepository(e2eApp().db, e2eApp().config.usersTable, e2eApp().config.attemptsTable);

/** A fresh domain connected to the test IdP, as `sso add` connects one. */
async function connect({ enforce = false, adminGroup, to = idp }: { enforce?: boolean; adminGroup?: string; to?: { issuer: string; clientId: string; clientSecret: string } } = {}): Promise<string> {
  const domain = `${randomBytes(4).toString('hex')}.sso.test`;
  const ring = await e2eApp().mfaKeyRing!.current();
  await sso().addConnection({ domain, issuer: to.issuer, clientId: to.clientId, sealedClientSecret: sealClientSecret(ring, to.clientSecret, domain), enforce, adminGroup, groupsClaim: 'groups', createdAt: new Date().toISOString() });
  return domain;
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** A GET that does not follow redirects, its answer held to openapi.yaml when it is the API's. */
async function hop(url: string, jar: Map<string, string>): Promise<{ status: number; location: string | undefined; body: any }> {
  const response = await fetch(url, { redirect: 'manual', headers: jar.size ? { cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; ') } : {}, signal: AbortSignal.timeout(20_000) });
  for (const cookie of response.headers.getSetCookie()) {
    const [pair] = cookie.split(';');
    const index = pair!.indexOf('=');
    jar.set(pair!.slice(0, index), pair!.slice(index + 1));
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (url.startsWith(apiUrl())) {
    const path = new URL(url).pathname;
    expect(contractViolation('GET', path, response.status, body)).toBeUndefined();
  }
  const location = response.headers.get('location') ?? undefined;
  return { status: response.status, location: location && new URL(location, url).href, body };
}

interface FlowOptions {
  email?: string;
  domain?: string;
  redirectUri?: string;
  state?: string;
  challenge: string;
}

function authorizeUrl({ email, domain, redirectUri = WEB_APP, state = 'client-state-1', challenge }: FlowOptions): string {
  const query = new URLSearchParams({ ...(email ? { email } : {}), ...(domain ? { domain } : {}), redirect_uri: redirectUri, state, code_challenge: challenge, code_challenge_method: 'S256' });
  return `${apiUrl()}/v1/auth/sso/authorize?${query}`;
}

/**
 * A browser's trip: authorize, the IdP (its interaction finished by the helper), our callback, and
 * where that sends the browser (the client's redirect URI). Also the callback URL the IdP sent.
 */
async function browse(options: FlowOptions): Promise<{ back: URL; callbackUrl: string }> {
  const jar = new Map<string, string>();
  let step = await hop(authorizeUrl(options), jar);
  expect(step.status, JSON.stringify(step.body)).toBe(302);
  const callbackPrefix = `${apiEnv().PUBLIC_BASE_URL}/v1/auth/sso/callback`;
  for (let hops = 0; hops < 10 && step.location && !step.location.startsWith(callbackPrefix); hops++) step = await hop(step.location, jar);
  expect(step.location).toMatch(/\/v1\/auth\/sso\/callback\?/);
  const callbackUrl = step.location!;
  const back = await hop(callbackUrl, new Map());
  expect(back.status, JSON.stringify(back.body)).toBe(302);
  return { back: new URL(back.location!), callbackUrl };
}

/** The whole sign-in: the browser's trip, then the token exchange. */
async function signIn(account: IdpAccount, { domain, ...rest }: { domain?: string; redirectUri?: string } = {}) {
  idp.account(account);
  const { verifier, challenge } = pkce();
  const { back } = await browse({ ...(domain ? { domain } : { email: account.email }), challenge, ...rest });
  expect(back.searchParams.get('error'), back.searchParams.get('error_description') ?? '').toBeNull();
  expect(back.searchParams.get('state')).toBe('client-state-1');
  return call('POST', '/sso/token', { body: { code: back.searchParams.get('code'), code_verifier: verifier } });
}

const subject = () => `idp-${randomBytes(6).toString('hex')}`;

describe('single sign-on with an OpenID Connect provider, over HTTP', () => {
  it('makes a user just in time and answers the token exchange exactly as POST /auth/login does', async () => {
    // Prepare
    const domain = await connect();
    const email = `jit@${domain}`;

    // Act
    const reply = await signIn({ sub: subject(), email, name: 'Jit User' });

    // Assess
    expect(reply.status, reply.text).toBe(200);
    expect(Object.keys(reply.body).sort()).toEqual(['device_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'success', 'token', 'token_type', 'user']);
    expect(reply.body.user).toMatchObject({ email, name: 'Jit User', role: 'user', mfa_enabled: false });
    expect(decodeJwt(reply.body.token).amr).toEqual(['fed']);
    const me = await call('GET', '/me', { token: reply.body.token });
    expect(me.body.user.email).toBe(email);
    const session = await e2eApp().sessions.get(decodeJwt(reply.body.token).sid as string);
    expect(session).toMatchObject({ amr: ['fed'], idp: { issuer: idp.issuer } });
    const listed = await call('GET', '/sessions', { token: reply.body.token });
    expect(listed.body.sessions).toEqual([expect.objectContaining({ id: session!.id, amr: ['fed'], idp: idp.issuer, current: true })]);
    // A JIT account has no password.
    expectError(await call('POST', '/login', { body: { email, password: 'anything at all' } }), 401, 'invalid_credentials');
  });

  it('sends the IdP our own state, nonce, S256 challenge and login_hint, and keeps the client\'s apart', async () => {
    // Prepare
    const domain = await connect();
    const { challenge } = pkce();

    // Act
    const step = await hop(authorizeUrl({ email: `Hint@${domain}`, challenge, state: 'theirs' }), new Map());

    // Assess
    expect(step.status).toBe(302);
    const url = new URL(step.location!);
    expect(url.origin).toBe(idp.issuer);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      response_type: 'code',
      client_id: idp.clientId,
      redirect_uri: `${apiEnv().PUBLIC_BASE_URL}/v1/auth/sso/callback`,
      scope: 'openid email profile',
      code_challenge_method: 'S256',
      login_hint: `hint@${domain}`,
    });
    expect(url.searchParams.get('state')).not.toBe('theirs');
    expect(url.searchParams.get('code_challenge')).not.toBe(challenge);
    expect(url.searchParams.get('nonce')).toMatch(/.{20,}/);
  });

  it('links an existing password user by email, and then by (issuer, sub) even after the email changes at the IdP', async () => {
    // Prepare
    const domain = await connect();
    const existing = await createUser(e2eApp(), { email: `linked-${randomBytes(3).toString('hex')}@${domain}` });
    const sub = subject();

    // Act
    const first = await signIn({ sub, email: existing.email });
    const again = await signIn({ sub, email: `renamed-${randomBytes(3).toString('hex')}@${domain}` });

    // Assess
    expect(first.status, first.text).toBe(200);
    expect(first.body.user.id).toBe(existing.id);
    expect(again.status, again.text).toBe(200);
    expect(again.body.user.id).toBe(existing.id);
    expect(again.body.user.email).toBe(existing.email);
  });

  it('refuses a recycled email: a new sub with the email of a user linked to another sub of the same IdP gets access_denied', async () => {
    // Prepare: alice signs in as sub A, then the IdP renames A and gives alice's email to a new sub B
    const domain = await connect();
    const alice = `alice-${randomBytes(3).toString('hex')}@${domain}`;
    const subA = subject();
    const first = await signIn({ sub: subA, email: alice });
    expect(first.status, first.text).toBe(200);
    const renamed = await signIn({ sub: subA, email: `alice-old-${randomBytes(3).toString('hex')}@${domain}` });
    expect(renamed.body.user.id).toBe(first.body.user.id);

    // Act
    const subB = subject();
    idp.account({ sub: subB, email: alice });
    const { challenge } = pkce();
    const { back } = await browse({ email: alice, challenge });

    // Assess
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('code')).toBeNull();
    expect(await sso().linkedUser(idp.issuer, subB)).toBeUndefined();
    expect(await sso().linkedUser(idp.issuer, subA)).toBe(first.body.user.id);

    // Act: an operator who knows B is alice unlinks her; B then signs in to her account
    const unlinked = await runScript('scripts/users.ts', ['sso', 'unlink', '--email', alice], { env: apiEnv() });
    const relinked = await signIn({ sub: subB, email: alice });

    // Assess
    expect(unlinked, unlinked.stderr).toMatchObject({ code: 0 });
    expect(auditLine(unlinked.stderr, 'sso_user_unlinked')).toMatchObject({ userId: first.body.user.id, links: 1 });
    expect(await sso().linkedUser(idp.issuer, subA)).toBeUndefined();
    expect(relinked.status, relinked.text).toBe(200);
    expect(relinked.body.user.id).toBe(first.body.user.id);
  });

  it('maps the role from the groups claim at every sign-in when the connection names an admin group', async () => {
    // Prepare
    const domain = await connect({ adminGroup: 'vpn-admins' });
    const sub = subject();
    const email = `role@${domain}`;

    // Act
    const asAdmin = await signIn({ sub, email, groups: ['staff', 'vpn-admins'] });
    const demoted = await signIn({ sub, email, groups: ['staff'] });

    // Assess
    expect(asAdmin.body.user.role).toBe('admin');
    expect(decodeJwt(asAdmin.body.token).role).toBe('admin');
    expect(demoted.body.user.role).toBe('user');
  });

  it('signs a desktop client in on any loopback port (RFC 8252), by domain', async () => {
    const domain = await connect();
    const reply = await signIn({ sub: subject(), email: `desk@${domain}` }, { domain, redirectUri: DESKTOP });
    expect(reply.status, reply.text).toBe(200);
  });

  it('says amr ["fed","mfa"] when the IdP did MFA, and skips our second factor then', async () => {
    // Prepare
    const domain = await connect();
    const email = `mfa@${domain}`;
    const sub = subject();
    await signIn({ sub, email });
    const user = (await e2eApp().users.findByEmail(email))!;
    await enableTotp(user.id);

    // Act
    const reply = await signIn({ sub, email, amr: ['pwd', 'mfa'] });

    // Assess
    expect(reply.status, reply.text).toBe(200);
    expect(decodeJwt(reply.body.token).amr).toEqual(['fed', 'mfa']);
  });

  it('asks for our second factor when TOTP is on and the IdP did not do MFA; the session then says fed and otp', async () => {
    // Prepare
    const domain = await connect();
    const email = `otp@${domain}`;
    const sub = subject();
    await signIn({ sub, email });
    const user = (await e2eApp().users.findByEmail(email))!;
    const secret = await enableTotp(user.id);

    // Act
    const challenge = await signIn({ sub, email, amr: ['pwd'] });
    const verified = await call('POST', '/mfa/verify', { body: { mfa_token: challenge.body.mfa_token, code: await new Authenticator(secret).next() } });

    // Assess
    expect(challenge.status).toBe(401);
    expect(challenge.body.error.code).toBe('mfa_required');
    expect(verified.status, verified.text).toBe(200);
    expect(decodeJwt(verified.body.token).amr).toEqual(['fed', 'otp']);
  });

  it('lets a JIT user (no password) set up TOTP without current_password, only within 10 minutes of a federated sign-in', async () => {
    // Prepare: a JIT user fresh from SSO, the same user's session aged past 10 minutes, and a password user
    const domain = await connect();
    const email = `jit-totp@${domain}`;
    const sub = subject();
    const fresh = await signIn({ sub, email });
    const aged = await signIn({ sub, email });
    const agedId = decodeJwt(aged.body.token).sid as string;
    await e2eApp().db.send(new UpdateCommand({ TableName: e2eApp().config.sessionsTable, Key: sessionKey(agedId), UpdateExpression: 'SET created_at = :old', ExpressionAttributeValues: { ':old': new Date(Date.now() - 11 * 60_000).toISOString() } }));
    const passwordUser = await createUser(e2eApp(), { email: `pw-totp-${randomBytes(3).toString('hex')}@${domain}` });
    const passwordLogin = await call('POST', '/login', { body: { email: passwordUser.email, password: passwordUser.password } });

    // Act
    const tooOld = await call('POST', '/mfa/totp/setup', { token: aged.body.token, body: {} });
    const withPasswordUser = await call('POST', '/mfa/totp/setup', { token: passwordLogin.body.token, body: {} });
    const setup = await call('POST', '/mfa/totp/setup', { token: fresh.body.token, body: {} });

    // Assess
    expectError(tooOld, 400, 'invalid_request');
    expectError(withPasswordUser, 400, 'invalid_request');
    expect(setup.status, setup.text).toBe(200);
    expect(setup.body.secret).toMatch(/^[A-Z2-7]{32}$/);
  });

  describe('refusals', () => {
    it('refuses an ID token signed by a key the IdP does not publish, or with the client secret (HS256), and opens no session', async () => {
      // Prepare
      const forging = await startForgingIdp();
      try {
        const domain = await connect({ to: forging });
        const sub = subject();
        const email = `forged@${domain}`;
        const trip = async (signing: 'own' | 'other' | 'hs256') => {
          forging.next({ sub, email, email_verified: true }, signing);
          const { verifier, challenge } = pkce();
          const { back } = await browse({ domain, challenge });
          return { back, verifier };
        };

        // Act
        const forged = await trip('other');
        const symmetric = await trip('hs256');
        const madeByForgery = await e2eApp().users.findByEmail(email);
        const genuine = await trip('own');

        // Assess
        for (const { back } of [forged, symmetric]) {
          expect(back.searchParams.get('error')).toBe('access_denied');
          expect(back.searchParams.get('code')).toBeNull();
        }
        expect(madeByForgery).toBeUndefined();
        expect(genuine.back.searchParams.get('error'), genuine.back.searchParams.get('error_description') ?? '').toBeNull();
        const reply = await call('POST', '/sso/token', { body: { code: genuine.back.searchParams.get('code'), code_verifier: genuine.verifier } });
        expect(reply.status, reply.text).toBe(200);
        const sessions = await e2eApp().sessions.federatedSessions(reply.body.user.id, new Date());
        expect(sessions).toHaveLength(1);
      } finally {
        await forging.close();
      }
    });

    it('refuses an unlisted redirect_uri with JSON, never a redirect', async () => {
      const domain = await connect();
      const { challenge } = pkce();
      for (const redirectUri of ['https://evil.example/sso/done', 'https://app.example.test/sso/done/../x', 'http://localhost:1234/sso/desktop', 'http://127.0.0.1:99/other']) {
        const step = await hop(authorizeUrl({ domain, redirectUri, challenge }), new Map());
        expect(step.status).toBe(400);
        expect(step.location).toBeUndefined();
        expect(step.body.error.code).toBe('invalid_redirect_uri');
      }
    });

    it('answers sso_not_configured for a domain without a connection, and invalid_request for what is malformed', async () => {
      const { challenge } = pkce();
      const unknown = await hop(authorizeUrl({ domain: 'nobody.example', challenge }), new Map());
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe('sso_not_configured');
      const plain = await hop(authorizeUrl({ domain: 'nobody.example', challenge }).replace('S256', 'plain'), new Map());
      expect(plain.status).toBe(400);
      expect(plain.body.error.code).toBe('invalid_request');
      const missing = await hop(`${apiUrl()}/v1/auth/sso/authorize?domain=x.example`, new Map());
      expect(missing.body.error.code).toBe('invalid_request');
    });

    it('refuses a state reused or forged with 400 invalid_request in JSON', async () => {
      // Prepare
      const domain = await connect();
      idp.account({ sub: subject(), email: `state@${domain}` });
      const { challenge } = pkce();
      const { callbackUrl } = await browse({ domain, challenge });

      // Act
      const reused = await hop(callbackUrl, new Map());
      const forged = await hop(callbackUrl.replace(/state=[^&]+/, 'state=forged-state'), new Map());

      // Assess
      for (const answer of [reused, forged]) {
        expect(answer.status).toBe(400);
        expect(answer.location).toBeUndefined();
        expect(answer.body.error.code).toBe('invalid_request');
      }
    });

    it('sends the client access_denied when the callback names another issuer (RFC 9207 mix-up)', async () => {
      const domain = await connect();
      idp.account({ sub: subject(), email: `mixup@${domain}` });
      const jar = new Map<string, string>();
      let step = await hop(authorizeUrl({ domain, challenge: pkce().challenge }), jar);
      while (step.location && !step.location.includes('/v1/auth/sso/callback')) step = await hop(step.location, jar);
      const forged = new URL(step.location!);
      expect(forged.searchParams.get('iss')).toBe(idp.issuer);
      forged.searchParams.set('iss', 'https://evil.example');
      const back = await hop(forged.href, new Map());
      expect(back.status).toBe(302);
      expect(new URL(back.location!).searchParams.get('error')).toBe('access_denied');
    });

    it('refuses a code reused, a wrong verifier and a made-up code with invalid_grant', async () => {
      // Prepare
      const domain = await connect();
      idp.account({ sub: subject(), email: `code@${domain}` });
      const { verifier, challenge } = pkce();
      const { back } = await browse({ domain, challenge });
      const code = back.searchParams.get('code')!;

      // Act
      const wrong = await call('POST', '/sso/token', { body: { code, code_verifier: pkce().verifier } });
      const right = await call('POST', '/sso/token', { body: { code, code_verifier: verifier } });
      const reused = await call('POST', '/sso/token', { body: { code, code_verifier: verifier } });
      const madeUp = await call('POST', '/sso/token', { body: { code: 'sc_nothing', code_verifier: verifier } });

      // Assess
      expectError(wrong, 400, 'invalid_grant');
      expect(right.status).toBe(200);
      expectError(reused, 400, 'invalid_grant');
      expectError(madeUp, 400, 'invalid_grant');
    });

    it.each([
      ['an unverified email', (domain: string) => ({ email: `unverified@${domain}`, email_verified: false }), /not verified/],
      ['an email of another domain', () => ({ email: `someone@elsewhere.example` }), /not of the domain/],
      ['an address with two @ whose tail is the domain', (domain: string) => ({ email: `a@b@${domain}` }), /not valid/],
    ])('sends the client access_denied for %s', async (_name, claims, description) => {
      const domain = await connect();
      idp.account({ sub: subject(), ...claims(domain) });
      const { back } = await browse({ domain, challenge: pkce().challenge });
      expect(back.origin + back.pathname).toBe(WEB_APP);
      expect(back.searchParams.get('error')).toBe('access_denied');
      expect(back.searchParams.get('error_description')).toMatch(description);
      expect(back.searchParams.get('state')).toBe('client-state-1');
      expect(back.searchParams.get('code')).toBeNull();
    });

    it('sends the client access_denied for a disabled user, and when the IdP itself refuses', async () => {
      // Prepare
      const domain = await connect();
      const user = await createUser(e2eApp(), { email: `disabled-${randomBytes(3).toString('hex')}@${domain}` });
      await e2eApp().users.setStatus(user.id, 'disabled', new Date());
      idp.account({ sub: subject(), email: user.email });

      // Act
      const disabled = await browse({ email: user.email, challenge: pkce().challenge });
      idp.refuseNext();
      const refused = await browse({ domain, challenge: pkce().challenge });

      // Assess
      expect(disabled.back.searchParams.get('error')).toBe('access_denied');
      expect(disabled.back.searchParams.get('error_description')).toMatch(/disabled/);
      expect(refused.back.searchParams.get('error')).toBe('access_denied');
      expect(refused.back.searchParams.get('state')).toBe('client-state-1');
    });
  });

  it('gives exactly one session to 20 racing token requests with one code', async () => {
    // Prepare
    const domain = await connect();
    const email = `race@${domain}`;
    idp.account({ sub: subject(), email });
    const { verifier, challenge } = pkce();
    const { back } = await browse({ domain, challenge });
    const code = back.searchParams.get('code')!;

    // Act
    const replies = await Promise.all(Array.from({ length: 20 }, () => call('POST', '/sso/token', { body: { code, code_verifier: verifier } })));

    // Assess
    expect(replies.filter((reply) => reply.status === 200)).toHaveLength(1);
    for (const reply of replies.filter((candidate) => candidate.status !== 200)) expectError(reply, 400, 'invalid_grant');
    const user = (await e2eApp().users.findByEmail(email))!;
    const sessions = await e2eApp().sessions.listLive(user, new Date(), { idleSeconds: 0, limit: Infinity, maxAgeSeconds: 3600 });
    expect(sessions).toHaveLength(1);
  });

  describe('an enforced domain', () => {
    it('refuses password sign-in with 401 sso_required, and password change with 403 sso_required', async () => {
      // Prepare
      const domain = await connect({ enforce: true });
      const user = await createUser(e2eApp(), { email: `enforced-${randomBytes(3).toString('hex')}@${domain}` });
      const federated = await signIn({ sub: subject(), email: user.email });

      // Act
      const login = await call('POST', '/login', { body: { email: user.email, password: user.password } });
      const change = await call('POST', '/password', { token: federated.body.token, body: { current_password: user.password, new_password: 'a brand new long passphrase' } });

      // Assess
      expectError(login, 401, 'sso_required');
      expectError(change, 403, 'sso_required');
    });
  });

  describe('back-channel logout', () => {
    async function backchannel(token: string | undefined, contentType = 'application/x-www-form-urlencoded') {
      return call('POST', '/sso/backchannel-logout', { rawBody: token === undefined ? '' : new URLSearchParams({ logout_token: token }).toString(), headers: { 'content-type': contentType } });
    }

    it('ends every session the user opened through that IdP at once, and the authorizer refuses them', async () => {
      // Prepare
      const domain = await connect();
      const sub = subject();
      const email = `bcl@${domain}`;
      const first = await signIn({ sub, email });
      const second = await signIn({ sub, email });

      // Act
      const reply = await backchannel(await idp.logoutToken({ sub }));

      // Assess
      expect(reply.status, reply.text).toBe(200);
      expect(reply.body).toEqual({ success: true });
      for (const signedIn of [first, second]) {
        expectError(await call('GET', '/me', { token: signedIn.body.token }), 401, 'invalid_token');
        const protectedRoute = await fetch(`${apiUrl()}/v1/example/protected`, { headers: { authorization: `Bearer ${signedIn.body.token}` } });
        expect(protectedRoute.status).toBe(403);
      }
    });

    it('keeps working for a domain when another domain sharing its (issuer, client id) is removed', async () => {
      // Prepare: X and Y share the IdP's one client; a user of X signs in; Y is connected after X and removed
      const x = await connect();
      const y = await connect();
      const sub = subject();
      const signedIn = await signIn({ sub, email: `shared@${x}` });
      expect(signedIn.status, signedIn.text).toBe(200);
      expect(await sso().removeConnection(y)).toBe(true);

      // Act
      const reply = await backchannel(await idp.logoutToken({ sub }));

      // Assess
      expect(reply.status, reply.text).toBe(200);
      expectError(await call('GET', '/me', { token: signedIn.body.token }), 401, 'invalid_token');
      expect((await sso().clientRegistration(idp.issuer, idp.clientId))?.domains).toContain(x);
      expect((await sso().clientRegistration(idp.issuer, idp.clientId))?.domains).not.toContain(y);
    });

    it('ends a session opened after our TOTP step by a logout token that names only its sid', async () => {
      // Prepare
      const domain = await connect();
      const email = `otp-sid@${domain}`;
      const sub = subject();
      await signIn({ sub, email });
      const secret = await enableTotp((await e2eApp().users.findByEmail(email))!.id);
      const challenge = await signIn({ sub, email, amr: ['pwd'] });
      const verified = await call('POST', '/mfa/verify', { body: { mfa_token: challenge.body.mfa_token, code: await new Authenticator(secret).next() } });
      expect(verified.status, verified.text).toBe(200);
      const session = await e2eApp().sessions.get(decodeJwt(verified.body.token).sid as string);
      expect(session!.idp!.sid).toBeDefined();

      // Act
      const reply = await backchannel(await idp.logoutToken({ sid: session!.idp!.sid }, { omit: ['sub'] }));

      // Assess
      expect(reply.status, reply.text).toBe(200);
      expectError(await call('GET', '/me', { token: verified.body.token }), 401, 'invalid_token');
    });

    it('leaves a pending mfa_token and an unspent one-time code of that user worthless', async () => {
      // Prepare: a TOTP user halfway through a federated sign-in (mfa_token), and a one-time code not yet exchanged
      const domain = await connect();
      const email = `pending@${domain}`;
      const sub = subject();
      await signIn({ sub, email });
      const secret = await enableTotp((await e2eApp().users.findByEmail(email))!.id);
      const challenge = await signIn({ sub, email, amr: ['pwd'] });
      expect(challenge.body.error.code).toBe('mfa_required');
      idp.account({ sub, email, amr: ['mfa'] });
      const { verifier, challenge: pkceChallenge } = pkce();
      const { back } = await browse({ email, challenge: pkceChallenge });
      expect(back.searchParams.get('code')).not.toBeNull();

      // Act
      const logout = await backchannel(await idp.logoutToken({ sub }));
      const verified = await call('POST', '/mfa/verify', { body: { mfa_token: challenge.body.mfa_token, code: await new Authenticator(secret).next() } });
      const exchanged = await call('POST', '/sso/token', { body: { code: back.searchParams.get('code'), code_verifier: verifier } });
      const afterwards = await signIn({ sub, email, amr: ['mfa'] });

      // Assess
      expect(logout.status, logout.text).toBe(200);
      expectError(verified, 401, 'invalid_mfa_token');
      expectError(exchanged, 400, 'invalid_grant');
      expect(afterwards.status, afterwards.text).toBe(200);
    });

    it('answers 503 with Retry-After when the IdP\'s keys cannot be fetched, so that the IdP retries', async () => {
      // Prepare: a connection to an IdP that is then gone
      const gone = await startForgingIdp();
      await connect({ to: gone });
      await gone.close();
      const token = await idp.logoutToken({ iss: gone.issuer, aud: gone.clientId, sub: subject() });

      // Act
      const reply = await backchannel(token);

      // Assess
      expectError(reply, 503, 'service_unavailable');
      expect(reply.headers.get('retry-after')).toBe('5');
    });

    it('ends only the session of the sid when the token names one', async () => {
      // Prepare
      const domain = await connect();
      const sub = subject();
      const email = `sid@${domain}`;
      const kept = await signIn({ sub, email });
      const ended = await signIn({ sub, email });
      const endedSession = await e2eApp().sessions.get(decodeJwt(ended.body.token).sid as string);
      const keptSession = await e2eApp().sessions.get(decodeJwt(kept.body.token).sid as string);
      expect(endedSession!.idp!.sid).toBeDefined();
      expect(keptSession!.idp!.sid).not.toBe(endedSession!.idp!.sid);

      // Act: a token with the sid alone, then one with the sub and the other sid
      const bySid = await backchannel(await idp.logoutToken({ sid: endedSession!.idp!.sid }, { omit: ['sub'] }));
      const meAfterSid = await call('GET', '/me', { token: kept.body.token });
      const bySubAndSid = await backchannel(await idp.logoutToken({ sub, sid: keptSession!.idp!.sid }));

      // Assess
      expect(bySid.status, bySid.text).toBe(200);
      expectError(await call('GET', '/me', { token: ended.body.token }), 401, 'invalid_token');
      expect(meAfterSid.status).toBe(200);
      expect(bySubAndSid.status).toBe(200);
      expectError(await call('GET', '/me', { token: kept.body.token }), 401, 'invalid_token');
    });

    it('refuses invalid logout tokens with 400 and leaves sessions standing', async () => {
      // Prepare
      const domain = await connect();
      const sub = subject();
      const signedIn = await signIn({ sub, email: `bad@${domain}` });
      const replayed = await idp.logoutToken({ sub: 'someone-else' });
      expect((await backchannel(replayed)).status).toBe(200);

      // Act
      const replies = await Promise.all([
        backchannel(await idp.logoutToken({ sub }, { key: 'other' })),
        backchannel(await idp.logoutToken({ sub, nonce: 'n' })),
        backchannel(await idp.logoutToken({ sub, aud: 'another-client' })),
        backchannel(await idp.logoutToken({ sub, iss: 'https://elsewhere.example' })),
        backchannel(await idp.logoutToken({ sub, events: { other: {} } })),
        backchannel(await idp.logoutToken({ sub, iat: Math.floor(Date.now() / 1000) - 3600 })),
        backchannel(await idp.logoutToken({ sub }, { omit: ['jti'] })),
        backchannel(await idp.logoutToken({ sub }, { typ: 'JWT' })),
        backchannel(await idp.logoutToken({ sub, exp: Math.floor(Date.now() / 1000) - 120 })),
        backchannel(await idp.logoutToken({}, { omit: ['sub'] })),
        backchannel('not-a-jwt'),
        backchannel(undefined),
        backchannel(replayed),
      ]);
      const json = await backchannel(await idp.logoutToken({ sub }), 'application/json');

      // Assess
      for (const reply of replies) expectError(reply, 400, 'invalid_request');
      expectError(json, 415, 'unsupported_media_type');
      expect((await call('GET', '/me', { token: signedIn.body.token })).status).toBe(200);
    });
  });

  describe('the users CLI', () => {
    it('adds a connection after discovery, prints the URIs to register, never the secret; lists and removes it', async () => {
      // Prepare
      const domain = `cli-${randomBytes(3).toString('hex')}.sso.test`;
      const users = (args: string[], stdin = '') => runScript('scripts/users.ts', args, { stdin, env: apiEnv() });

      // Act
      const added = await users(['sso', 'add', '--domain', domain, '--issuer', idp.issuer, '--client-id', idp.clientId, '--client-secret-stdin', '--enforce', '--admin-group', 'admins'], `${idp.clientSecret}\n`);
      const listed = await users(['sso', 'list']);
      const again = await users(['sso', 'add', '--domain', domain, '--issuer', idp.issuer, '--client-id', 'x', '--client-secret-stdin'], 'secret\n');
      const insecure = await users(['sso', 'add', '--domain', `x${domain}`, '--issuer', 'http://idp.example.org', '--client-id', 'x', '--client-secret-stdin'], 'secret\n');
      const onCommandLine = await users(['sso', 'add', '--domain', domain, '--client-secret', 'oops']);
      const federated = await signIn({ sub: subject(), email: `someone@${domain}`, groups: ['admins'] });
      const removed = await users(['sso', 'remove', '--domain', domain]);

      // Assess
      expect(added, added.stderr).toMatchObject({ code: 0 });
      expect(added.stdout).toContain(`${apiEnv().PUBLIC_BASE_URL}/v1/auth/sso/callback`);
      expect(added.stdout).toContain(`${apiEnv().PUBLIC_BASE_URL}/v1/auth/sso/backchannel-logout`);
      expect(auditLine(added.stderr, 'sso_connection_added')).toMatchObject({ domain, issuer: idp.issuer, enforce: true });
      for (const output of [added, listed]) expect(output.stdout + output.stderr).not.toContain(idp.clientSecret);
      expect(listed.stdout).toContain(domain);
      expect(again.code).toBe(1);
      expect(insecure.code).toBe(2);
      expect(insecure.stderr).toMatch(/--issuer must be https/);
      expect(onCommandLine.code).toBe(2);
      expect(federated.status, federated.text).toBe(200);
      expect(federated.body.user.role).toBe('admin');
      expect(removed.code).toBe(0);
      expect(await sso().connection(domain)).toBeUndefined();
    });
  });
});

/** TOTP turned on for a user, as activation leaves it: the secret, for codes. */
async function enableTotp(userId: string): Promise<string> {
  const { seal } = await import('../../lib/mfa/secret-box.js');
  const { MfaRepository } = await import('../../lib/store/mfa.js');
  const app = e2eApp();
  const keys = await app.mfaKeyRing!.current();
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  const repository = new MfaRepository(app.db, app.config.usersTable);
  await repository.savePending(userId, seal(keys, secret, userId));
  const user = (await app.users.get(userId))!;
  await repository.activate(userId, { sealedSecret: user.totp!.sealedSecret, step: 0, recovery: { kid: keys.currentKid, macs: ['unused-mac'] }, epoch: user.sessionEpoch, at: new Date() });
  return secret;
}
