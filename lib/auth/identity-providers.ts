import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import * as oidc from 'openid-client';
import type { KeyRing } from './signing-keys.js';
import { open, seal } from '../mfa/secret-box.js';
import type { SigningKeys } from '../platform/config.js';
import type { Clock } from './tokens.js';

/**
 * The company identity providers, as openid-client sees them: each issuer's discovery document
 * fetched once and cached (an hour), a Configuration per connection built on it, and each issuer's
 * JWKS (jose's remote set: cached, refreshed on an unknown kid) for logout tokens.
 */

/** How long a Lambda keeps an issuer's discovery document. */
const DISCOVERY_CACHE_MS = 3_600_000;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** Why an issuer may not be used, or undefined: https always; http only on loopback, and only outside production. */
export function issuerProblem(issuer: string, { allowLoopback }: { allowLoopback: boolean }): string | undefined {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return 'is not a URL';
  }
  if (url.search || url.hash || url.username || url.password) return 'must have no query, fragment or credentials';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return allowLoopback ? undefined : 'must be https in production (http is for loopback test IdPs only)';
  return 'must be https (http only for a loopback issuer, outside production)';
}

const isLoopbackHttp = (issuer: string) => new URL(issuer).protocol === 'http:';

/** The client secret sealed at rest: AES-256-GCM under an HKDF key of the MFA ring ("vpn-auth mfa sso-client-secret"), bound to the domain. */
export function sealClientSecret(keys: SigningKeys, secret: string, domain: string): string {
  return seal(keys, secret, `sso:${domain}`, 'sso-client-secret');
}

export function openClientSecret(keys: SigningKeys, sealed: string, domain: string): string | undefined {
  return open(keys, sealed, `sso:${domain}`, 'sso-client-secret');
}

/** The asymmetric algorithms an IdP may sign an ID token or a logout token with (never HS*, never none). */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

/**
 * The one algorithm we accept on this IdP's ID tokens: RS256 (the OpenID Connect default) when it
 * offers it or says nothing, else the first asymmetric one it offers. An IdP that offers only
 * HS* or none is refused: a client secret must never be what makes an ID token genuine.
 */
export function idTokenAlgorithm(server: Pick<oidc.ServerMetadata, 'id_token_signing_alg_values_supported'>): string {
  const offered = server.id_token_signing_alg_values_supported;
  if (!offered || offered.includes('RS256')) return 'RS256';
  const asymmetric = offered.find((alg) => (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg));
  if (!asymmetric) throw new Error('The issuer offers no asymmetric ID token signing algorithm');
  return asymmetric;
}

export interface ConnectionClient {
  issuer: string;
  clientId: string;
}

export class IdentityProviders {
  private readonly servers = new Map<string, { at: number; metadata: Promise<oidc.ServerMetadata> }>();
  private readonly keySets = new Map<string, JWTVerifyGetKey>();
  /** Each issuer's JWKS as openid-client last fetched it for an ID token: a new Configuration starts from it, not from a fetch. */
  private readonly idTokenKeys = new Map<string, oidc.ExportedJWKSCache>();

  constructor(private readonly deps: { clock: Clock; allowLoopback: boolean }) {}

  /**
   * The issuer's discovery document (`/.well-known/openid-configuration`), checked by
   * openid-client (its `issuer` must be the one asked for). Cached for an hour; a failure is not.
   */
  async discover(issuer: string): Promise<oidc.ServerMetadata> {
    // Checked again here, not only by `sso add`: an http issuer is never fetched in production.
    const problem = issuerProblem(issuer, { allowLoopback: this.deps.allowLoopback });
    if (problem) throw new Error(`The issuer ${issuer} ${problem}`);
    const now = this.deps.clock().getTime();
    const cached = this.servers.get(issuer);
    if (cached && now - cached.at < DISCOVERY_CACHE_MS) return cached.metadata;
    const metadata = oidc
      .discovery(new URL(issuer), 'discovery', undefined, undefined, isLoopbackHttp(issuer) ? { execute: [oidc.allowInsecureRequests], timeout: 5 } : { timeout: 5 })
      .then((configuration) => ({ ...configuration.serverMetadata() }) as oidc.ServerMetadata);
    this.servers.set(issuer, { at: now, metadata });
    metadata.catch(() => this.servers.delete(issuer));
    return metadata;
  }

  /**
   * A connection's client, for building its authorization URL (no secret) or redeeming a code (with
   * it: client_secret_basic). openid-client checks an ID token's signature against the issuer's
   * JWKS only once `enableNonRepudiationChecks` is called (over TLS alone it skips it, as the spec
   * allows a confidential client): we call it on every configuration, and pin one asymmetric
   * algorithm (`id_token_signed_response_alg`), so a token signed by any other key, or with the
   * client secret (HS*), or unsigned, is refused.
   */
  async configuration(connection: ConnectionClient, clientSecret?: string): Promise<oidc.Configuration> {
    const server = await this.discover(connection.issuer);
    const metadata: Partial<oidc.ClientMetadata> = { id_token_signed_response_alg: idTokenAlgorithm(server) };
    const configuration = new oidc.Configuration(server, connection.clientId, metadata, clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(clientSecret));
    configuration.timeout = 5;
    if (isLoopbackHttp(connection.issuer)) oidc.allowInsecureRequests(configuration);
    oidc.enableNonRepudiationChecks(configuration);
    const keys = this.idTokenKeys.get(connection.issuer);
    if (keys) oidc.setJwksCache(configuration, keys);
    return configuration;
  }

  /** Keep the JWKS a configuration fetched (openid-client refetches on an unknown kid or when it is stale). */
  rememberKeys(issuer: string, configuration: oidc.Configuration): void {
    const keys = oidc.getJwksCache(configuration);
    if (keys) this.idTokenKeys.set(issuer, keys);
  }

  /** The issuer's signing keys, for logout tokens: its JWKS, fetched by jose and cached. */
  async keys(issuer: string): Promise<JWTVerifyGetKey> {
    const known = this.keySets.get(issuer);
    if (known) return known;
    const { jwks_uri: jwksUri } = await this.discover(issuer);
    if (!jwksUri) throw new Error(`${issuer} publishes no jwks_uri`);
    const set = createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: 5000 });
    this.keySets.set(issuer, set);
    return set;
  }
}

/** The client secret of a connection, opened with the MFA ring (undefined: the ring cannot open it). */
export async function clientSecretOf(ring: KeyRing, connection: { sealedClientSecret: string; domain: string }): Promise<string | undefined> {
  return openClientSecret(await ring.current(), connection.sealedClientSecret, connection.domain);
}
