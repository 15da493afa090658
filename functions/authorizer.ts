import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayRequestAuthorizerEventV2, APIGatewaySimpleAuthorizerWithContextResult } from 'aws-lambda';
import { app } from '../lib/app.js';
import { apiKeyService } from '../lib/auth/api-key-service.js';
import { looksLikeApiKey } from '../lib/platform/ids.js';
import { TIMEOUT_MARGIN_MS, bearerFromHeader } from '../lib/http/http.js';
import { withStoreDeadline } from '../lib/platform/dynamo.js';
import { describeError, log, logger } from '../lib/platform/log.js';
import { METRIC, countMetric, publishMetrics } from '../lib/platform/metrics.js';

const { config } = app();
const service = apiKeyService(app());

/** A session's access token: `userId` too (the same as `sub`), so a route reads one name whatever the bearer. */
export interface SessionContext {
  sub: string;
  sid: string;
  userId: string;
  role: string;
  /** How the session was signed in, comma-separated RFC 8176 values (`pwd`, or `pwd,otp`): an API may demand two factors. */
  amr: string;
  authMethod: 'session';
}

/** An API key: its owner, its effective role (the lower of the key's and the owner's now), and its public id. */
export interface ApiKeyContext {
  userId: string;
  role: string;
  authMethod: 'api_key';
  apiKeyId: string;
}

export type AuthorizerContext = SessionContext | ApiKeyContext;

type AuthorizerResult = APIGatewaySimpleAuthorizerWithContextResult<AuthorizerContext | Record<string, never>>;

const DENY: AuthorizerResult = { isAuthorized: false, context: {} };

/**
 * API Gateway HTTP API Lambda authorizer (simple responses) for any VPN Enterprise API: the
 * same check as /auth/me — signature, expiry, and a session that still stands — so a logout or
 * a disabled user is refused at once. Attach with a result cache TTL of 0 to keep it that way.
 * Anything that goes wrong, a DynamoDB outage included, denies (fails closed), and a store that
 * hangs is given up on within STORE_DEADLINE_FAST_MS (1.5 s): every API of the product waits on this.
 */
export const handler = middy<APIGatewayRequestAuthorizerEventV2, AuthorizerResult>({
  // Out of time before an answer (a stuck dependency): deny, before the platform fails the call.
  timeoutEarlyInMillis: TIMEOUT_MARGIN_MS,
  timeoutEarlyResponse: () => DENY,
})
  // logEvent: false whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event carries the token.
  .use(injectLambdaContext(logger, { logEvent: false }))
  .use(publishMetrics())
  .handler(async (event): Promise<AuthorizerResult> => {
    let authMethod: AuthorizerContext['authMethod'] = 'session';
    try {
      const token = bearerFromHeader(event.headers?.authorization ?? event.identitySource?.[0]);
      if (looksLikeApiKey(token)) authMethod = 'api_key';
      const bearer = await withStoreDeadline(config.storeDeadlinesMs.fast, () => service.bearer(token, { caller: { requestId: event.requestContext?.requestId, sourceIp: event.requestContext?.http?.sourceIp } }));
      countMetric(METRIC.authorizerAllowed, { name: 'authMethod', value: bearer.method });
      if (bearer.method === 'api_key') {
        return { isAuthorized: true, context: { userId: bearer.user.id, role: bearer.role, authMethod: 'api_key', apiKeyId: bearer.apiKeyId } };
      }
      const { user, sessionId, amr } = bearer.standing;
      return { isAuthorized: true, context: { sub: user.id, sid: sessionId, userId: user.id, role: user.role, amr: amr.join(','), authMethod: 'session' } };
    } catch (error) {
      const status = (error as { status?: number }).status;
      if (status !== 401) log.warn('authorizer_error', { requestId: event.requestContext?.requestId, ...describeError(error) });
      if (status === 503) countMetric(METRIC.serviceUnavailable);
      countMetric(METRIC.authorizerDenied, { name: 'authMethod', value: authMethod });
      return DENY;
    }
  });
