import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { DEFAULT_STORE_DEADLINES_MS, type HttpPolicy, type StoreDeadlines } from '../platform/config.js';
import { withStoreDeadline } from '../platform/dynamo.js';
import { ApiError, bearerError, unavailable } from '../platform/errors.js';
import { looksLikeApiKey } from '../platform/ids.js';
import { describeError, log, logger } from '../platform/log.js';
import { METRIC, countMetric, publishMetrics } from '../platform/metrics.js';
import { MAX_BODY_BYTES } from './validation.js';

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2;

/** On every response, success or error: JSON, never cached, never sniffed. */
const RESPONSE_HEADERS: Record<string, string> = {
  'Content-Type': 'application/json',
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return { statusCode, headers: { ...headers }, body: JSON.stringify(body) };
}

export function ok<T extends object>(body: T): HttpResult {
  return json(200, { success: true, ...body });
}

/** 201: something was created (an API key). */
export function created<T extends object>(body: T): HttpResult {
  return json(201, { success: true, ...body });
}

/** 302 to `location`, no body: the SSO endpoints that hand a browser on (to the IdP, back to the client). */
export function redirect(location: string): HttpResult {
  return { statusCode: 302, headers: { Location: location }, body: '' };
}

/**
 * A form-encoded body (`application/x-www-form-urlencoded`), for the one endpoint whose caller
 * sends no JSON: an IdP's back-channel logout. Any other type is 415; each field once.
 */
export function formBody(event: HttpEvent): URLSearchParams {
  const type = headerValue(event, 'content-type');
  if (type === undefined || !/^\s*application\/x-www-form-urlencoded\s*(;.*)?$/is.test(type)) {
    throw new ApiError('unsupported_media_type', 'The request body must be sent as application/x-www-form-urlencoded.');
  }
  const params = new URLSearchParams(bodyText(event) ?? '');
  for (const name of new Set(params.keys())) {
    if (params.getAll(name).length > 1) throw new ApiError('invalid_request', `The form field "${name}" is given more than once.`);
  }
  return params;
}

/** The raw request body as text, refusing anything over the size limit before it is parsed. */
export function bodyText(event: HttpEvent): string | undefined {
  if (event.body === undefined || event.body === null) return undefined;
  // API Gateway always sends a string; serverless-offline hands over JSON scalars it parsed itself.
  const body: unknown = event.body;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const bytes = event.isBase64Encoded ? Buffer.from(text, 'base64') : undefined;
  const size = bytes ? bytes.length : Buffer.byteLength(text, 'utf8');
  if (size > MAX_BODY_BYTES) throw new ApiError('payload_too_large', `The request body must be at most ${MAX_BODY_BYTES} bytes.`);
  return bytes ? bytes.toString('utf8') : text;
}

/** The access token of an `Authorization: Bearer …` header (scheme case-insensitive, RFC 7235). */
export function bearerToken(event: HttpEvent): string {
  return bearerFromHeader(headerValue(event, 'authorization'));
}

/**
 * The bearer of an endpoint that only a session may call (logout, password change, the MFA and
 * sessions endpoints, the API-key endpoints): an API key presented there is 403 `session_required`,
 * whatever it holds, so a key can never mint or manage credentials. The one place that says so.
 */
export function sessionBearerToken(event: HttpEvent): string {
  const token = bearerToken(event);
  if (looksLikeApiKey(token)) throw new ApiError('session_required');
  return token;
}

/**
 * Who is setting up a second factor: a signed-in user (an `Authorization: Bearer` header, which
 * wins, and is looked at before the body: an API key is 403 `session_required` whatever it sent),
 * or a sign-in that must enrol first (`mfa_token` in the body); neither is a 401. With the body,
 * parsed once, after the header.
 */
export function bearerOrMfaToken(
  event: HttpEvent,
  parseBody: () => Record<string, unknown>,
): { auth: { accessToken: string } | { mfaToken: string }; body: Record<string, unknown> } {
  if (headerValue(event, 'authorization') !== undefined) {
    const accessToken = sessionBearerToken(event);
    return { auth: { accessToken }, body: parseBody() };
  }
  const body = parseBody();
  const mfaToken = body.mfa_token;
  if (mfaToken === undefined) throw bearerError('invalid_token', false);
  if (typeof mfaToken !== 'string') throw new ApiError('invalid_request', 'The field "mfa_token" must be a string.');
  return { auth: { mfaToken }, body };
}

