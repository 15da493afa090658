import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';

/**
 * A real OpenID Connect provider (panva's oidc-provider, as its own tests run it) in-process on
 * 127.0.0.1: its discovery, JWKS, authorization and token endpoints are the real ones. It has one
 * client, registered for the API's callback and back-channel logout URIs. Sign-ins are decided by
 * the test: `signIn(email)` sets who signs in next (claims and `amr`), and the interaction is
 * finished by a handler of ours (login and consent at once), reached by plain HTTP with cookies.
 */
export interface IdpAccount {
  sub: string;
  email: string;
  email_verified?: boolean;
  name?: string;
  groups?: string[];
  /** How the IdP says it signed the user in (RFC 8176), put in the ID token. */
  amr?: string[];
}

export interface TestIdp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Who signs in next (by login_hint when the flow gave one, else the last set). */
  account(account: IdpAccount): void;
  /** Refuse the next sign-in at the IdP (it answers error=access_denied). */
  refuseNext(): void;
  /** A logout token signed with the IdP's own key (or `key: 'other'`, a key it does not publish). */
  logoutToken(claims: Record<string, unknown>, options?: { key?: 'own' | 'other'; typ?: string; omit?: string[] }): Promise<string>;
  close(): Promise<void>;
}

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

export async function startTestIdp({ callbackUrl, backchannelLogoutUrl }: { callbackUrl: string; backchannelLogoutUrl: string }): Promise<TestIdp> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };
  const other = await generateKeyPair('RS256', { extractable: true });
  void publicKey;
  const clientId = `vpn-auth-${randomUUID()}`;
  const clientSecret = randomBytes(32).toString('base64url');
  const accounts = new Map<string, IdpAccount>();
  let next: IdpAccount | undefined;
  let refuse = false;
  const server: Server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [callbackUrl],
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'client_secret_basic',
        backchannel_logout_uri: backchannelLogoutUrl,
        backchannel_logout_session_required: true,
      },
    ],
    jwks: { keys: [privateJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: { acr: null, amr: null, auth_time: null, iss: null, sid: null, openid: ['sub', 'amr'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
    // Entra ID, Okta and Google put email and name in the ID token itself: so does this one.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false }, backchannelLogout: { enabled: true } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    findAccount: async (_ctx: unknown, sub: string) => {
      const account = [...accounts.values()].find((candidate) => candidate.sub === sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        claims: async () => ({ sub, email: account.email, email_verified: account.email_verified ?? true, name: account.name ?? account.email, groups: account.groups ?? [] }),
      };
    },
  } as never);
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const match = /^\/interaction\/([^/?]+)/.exec(req.url ?? '');
    if (!match) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (refuse) {
        refuse = false;
        return await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The user was refused.' }, { mergeWithLastSubmission: false });
      }
      const hint = details.params.login_hint as string | undefined;
      const account = (hint && accounts.get(hint.toLowerCase())) || next;
      if (!account) throw new Error('no account set for the next sign-in');
      const grant = new provider.Grant({ accountId: account.sub, clientId: details.params.client_id as string });
      grant.addOIDCScope('openid email profile');
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: account.sub, ...(account.amr ? { amr: account.amr } : {}) }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
    } catch (error) {
      res.statusCode = 500;
      res.end(String(error));
    }
  });
  return {
    issuer,
    clientId,
    clientSecret,
    account(account) {
      accounts.set(account.email.toLowerCase(), account);
      next = account;
    },
    refuseNext() {
      refuse = true;
    },
    async logoutToken(claims, { key = 'own', typ = 'logout+jwt', omit = [] } = {}) {
      const payload: Record<string, unknown> = { iss: issuer, aud: clientId, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), events: { [BACKCHANNEL_EVENT]: {} }, ...claims };
      for (const name of omit) delete payload[name];
      const jwt = new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: 'idp-1', typ });
      return jwt.sign(key === 'own' ? privateKey : other.privateKey);
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
