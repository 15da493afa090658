import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';
import { SERVICE_NAME } from './log.js';

/**
 * Operational metrics: Powertools Metrics in CloudWatch's embedded metric format, one JSON line on
 * stdout that CloudWatch Logs turns into metrics (no SDK call, no IAM). Namespace
 * `VpnEnterprise/Auth`, dimensions `service` and `stage`, plus at most one more of bounded
 * cardinality (a reason, a limit, a scope, an authMethod): never a user, an email, an IP or a session.
 */
export const METRICS_NAMESPACE = 'VpnEnterprise/Auth';

/** `stage` too (bounded: a handful of stages), so that a dev stage in the same account never feeds prod's alarms. */
export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME, defaultDimensions: { stage: process.env.STAGE?.trim() || 'dev' } });

/** Every metric the service emits, and the one dimension each may carry. */
export const METRIC = {
  signInSucceeded: 'SignInSucceeded',
  /** reason: unknown_user | bad_password | disabled; single sign-on's refusals: sso_<reason> (sso_email_not_verified, sso_wrong_domain, sso_disabled, sso_idp_error, sso_unusable…) */
  signInFailed: 'SignInFailed',
  /** limit: pair | ip | account | device | session | code | recovery_code */
  signInLockedOut: 'SignInLockedOut',
  tokenRefreshed: 'TokenRefreshed',
  refreshTokenReused: 'RefreshTokenReused',
  /** scope: local | global */
  logout: 'Logout',
  /** A user ended one of their sessions (DELETE /auth/sessions/{id}). */
  sessionEnded: 'SessionEnded',
  passwordChanged: 'PasswordChanged',
  /** reason: verify | enroll. A right password that still owes a second factor. */
  secondFactorRequired: 'SecondFactorRequired',
  /** reason: code | recovery_code. */
  secondFactorSucceeded: 'SecondFactorSucceeded',
  /** reason: code | recovery_code | token (an unknown, spent, expired or exhausted mfa_token). */
  secondFactorFailed: 'SecondFactorFailed',
  /** reason: activated | turned_off | recovery_codes_replaced (an operator's mfa-reset is in the audit log). */
  secondFactorChanged: 'SecondFactorChanged',
  /** reason: code | recovery_code. An account's wrong second factors reached MFA_MAX_FAILURES: a lock began. */
  secondFactorLocked: 'SecondFactorLocked',
  /** authMethod: session | api_key */
  authorizerAllowed: 'AuthorizerAllowed',
  /** authMethod: session | api_key (what the bearer claimed to be) */
  authorizerDenied: 'AuthorizerDenied',
  apiKeyCreated: 'ApiKeyCreated',
  /** A live key revoked by its owner (an operator's revoke-api-key is in the audit log). */
  apiKeyRevoked: 'ApiKeyRevoked',
  serviceUnavailable: 'ServiceUnavailable',
} as const;

type MetricName = (typeof METRIC)[keyof typeof METRIC];

/**
 * Count one event. With a dimension it is counted twice: in total (what the alarms watch) and by
 * that dimension (what the dashboard breaks down), the latter in an EMF record of its own.
 */
export function countMetric(name: MetricName, dimension?: { name: MetricDimension; value: string }): void {
  metrics.addMetric(name, MetricUnit.Count, 1);
  if (!dimension) return;
  singleMetricBy(dimension.name, dimension.value).addMetric(name, MetricUnit.Count, 1);
}

type MetricDimension = 'reason' | 'limit' | 'scope' | 'authMethod';

/**
 * One single-metric emitter per dimension value, made once: Powertools' singleMetric() builds a
 * whole Metrics instance (about 55 µs, a twentieth of a warm authorizer call), and the values are
 * few by design. Past the bound (a value that is not), a fresh one each time, as before.
 */
const singleMetrics = new Map<string, Metrics>();
const SINGLE_METRICS_KEPT = 64;

function singleMetricBy(name: MetricDimension, value: string): Metrics {
  const id = `${name}=${value}`;
  const kept = singleMetrics.get(id);
  if (kept) return kept;
  const single = metrics.singleMetric();
  single.setDefaultDimensions({ [name]: value });
  if (singleMetrics.size < SINGLE_METRICS_KEPT) singleMetrics.set(id, single);
  return single;
}

/** Publish what a request counted when it ends (and nothing, no warning, when it counted nothing). */
export function publishMetrics<E, R>(): MiddlewareObj<E, R> {
  const publish = () => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  };
  return { after: publish, onError: publish };
}
