/**
 * The local demo's corporate identity provider (`npm start`, non-production stages; `SSO_DEMO=0`
 * turns it off): panva's oidc-provider with its development interactions (a login form that takes
 * any name) on its own port, connected to the domain `sso.example` as `sso add` would connect it,
 * and a tiny page to try the whole flow in a browser: /try makes a PKCE pair and goes to the API's
 * authorize; the API sends the browser back to /done with a one-time code, which the page redeems at
 * POST /v1/auth/sso/token and shows. A development tool only: never bundled into a Lambda.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import Provider from 'oidc-provider';
import { sealClientSecret } from '../lib/auth/identity-providers.js';
import { BACKCHANNEL_LOGOUT_PATH, CALLBACK_PATH } from '../lib/auth/sso-service.js';
import { parseSigningKeys, type SigningKeys } from '../lib/platform/config.js';
import { SsoRepository } from '../lib/store/sso.js';

export const DEMO_DOMAIN = 'sso.example';
const CLIENT_ID = 'vpn-auth-demo';

export interface DemoIdp {
  issuer: string;
  /** Open it in a browser: the whole SSO flow, ending on a page that shows the sign-in's answer. */
  tryUrl: string;
  /** Where the API sends the browser back: the stack must list it in SSO_REDIRECT_URIS. */
  redirectUri: string;
  close(): Promise<void>;
}

export interface DemoIdpOptions {
  /** 0 for any free port. */
  port: number;
  /** The API's public origin (PUBLIC_BASE_URL): the IdP redirects browsers to its callback. */
  apiBaseUrl: string;
  /** The store the connection is written to, and the MFA ring that seals its secret. */
  db: DynamoDBDocumentClient;
  tables: { usersTable: string; attemptsTable: string };
  mfaRing: SigningKeys;
  /** The path of the page the API sends the browser back to. */
  donePath?: string;
}

const html = (title: string, body: string) =>
  `<!doctype html><meta charset="utf-8"><title>${title}</title><body style="font-family:system-ui;max-width:50rem;margin:2rem auto">${body}</body>`;
const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export async function startDemoIdp({ port, apiBaseUrl, db, tables, mfaRing, donePath = '/done' }: DemoIdpOptions): Promise<DemoIdp> {
  const server: Server = createServer();
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => done());
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clientSecret = randomBytes(32).toString('base64url');
  const provider = new Provider(origin, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: clientSecret,
        redirect_uris: [`${apiBaseUrl}${CALLBACK_PATH}`],
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'client_secret_basic',
        backchannel_logout_uri: `${apiBaseUrl}${BACKCHANNEL_LOGOUT_PATH}`,
        backchannel_logout_session_required: true,
      },
    ],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: { acr: null, amr: null, auth_time: null, iss: null, sid: null, openid: ['sub', 'amr'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true }, backchannelLogout: { enabled: true } },
    // Any name signs in: "alice" is alice@sso.example; a name starting with "admin" is in the group vpn-admins.
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({
        sub,
        email: sub.includes('@') ? sub.toLowerCase() : `${sub.toLowerCase()}@${DEMO_DOMAIN}`,
        email_verified: true,
        name: sub,
        groups: sub.toLowerCase().startsWith('admin') ? ['vpn-admins'] : [],
      }),
    }),
  } as never);
  const providerCallback = provider.callback();
  const verifiers = new Map<string, string>();
  const redirectUri = `${origin}${donePath}`;
  server.on('request', async (req, res) => {
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname === '/try') {
      const verifier = randomBytes(32).toString('base64url');
      const state = randomBytes(16).toString('base64url');
      verifiers.set(state, verifier);
      const query = new URLSearchParams({ domain: DEMO_DOMAIN, redirect_uri: redirectUri, state, code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256' });
      res.writeHead(302, { location: `${apiBaseUrl}/v1/auth/sso/authorize?${query}` }).end();
      return;
    }
    if (url.pathname === donePath) {
      const state = url.searchParams.get('state') ?? '';
      const verifier = verifiers.get(state);
      verifiers.delete(state);
      const error = url.searchParams.get('error');
      let answer: string;
      if (error) answer = `${error}: ${url.searchParams.get('error_description') ?? ''}`;
      else if (!verifier) answer = 'Unknown state: start again at /try.';
      else {
        const reply = await fetch(`${apiBaseUrl}/v1/auth/sso/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: url.searchParams.get('code'), code_verifier: verifier }) });
        answer = `POST /v1/auth/sso/token: ${reply.status}\n${JSON.stringify(await reply.json(), null, 2)}`;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html('Signed in?', `<h1>Sign in with your company</h1><pre style="white-space:pre-wrap">${escape(answer)}</pre><p><a href="/try">Again</a></p>`));
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html('Demo IdP', `<h1>Demo corporate IdP for ${DEMO_DOMAIN}</h1><p><a href="/try">Sign in with your company</a> (any name: "alice", or "admin-bob" for the vpn-admins group)</p>`));
      return;
    }
    providerCallback(req, res);
  });
  // The connection, as `npm run users -- sso add --domain sso.example --admin-group vpn-admins` writes it, replaced at each start (a new secret).
  const sso = new SsoRepository(db, tables.usersTable, tables.attemptsTable);
  await sso.removeConnection(DEMO_DOMAIN);
  await sso.addConnection({
    domain: DEMO_DOMAIN,
    issuer: origin,
    clientId: CLIENT_ID,
    sealedClientSecret: sealClientSecret(mfaRing, clientSecret, DEMO_DOMAIN),
    enforce: false,
    adminGroup: 'vpn-admins',
    groupsClaim: 'groups',
    createdAt: new Date().toISOString(),
  });
  return {
    issuer: origin,
    tryUrl: `${origin}/try`,
    redirectUri,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/**
 * For `npm start`: the demo IdP unless the stage is a production one or SSO_DEMO=0, its page's URI
 * added to the stack's SSO_REDIRECT_URIS (`env`, before serverless-offline starts), and the lines
 * for the banner. A port in use (SSO_DEMO_PORT, default 3001) skips the demo with a warning.
 */
export async function maybeStartDemoIdp(
  { production, env, apiBaseUrl, store, mfaKey }: { production: boolean; env: NodeJS.ProcessEnv; apiBaseUrl: string | undefined; store: import('../lib/platform/config.js').StoreConfig; mfaKey: string },
): Promise<{ banner: string; close(): Promise<void> } | undefined> {
  if (production || env.SSO_DEMO?.trim() === '0' || !apiBaseUrl) return undefined;
  const { createDocumentClient } = await import('../lib/platform/dynamo.js');
  const db = createDocumentClient(store);
  try {
    const idp = await startDemoIdp({ port: Number(env.SSO_DEMO_PORT?.trim() || 3001), apiBaseUrl, db, tables: store, mfaRing: parseSigningKeys(mfaKey, 'MFA_KEY') });
    env.SSO_REDIRECT_URIS = [env.SSO_REDIRECT_URIS?.trim(), idp.redirectUri].filter(Boolean).join(',');
    return {
      banner: `  SSO demo:  ${idp.tryUrl}  (a demo corporate IdP for @${DEMO_DOMAIN}: any name signs in; SSO_DEMO=0 turns it off)\n`,
      close: idp.close,
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    console.warn(`SSO demo skipped: port ${env.SSO_DEMO_PORT?.trim() || 3001} is taken (set SSO_DEMO_PORT, or SSO_DEMO=0)`);
    return undefined;
  } finally {
    db.destroy();
  }
}
