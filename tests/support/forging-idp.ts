import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

/**
 * A tiny hand-made IdP on 127.0.0.1 whose token endpoint signs the ID token as the test says:
 * with the key its JWKS publishes (`own`), with a key it never published (`other`), or with the
 * client secret (`hs256`, an IdP that also lists HS256). Its authorization endpoint answers at
 * once with a code, so a browser's trip needs no interaction. oidc-provider cannot be made to sign
 * with a foreign key: this is what an attacker on the token endpoint's path could send.
 */
export interface ForgingIdp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Who signs in next, and how their ID token is signed. */
  next(claims: Record<string, unknown>, signing: 'own' | 'other' | 'hs256'): void;
  close(): Promise<void>;
}

export async function startForgingIdp(): Promise<ForgingIdp> {
  const own = await generateKeyPair('RS256');
  const other = await generateKeyPair('RS256');
  const clientId = `forging-${randomUUID()}`;
  const clientSecret = randomBytes(32).toString('base64url');
  const nonces = new Map<string, string>();
  let claims: Record<string, unknown> = {};
  let signing: 'own' | 'other' | 'hs256' = 'own';
  const server: Server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  server.on('request', async (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const json = (body: unknown) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/.well-known/openid-configuration') {
      return json({
        issuer,
        authorization_endpoint: `${issuer}/auth`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256', 'HS256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
      });
    }
    if (url.pathname === '/jwks') return json({ keys: [{ ...(await exportJWK(own.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] });
    if (url.pathname === '/auth') {
      const code = randomBytes(16).toString('base64url');
      nonces.set(code, url.searchParams.get('nonce') ?? '');
      const back = new URL(url.searchParams.get('redirect_uri')!);
      back.search = new URLSearchParams({ code, state: url.searchParams.get('state') ?? '', iss: issuer }).toString();
      res.statusCode = 302;
      res.setHeader('location', back.href);
      return res.end();
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const code = new URLSearchParams(body).get('code') ?? '';
      const jwt = new SignJWT({ ...claims, nonce: nonces.get(code) }).setIssuer(issuer).setAudience(clientId).setIssuedAt().setExpirationTime('5m');
      const idToken =
        signing === 'hs256'
          ? await jwt.setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(clientSecret))
          : await jwt.setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(signing === 'own' ? own.privateKey : other.privateKey);
      return json({ access_token: randomBytes(16).toString('base64url'), token_type: 'Bearer', expires_in: 300, id_token: idToken });
    }
    res.statusCode = 404;
    json({});
  });
  return {
    issuer,
    clientId,
    clientSecret,
    next(nextClaims, nextSigning) {
      claims = nextClaims;
      signing = nextSigning;
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
