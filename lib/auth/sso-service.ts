import { randomBytes } from 'node:crypto';
import { decodeJwt, errors as joseErrors, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import type { App } from '../app.js';
import { endSession, type Caller } from './auth-service.js';
import { AssertionRefused, FederatedCredentials, type IdTokenClaims } from './credentials.js';
import { ASYMMETRIC_ALGORITHMS, IdentityProviders, clientSecretOf } from './identity-providers.js';
import { loginService, type LoginService, type SignIn } from './login-service.js';
import type { KeyRing } from './signing-keys.js';
import type { Clock } from './tokens.js';
import { ConfigError, type Config } from '../platform/config.js';
import { ApiError } from '../platform/errors.js';
import { describeError, log } from '../platform/log.js';
import { METRIC, countMetric } from '../platform/metrics.js';
import { oncePer } from '../platform/memo.js';
import type { LoginAttempts } from '../store/login-attempts.js';
import { epochSeconds, type SessionsRepository } from '../store/sessions.js';
import { SsoRepository, newSsoCode, type ClientRegistration, type Connection } from '../store/sso.js';

/** What GET /v1/auth/sso/authorize takes, validated (lib/http/validation.ts, ssoAuthorizeRequestOf). */
export interface AuthorizeRequest {
  email: string | undefined;
  domain: string;
  redirectUri: string;
  state: string;
  codeChallenge: string;
}

/** What the IdP sends back to GET /v1/auth/sso/callback. */
export interface CallbackRequest {
  state: string;
  /** The raw query, as openid-client must see it (code, state, iss, or error). */
  query: string;
  error: string | undefined;
}

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** How old a logout token may be (its iat). */
const LOGOUT_TOKEN_MAX_AGE_SECONDS = 600;

export const CALLBACK_PATH = '/v1/auth/sso/callback';
export const BACKCHANNEL_LOGOUT_PATH = '/v1/auth/sso/backchannel-logout';

/** Whether `candidate` is one of the allowed redirect URIs: exactly, or on any port for a loopback IP entry without one (RFC 8252 §7.3). */
export function isAllowedRedirectUri(candidate: string, allowed: readonly string[]): boolean {
  let url: URL;
  try {
    url = new URL(candidate);
  } catch {
    return false;
  }
  return allowed.some((entry) => {
    if (entry === candidate) return true;
    const rule = new URL(entry);
    const loopback = rule.protocol === 'http:' && (rule.hostname === '127.0.0.1' || rule.hostname === '[::1]') && rule.port === '';
    return loopback && url.protocol === 'http:' && url.hostname === rule.hostname && url.pathname === rule.pathname && url.search === rule.search && url.hash === '' && url.username === '' && url.password === '';
  });
}

export interface SsoServiceDeps {
  config: Pick<Config, 'sso' | 'refreshTokenTtlSeconds'>;
  sso: SsoRepository;
  sessions: SessionsRepository;
  attempts: LoginAttempts;
  keyRing: KeyRing;
  /** Opens the connections' client secrets (the MFA ring): needed by the callback alone. */
  mfaKeyRing: KeyRing | undefined;
  login: LoginService;
  federated: FederatedCredentials;
  providers: IdentityProviders;
  clock: Clock;
}

/**
 * Single sign-on with a company's OpenID Connect provider: the authorization code flow with PKCE on
 * both legs (the client's to us, ours to the IdP). openid-client does every check of the IdP's
 * answer; lib/auth/credentials.ts (FederatedCredentials) decides what the assertion is worth.
 */
export class SsoService {
  constructor(private readonly deps: SsoServiceDeps) {
    // Validated at cold start: without its own public origin an SSO function cannot tell the IdP where to come back.
    if (!deps.config.sso.publicBaseUrl) throw new ConfigError('PUBLIC_BASE_URL', 'is required for single sign-on in production (param publicBaseUrl, like https://auth.example.com)');
  }

  private get callbackUrl(): string {
    return `${this.deps.config.sso.publicBaseUrl}${CALLBACK_PATH}`;
  }

  /**
   * The redirect to the IdP: our own state, nonce and S256 challenge, the client's kept for the
   * callback (10 minutes, single use). 2 DynamoDB calls: the connection, then the flow.
   */
  async authorize(request: AuthorizeRequest, caller: Caller): Promise<string> {
    if (!isAllowedRedirectUri(request.redirectUri, this.deps.config.sso.redirectUris)) {
      log.info('sso_authorize_refused', { reason: 'redirect_uri', domain: request.domain, ...caller });
      throw new ApiError('invalid_redirect_uri');
    }
    const connection = await this.deps.sso.connection(request.domain);
    if (!connection) {
      log.info('sso_authorize_refused', { reason: 'not_configured', domain: request.domain, ...caller });
      throw new ApiError('sso_not_configured');
    }
    const configuration = await this.idp(connection);
    const state = randomBytes(32).toString('base64url');
    const nonce = oidc.randomNonce();
    const verifier = oidc.randomPKCECodeVerifier();
    const now = this.deps.clock();
    await this.deps.sso.createFlow(state, { domain: connection.domain, redirectUri: request.redirectUri, clientState: request.state, codeChallenge: request.codeChallenge, nonce, verifier }, now);
    const url = oidc.buildAuthorizationUrl(configuration, {
      response_type: 'code',
      redirect_uri: this.callbackUrl,
      scope: 'openid email profile',
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...(request.email ? { login_hint: request.email } : {}),
    });
    log.info('sso_authorize', { domain: connection.domain, ...caller });
    return url.href;
  }

  /**
   * The IdP's answer: the flow taken (unknown, spent or expired: 400 invalid_request, no redirect),
   * then the code redeemed and the ID token checked (openid-client, with our verifier, state and
   * nonce), the assertion judged (lib/auth/credentials.ts), and a one-time code for the client.
   * Returns where to send the browser: the client's redirect URI, with the code or an error.
   */
  async callback(request: CallbackRequest, caller: Caller): Promise<string> {
    const now = this.deps.clock();
    const flow = await this.deps.sso.takeFlow(request.state, now);
    if (!flow) {
      log.info('sso_callback_refused', { reason: 'unknown_state', ...caller });
      throw new ApiError('invalid_request', 'The sign-in is unknown, already finished or expired. Start again.');
    }
    const back = (params: Record<string, string>) => {
      const url = new URL(flow.redirectUri);
      for (const [name, value] of Object.entries({ ...params, state: flow.clientState })) url.searchParams.set(name, value);
      return url.href;
    };
    const denied = (description: string) => back({ error: 'access_denied', error_description: description });
    const connection = await this.deps.sso.connection(flow.domain);
    if (!connection) {
      log.info('sso_callback_refused', { reason: 'connection_removed', domain: flow.domain, ...caller });
      return denied('Single sign-on is no longer configured for this domain.');
    }
    if (request.error !== undefined) {
      log.info('sso_callback_refused', { reason: 'idp_error', idpError: request.error.slice(0, 64), domain: flow.domain, ...caller });
      countMetric(METRIC.signInFailed, { name: 'reason', value: 'sso_idp_error' });
      return denied('The identity provider did not sign you in.');
    }
    try {
      const secret = this.deps.mfaKeyRing ? await clientSecretOf(this.deps.mfaKeyRing, connection) : undefined;
      if (secret === undefined) throw new Error('the client secret cannot be opened with the MFA key ring');
      const configuration = await this.idp(connection, secret);
      const exchange = async (): Promise<IdTokenClaims> => {
        const tokens = await oidc
          .authorizationCodeGrant(configuration, new URL(`${this.callbackUrl}?${request.query}`), {
            pkceCodeVerifier: flow.verifier,
            expectedState: request.state,
            expectedNonce: flow.nonce,
            idTokenExpected: true,
          })
          .finally(() => this.deps.providers.rememberKeys(connection.issuer, configuration));
        return tokens.claims() as IdTokenClaims;
      };
      const verified = await this.deps.federated.assertion(connection, exchange, caller);
      const code = newSsoCode(verified.user.id);
      await this.deps.sso.createCode(code, { codeChallenge: flow.codeChallenge, issuer: connection.issuer, idpSid: verified.idpSid, idpMfa: verified.idpMfa }, now);
      return back({ code: code.token });
    } catch (error) {
      if (error instanceof AssertionRefused) return denied(error.description);
      log.warn('sso_callback_failed', { domain: flow.domain, ...describeError(error), ...caller });
      return denied('The sign-in could not be completed.');
    }
  }

  /**
   * The one-time code and its verifier (lib/auth/credentials.ts), then exactly a sign-in's answer:
   * a session signed in with `fed` (and `mfa` when the IdP did one), or our second factor's
   * challenge when it is owed and the IdP did not do MFA.
   */
  async token(code: string, verifier: string, caller: Caller): Promise<SignIn> {
    const { grant, user } = await this.deps.federated.ssoCode(code, verifier, caller);
    const now = this.deps.clock();
    const idp = { issuer: grant.issuer, ...(grant.idpSid ? { sid: grant.idpSid } : {}) };
    const due = this.deps.login.secondFactorDue(user);
    if (due && !grant.idpMfa) throw await this.deps.login.federatedChallenge(user, due, idp, now, caller);
    const ring = await this.deps.keyRing.current();
    const { signIn, sessionId } = await this.deps.login.openSession({ user, ring, now }, caller, {
      amr: grant.idpMfa ? ['fed', 'mfa'] : ['fed'],
      idp,
      alsoWrite: grant.idpSid ? [this.deps.sso.idpSessionWrite(grant.issuer, grant.idpSid, user.id, epochSeconds(now) + this.deps.config.refreshTokenTtlSeconds)] : [],
    });
    countMetric(METRIC.signInSucceeded);
    log.info('login_succeeded', { userId: user.id, sessionId, federated: true, idpMfa: grant.idpMfa, ...caller });
    return signIn;
  }

  /**
   * OpenID Connect Back-Channel Logout 1.0: the logout token verified (the IdP's JWKS, asymmetric
   * algorithms, iss, aud = the connection's client id, iat, the event, no nonce, sub or sid), its
   * jti spent once, then every session opened through that IdP for that user (by sid when given)
   * ended at once. Anything invalid: 400 invalid_request.
   */
  async backchannelLogout(logoutToken: string, caller: Caller): Promise<{ ended: number }> {
    const invalid = (reason: string, detail: Record<string, unknown> = {}) => {
      log.info('sso_logout_refused', { reason, ...detail, ...caller });
      return new ApiError('invalid_request', 'The logout token is invalid.');
    };
    let unverified: Record<string, unknown>;
    try {
      unverified = decodeJwt(logoutToken);
    } catch {
      throw invalid('malformed');
    }
    const issuer = typeof unverified.iss === 'string' ? unverified.iss : undefined;
    const audiences = (Array.isArray(unverified.aud) ? unverified.aud : [unverified.aud]).filter((aud): aud is string => typeof aud === 'string');
    if (!issuer || audiences.length === 0) throw invalid('no_issuer');
    let connection: (ClientRegistration & { domain: string }) | undefined;
    for (const audience of audiences.slice(0, 3)) {
      const registration = await this.deps.sso.clientRegistration(issuer, audience);
      if (registration) {
        connection = { ...registration, domain: registration.domains.join(',') };
        break;
      }
    }
    if (!connection) throw invalid('unknown_client');
    const unreachable = (error: unknown) => {
      log.warn('sso_logout_idp_unreachable', { domain: connection.domain, issuer: connection.issuer, ...describeError(error), ...caller });
      // The IdP retries a 5xx: its keys may answer then.
      return new ApiError('service_unavailable', 'The identity provider\'s keys cannot be fetched. Try again shortly.', { 'Retry-After': '5' });
    };
    let keys: Awaited<ReturnType<IdentityProviders['keys']>>;
    try {
      keys = await this.deps.providers.keys(connection.issuer);
    } catch (error) {
      throw unreachable(error);
    }
    let claims: Record<string, unknown>;
    try {
      const { payload, protectedHeader } = await jwtVerify(logoutToken, keys, {
        issuer: connection.issuer,
        audience: connection.clientId,
        algorithms: [...ASYMMETRIC_ALGORITHMS],
        maxTokenAge: LOGOUT_TOKEN_MAX_AGE_SECONDS,
        requiredClaims: ['iat', 'jti', 'events'],
        clockTolerance: 60,
        currentDate: this.deps.clock(),
      });
      // Back-Channel Logout 1.0 §2.4: a typ, when given, is logout+jwt (explicit typing, RFC 8725 §3.11).
      if (protectedHeader.typ !== undefined && !/^(application\/)?logout\+jwt$/i.test(protectedHeader.typ)) throw invalid('typ', { domain: connection.domain });
      claims = payload;
    } catch (error) {
      if (error instanceof ApiError) throw error;
      // The JWKS could not be fetched (a timeout, a network error, not a JOSE verdict on the token): 503.
      if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid || !(error instanceof joseErrors.JOSEError) || error.code === 'ERR_JOSE_GENERIC') throw unreachable(error);
      // jose checks exp whenever the token has one.
      throw invalid(error.code, { domain: connection.domain });
    }
    const events = claims.events;
    if (typeof events !== 'object' || events === null || typeof (events as Record<string, unknown>)[BACKCHANNEL_EVENT] !== 'object') throw invalid('no_event');
    if ('nonce' in claims) throw invalid('nonce');
    const sub = typeof claims.sub === 'string' ? claims.sub : undefined;
    const sid = typeof claims.sid === 'string' ? claims.sid : undefined;
    if (!sub && !sid) throw invalid('no_subject');
    if (typeof claims.jti !== 'string') throw invalid('no_jti');
    const now = this.deps.clock();
    const jti = claims.jti;
    if (!(await this.deps.sso.spendJti(connection.issuer, jti, now))) throw invalid('jti_replayed', { domain: connection.domain });
    try {
      const userId = await this.deps.sso.userOf(connection.issuer, { ...(sub ? { sub } : {}), ...(sid ? { sid } : {}) }, now);
      if (!userId) {
        log.info('sso_logout', { domain: connection.domain, bySid: sid !== undefined, ended: 0, reason: 'unknown_subject', ...caller });
        return { ended: 0 };
      }
      // Recorded first: a federated grant or mfa_token made before now opens no session after it.
      await this.deps.sso.recordLogout(userId, connection.issuer, sid, now);
      const sessions = await this.deps.sessions.federatedSessions(userId, now);
      const ending = sessions.filter((session) => session.idp?.issuer === connection.issuer && (sid === undefined || session.idp.sid === sid));
      const results = await Promise.allSettled(ending.map((session) => endSession(this.deps, session.id, userId, now, 'idp_logout')));
      const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed) throw failed.reason;
      const ended = results.filter((result) => result.status === 'fulfilled' && result.value).length;
      log.info('sso_logout', { userId, domain: connection.domain, bySid: sid !== undefined, ended, ...caller });
      return { ended };
    } catch (error) {
      // Not every session could be ended: the jti is given back, so the IdP's retry of the same
      // token (after our 5xx) ends the rest; ending a session twice is harmless.
      await this.deps.sso.giveBackJti(connection.issuer, jti, now).catch((giveBack: unknown) => log.warn('sso_logout_jti_kept', { domain: connection.domain, ...describeError(giveBack) }));
      throw error;
    }
  }

  private async idp(connection: Connection, secret?: string): Promise<oidc.Configuration> {
    try {
      return await this.deps.providers.configuration(connection, secret);
    } catch (error) {
      log.warn('sso_discovery_failed', { domain: connection.domain, issuer: connection.issuer, ...describeError(error) });
      throw new ApiError('service_unavailable', 'The identity provider cannot be reached. Try again shortly.', { 'Retry-After': '5' });
    }
  }
}

/** The SSO service over an app (one per app). */
export const ssoService = oncePer((app: App) => {
  const sso = new SsoRepository(app.db, app.config.usersTable, app.config.attemptsTable);
  return new SsoService({
    ...app,
    sso,
    login: loginService(app),
    federated: new FederatedCredentials({ users: app.users, sso, clock: app.clock }),
    providers: new IdentityProviders({ clock: app.clock, allowLoopback: app.config.sso.allowLoopbackIssuers }),
  });
});