/** The token of an Authorization header value; a 401 bearer error when it is missing or not `Bearer <token>`. */
export function bearerFromHeader(header: string | undefined): string {
  if (header === undefined || header.trim() === '') throw bearerError('invalid_token', false);
  const match = /^bearer +([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header.trim());
  if (!match) throw bearerError('invalid_token', true);
  return match[1]!;
}

/** Headers arrive lower-cased from API Gateway v2, but not from every test harness. */
export function headerValue(event: HttpEvent, name: string): string | undefined {
  const headers = event.headers ?? {};
  const wanted = name.toLowerCase();
  if (headers[wanted] !== undefined) return headers[wanted];
  const key = Object.keys(headers).find((candidate) => candidate.toLowerCase() === wanted);
  return key === undefined ? undefined : headers[key];
}

export interface RequestInfo {
  requestId: string;
  sourceIp: string | undefined;
  userAgent: string | undefined;
}

export function requestInfo(event: HttpEvent, context?: Context): RequestInfo {
  return {
    requestId: event.requestContext?.requestId ?? context?.awsRequestId ?? 'unknown',
    sourceIp: event.requestContext?.http?.sourceIp,
    userAgent: event.requestContext?.http?.userAgent,
  };
}

const HSTS = 'max-age=31536000; includeSubDomains';
const NO_POLICY: HttpPolicy = { requireHttps: false, storeDeadlinesMs: DEFAULT_STORE_DEADLINES_MS };

/** The fixed headers, and HSTS when HTTPS is required. (CORS is API Gateway's: infra/cors.js.) */
function policyHeaders(policy: HttpPolicy): Record<string, string> {
  return policy.requireHttps ? { ...RESPONSE_HEADERS, 'Strict-Transport-Security': HSTS } : { ...RESPONSE_HEADERS };
}

function withResponseHeaders(response: HttpResult, headers: Record<string, string>): HttpResult {
  return { ...response, headers: { ...headers, ...response.headers } };
}

/**
 * A body is read only when it says it is JSON (`application/json`, parameters such as charset
 * allowed): a form or text/plain POST is what a web page can make a browser send without a CORS
 * preflight, so accepting one would let any site drive sign-ins from its visitors' browsers.
 */
function isJsonOrEmpty(event: HttpEvent): boolean {
  const body: unknown = event.body;
  if (body === undefined || body === null || body === '') return true;
  const method = event.requestContext?.http?.method?.toUpperCase();
  if (method === 'GET' || method === 'HEAD') return true;
  const type = headerValue(event, 'content-type');
  return type !== undefined && /^\s*application\/json\s*(;.*)?$/is.test(type);
}

/** API Gateway always says how the client reached it; anything but https is refused. */
function isHttps(event: HttpEvent): boolean {
  return headerValue(event, 'x-forwarded-proto')?.trim().toLowerCase() === 'https';
}

/**
 * Renders every outcome as our JSON: a typed ApiError as itself, anything else as a bare 500
 * whose cause goes to the log only. (serverless-offline would answer 200 to a thrown error,
 * and middy's stock handler answers text/plain, hence our own.)
 */
function jsonApi(policy: HttpPolicy, readsBody: boolean): MiddlewareObj<HttpEvent, HttpResult, Error, Context> {
  return {
    before: (request) => {
      // Before any other work: not even the body is looked at over plain HTTP.
      if (policy.requireHttps && !isHttps(request.event)) throw new ApiError('https_required');
      if (readsBody && !isJsonOrEmpty(request.event)) throw new ApiError('unsupported_media_type');
    },
    after: (request) => {
      if (request.response) request.response = withResponseHeaders(request.response, policyHeaders(policy));
    },
    onError: (request) => {
      const error = request.error;
      let apiError: ApiError;
      if (error instanceof ApiError) {
        apiError = error;
        if (apiError.status >= 500) log.warn('request_failed', { ...requestInfo(request.event, request.context), code: apiError.code, ...describeError(error) });
        if (apiError.status === 503) countMetric(METRIC.serviceUnavailable);
      } else {
        apiError = new ApiError('internal_error');
        log.error('unhandled_error', { ...requestInfo(request.event, request.context), ...describeError(error) });
      }
      request.response = withResponseHeaders(json(apiError.status, apiError.toBody(), apiError.headers), policyHeaders(policy));
    },
  };
}

/**
 * How long before the Lambda's own timeout a request gives up and answers 503: a request stuck on a
 * slow dependency, or starved of CPU, gets our JSON error with Retry-After instead of the
 * platform's error for a function that ran out of time (API Gateway's 500, serverless-offline's).
 */
export const TIMEOUT_MARGIN_MS = 500;

/**
 * `readsBody: false` for a handler that never reads the body (the $default route): no 415 then.
 * `storeDeadline`: which of the policy's deadlines for DynamoDB the request is held to (`fast` for
 * /auth/me and refresh), then 503.
 */
export function httpHandler(
  handler: (event: HttpEvent, context: Context) => Promise<HttpResult>,
  policy: HttpPolicy = NO_POLICY,
  { readsBody = true, storeDeadline = 'standard' }: { readsBody?: boolean; storeDeadline?: keyof StoreDeadlines } = {},
) {
  return middy<HttpEvent, HttpResult, Error, Context>({
    timeoutEarlyInMillis: TIMEOUT_MARGIN_MS,
    timeoutEarlyResponse: () => {
      throw Object.assign(unavailable(), { cause: new Error(`no answer ${TIMEOUT_MARGIN_MS} ms before the function's timeout`) });
    },
  })
    .use(injectLambdaContext(logger, { logEvent: false }))
    .use(publishMetrics())
    .use(jsonApi(policy, readsBody))
    .handler((event, context) => withStoreDeadline(policy.storeDeadlinesMs[storeDeadline], () => handler(event, context)));
}
