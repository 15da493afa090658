import type { Context } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_STORE_DEADLINES_MS } from '../../lib/platform/config.js';
import { ApiError, bearerError, unavailable } from '../../lib/platform/errors.js';
import { bearerToken, bodyText, headerValue, httpHandler, json, ok, type HttpEvent, type HttpResult } from '../../lib/http/http.js';
import { MAX_BODY_BYTES } from '../../lib/http/validation.js';

const SECURITY_HEADERS = {
  'Content-Type': 'application/json',
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};
const TOKEN = 'eyJhbGciOiJIUzI1NiIs.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';

/** The parts of an API Gateway v2 event the code reads. */
function httpEvent(overrides: Partial<HttpEvent> = {}): HttpEvent {
  return {
    version: '2.0',
    routeKey: 'POST /v1/auth/test',
    rawPath: '/v1/auth/test',
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    requestContext: { requestId: 'req-123', http: { method: 'POST', path: '/v1/auth/test', sourceIp: '203.0.113.10', userAgent: 'vitest' } },
    isBase64Encoded: false,
    ...overrides,
  } as unknown as HttpEvent;
}

const context = {
  awsRequestId: 'aws-req-123',
  functionName: 'vpn-auth-test',
  getRemainingTimeInMillis: () => 10_000,
} as unknown as Context;

function parsedBody(result: HttpResult): unknown {
  return JSON.parse(result.body ?? '');
}

async function thrown(act: () => unknown): Promise<ApiError> {
  try {
    await act();
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return error as ApiError;
  }
  return expect.fail('expected an ApiError');
}

afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * The JSON lines the logger writes from now on (Powertools writes to stdout and stderr through
 * a Console of its own, so console spies would not see them), kept off the test output.
 */
function captureLog(): (() => Array<Record<string, unknown>>) & { metrics: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(...String(chunk).split('\n').filter((line) => line.startsWith('{')));
      return true;
    });
  }
  const parsed = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  // Log lines, and apart from them the metrics (CloudWatch EMF records, lib/platform/metrics.ts).
  return Object.assign(() => parsed().filter((line) => !('_aws' in line)), { metrics: () => parsed().filter((line) => '_aws' in line) });
}

describe('httpHandler', () => {
  it('adds the JSON and no-cache headers to a success', async () => {
    // Prepare
    const handler = httpHandler(async () => ok({ hello: 'world' }));

    // Act
    const result = await handler(httpEvent(), context);

    // Assess
    expect(result.statusCode).toBe(200);
    expect(result.headers).toEqual(SECURITY_HEADERS);
    expect(parsedBody(result)).toEqual({ success: true, hello: 'world' });
  });

  it('keeps headers the handler set', async () => {
    // Prepare
    const handler = httpHandler(async () => json(201, { created: true }, { Location: '/v1/x' }));

    // Act
    const result = await handler(httpEvent(), context);

    // Assess
    expect(result.statusCode).toBe(201);
    expect(result.headers).toEqual({ ...SECURITY_HEADERS, Location: '/v1/x' });
  });

  it('renders a thrown ApiError as its JSON, status and headers', async () => {
    // Prepare
    const handler = httpHandler(async () => {
      throw bearerError('token_expired', true);
    });

    // Act
    const result = await handler(httpEvent(), context);

    // Assess
    expect(result.statusCode).toBe(401);
    expect(parsedBody(result)).toEqual({
      success: false,
      error: { code: 'token_expired', message: 'The access token has expired.' },
    });
    expect(result.headers).toMatchObject(SECURITY_HEADERS);
    expect(result.headers?.['WWW-Authenticate']).toContain('error="invalid_token"');
  });

  it('renders an ApiError with its own message', async () => {
    // Prepare
    const handler = httpHandler(async () => {
      throw new ApiError('invalid_request', 'The field "email" is required.');
    });

    // Act
    const result = await handler(httpEvent(), context);

    // Assess
    expect(result.statusCode).toBe(400);
    expect(parsedBody(result)).toEqual({ success: false, error: { code: 'invalid_request', message: 'The field "email" is required.' } });
  });

  it('renders a 503 with Retry-After, and logs it', async () => {
    // Prepare
    const logged = captureLog();
    const handler = httpHandler(async () => {
      throw unavailable(7);
    });

    // Act
    const result = await handler(httpEvent(), context);

    // Assess
    expect(result.statusCode).toBe(503);
    expect(result.headers).toMatchObject({ ...SECURITY_HEADERS, 'Retry-After': '7' });
    expect((parsedBody(result) as { error: { code: string } }).error.code).toBe('service_unavailable');
    expect(logged()).toEqual([expect.objectContaining({ level: 'WARN', message: 'request_failed', code: 'service_unavailable' })]);
    expect(logged.metrics()).toEqual([expect.objectContaining({ ServiceUnavailable: 1, service: 'vpn-auth', stage: 'dev' })]);
  });

  it('turns any other error into a bare 500 whose cause is logged, never sent', async () => {
    // Prepare
    const logged = captureLog();
    const handler = httpHandler(async () => {
      throw new Error('ConditionalCheckFailed on table vpn-auth-dev-users');
    });

    // Act
    const result = await handler(httpEvent(), context);

    // Assess
    expect(result.statusCode).toBe(500);
    expect(result.headers).toEqual(SECURITY_HEADERS);
    expect(parsedBody(result)).toEqual({
      success: false,
      error: { code: 'internal_error', message: 'An unexpected error occurred.' },
    });
    expect(result.body).not.toContain('ConditionalCheckFailed');
    expect(result.body).not.toContain('vpn-auth-dev-users');
    expect(result.body).not.toContain('http.test.ts');
    expect(result.body).not.toMatch(/\bat /);
    const lines = logged();
    expect(lines).toEqual([expect.objectContaining({ level: 'ERROR', message: 'unhandled_error', requestId: 'req-123', service: 'vpn-auth' })]);
    expect(JSON.stringify(lines[0])).toContain('ConditionalCheckFailed on table vpn-auth-dev-users');
  });

  it('renders a thrown non-Error as a 500 too', async () => {
    // Prepare
    const logged = captureLog();
    const handler = httpHandler(async () => {
      throw 'a string, not an Error';
    });

    // Act
    const result = await handler(httpEvent(), context);

    // Assess
    expect(result.statusCode).toBe(500);
    expect(result.body).not.toContain('a string, not an Error');
    expect(logged()).toEqual([expect.objectContaining({ level: 'ERROR', message: 'unhandled_error' })]);
  });

  it('answers 401 with the challenge when a handler reads a missing bearer token', async () => {
    // Prepare
    const handler = httpHandler(async (event) => ok({ token: bearerToken(event) }));

    // Act
    const result = await handler(httpEvent({ headers: {} }), context);

    // Assess
    expect(result.statusCode).toBe(401);
    expect(result.headers?.['WWW-Authenticate']).toBe('Bearer realm="vpn-enterprise"');
    expect((parsedBody(result) as { error: { code: string } }).error.code).toBe('invalid_token');
  });
});

describe('bodyText', () => {
  it('returns a plain body as is', () => {
    expect(bodyText(httpEvent({ body: '{"a":1}' }))).toBe('{"a":1}');
  });

  it('is undefined without a body', () => {
    expect(bodyText(httpEvent())).toBeUndefined();
  });

  it('decodes a base64 body', () => {
    // Prepare
    const event = httpEvent({ body: Buffer.from('{"email":"é@b.co"}').toString('base64'), isBase64Encoded: true });

    // Act + Assess
    expect(bodyText(event)).toBe('{"email":"é@b.co"}');
  });

  it('accepts exactly 64 KiB', () => {
    expect(bodyText(httpEvent({ body: 'x'.repeat(MAX_BODY_BYTES) }))).toHaveLength(MAX_BODY_BYTES);
  });

  it('refuses more than 64 KiB with payload_too_large (413)', async () => {
    // Act
    const error = await thrown(() => bodyText(httpEvent({ body: 'x'.repeat(MAX_BODY_BYTES + 1) })));

    // Assess
    expect(error.code).toBe('payload_too_large');
    expect(error.status).toBe(413);
  });

  it('counts UTF-8 bytes, not characters', async () => {
    // Prepare: 32 769 × "é" is under 64 Ki characters but over 64 KiB
    const body = 'é'.repeat(MAX_BODY_BYTES / 2 + 1);

    // Act
    const error = await thrown(() => bodyText(httpEvent({ body })));

    // Assess
    expect(error.code).toBe('payload_too_large');
  });

  it('refuses more than 64 KiB once decoded from base64, and accepts exactly 64 KiB', async () => {
    // Prepare
    const tooLarge = Buffer.alloc(MAX_BODY_BYTES + 1, 'x').toString('base64');
    const justRight = Buffer.alloc(MAX_BODY_BYTES, 'x').toString('base64');

    // Act
    const error = await thrown(() => bodyText(httpEvent({ body: tooLarge, isBase64Encoded: true })));

    // Assess
    expect(error.status).toBe(413);
    expect(bodyText(httpEvent({ body: justRight, isBase64Encoded: true }))).toHaveLength(MAX_BODY_BYTES);
  });

  it('renders 413 through the handler', async () => {
    // Prepare
    const handler = httpHandler(async (event) => ok({ length: bodyText(event)?.length }));

    // Act
    const result = await handler(httpEvent({ body: 'x'.repeat(MAX_BODY_BYTES + 1) }), context);

    // Assess
    expect(result.statusCode).toBe(413);
    expect((parsedBody(result) as { error: { code: string } }).error.code).toBe('payload_too_large');
  });
});

describe('bearerToken', () => {
  it('returns the token of an "Authorization: Bearer" header', () => {
    expect(bearerToken(httpEvent({ headers: { authorization: `Bearer ${TOKEN}` } }))).toBe(TOKEN);
  });

  it.each([
    ['a missing header', {}],
    ['an empty header', { authorization: '' }],
    ['a blank header', { authorization: '   ' }],
  ])('refuses %s with a bare challenge (no error attribute)', async (_case, headers) => {
    // Act
    const error = await thrown(() => bearerToken(httpEvent({ headers })));

    // Assess
    expect(error.code).toBe('invalid_token');
    expect(error.status).toBe(401);
    expect(error.headers['WWW-Authenticate']).toBe('Bearer realm="vpn-enterprise"');
  });

  it('refuses an event without headers', async () => {
    expect((await thrown(() => bearerToken(httpEvent({ headers: undefined as unknown as HttpEvent['headers'] })))).code).toBe('invalid_token');
  });

  it.each([
    ['another scheme', 'Basic xyz'],
    ['a scheme without a token', 'Bearer'],
    ['a token without a scheme', TOKEN],
    ['two tokens', `Bearer ${TOKEN} ${TOKEN}`],
    ['a token with a comma', `Bearer ${TOKEN},x`],
  ])('refuses %s with error="invalid_token"', async (_case, authorization) => {
    // Act
    const error = await thrown(() => bearerToken(httpEvent({ headers: { authorization } })));

    // Assess
    expect(error.code).toBe('invalid_token');
    expect(error.headers['WWW-Authenticate']).toContain('error="invalid_token"');
  });

  it.each(['bearer', 'BEARER', 'BeArEr'])('accepts the scheme spelled "%s"', (scheme) => {
    expect(bearerToken(httpEvent({ headers: { authorization: `${scheme} ${TOKEN}` } }))).toBe(TOKEN);
  });

  it('tolerates surrounding white space', () => {
    expect(bearerToken(httpEvent({ headers: { authorization: `  Bearer   ${TOKEN}  ` } }))).toBe(TOKEN);
  });

  it('finds a header named "Authorization" with a capital A', () => {
    expect(bearerToken(httpEvent({ headers: { Authorization: `Bearer ${TOKEN}` } }))).toBe(TOKEN);
  });
});

describe('headerValue', () => {
  it('finds a header whatever the case of its name in the event', () => {
    // Prepare
    const event = httpEvent({ headers: { 'X-Request-ID': 'abc' } });

    // Act + Assess
    expect(headerValue(event, 'x-request-id')).toBe('abc');
    expect(headerValue(event, 'x-missing')).toBeUndefined();
    expect(headerValue(event, 'X-Request-Id')).toBe('abc');
  });
});

describe('the HTTP policy (REQUIRE_HTTPS)', () => {
  const production = { requireHttps: true, storeDeadlinesMs: DEFAULT_STORE_DEADLINES_MS };

  it('refuses plain HTTP with 403 https_required before the handler runs, and still sends HSTS', async () => {
    // Prepare
    const inner = vi.fn(async () => ok({}));
    const handler = httpHandler(inner, production);

    // Act
    const missing = await handler(httpEvent(), context);
    const plain = await handler(httpEvent({ headers: { 'x-forwarded-proto': 'http' } }), context);

    // Assess
    for (const response of [missing, plain]) {
      expect(response.statusCode).toBe(403);
      expect(JSON.parse(response.body!)).toEqual({ success: false, error: { code: 'https_required', message: expect.any(String) } });
      expect(response.headers!['Strict-Transport-Security']).toBe('max-age=31536000; includeSubDomains');
    }
    expect(inner).not.toHaveBeenCalled();
  });

  it('serves HTTPS requests with HSTS on success and on errors', async () => {
    const success = await httpHandler(async () => ok({}), production)(httpEvent({ headers: { 'x-forwarded-proto': 'https' } }), context);
    const failure = await httpHandler(async () => {
      throw new ApiError('invalid_request');
    }, production)(httpEvent({ headers: { 'x-forwarded-proto': 'https' } }), context);
    expect(success.statusCode).toBe(200);
    expect(failure.statusCode).toBe(400);
    for (const response of [success, failure]) expect(response.headers!['Strict-Transport-Security']).toBe('max-age=31536000; includeSubDomains');
  });

  it('sends no HSTS and accepts plain HTTP when HTTPS is not required', async () => {
    const response = await httpHandler(async () => ok({}))(httpEvent({ headers: { 'x-forwarded-proto': 'http' } }), context);
    expect(response.statusCode).toBe(200);
    expect(response.headers).not.toHaveProperty('Strict-Transport-Security');
  });

  it('sends no CORS header of its own, whatever the Origin: CORS is API Gateway\'s (infra/cors.js)', async () => {
    const response = await httpHandler(async () => ok({}))(httpEvent({ headers: { origin: 'https://app.example.com' } }), context);
    expect(Object.keys(response.headers!).filter((name) => name.toLowerCase().startsWith('access-control-'))).toEqual([]);
    expect(response.headers).not.toHaveProperty('Vary');
  });
});

describe('a request that runs out of time', () => {
  it('answers 503 service_unavailable with Retry-After in our JSON before the function\'s own timeout', async () => {
    // Prepare: 700 ms left, a handler that never answers
    const started = Date.now();
    const stuck = httpHandler(() => new Promise<HttpResult>(() => undefined));
    const shortOfTime = { ...context, getRemainingTimeInMillis: () => 700 - (Date.now() - started) } as unknown as Context;

    // Act
    const response = await stuck(httpEvent(), shortOfTime);

    // Assess
    expect(Date.now() - started).toBeLessThan(700);
    expect(response.statusCode).toBe(503);
    expect(parsedBody(response)).toEqual({ success: false, error: { code: 'service_unavailable', message: expect.any(String) } });
    expect(response.headers).toMatchObject({ ...SECURITY_HEADERS, 'Retry-After': expect.stringMatching(/^\d+$/) });
  });
});

describe('bodyText with a body that is not a string (serverless-offline parses JSON scalars itself)', () => {
  it.each([false, 0, true, 12.5])('reads %s as its JSON text instead of failing', (value) => {
    expect(bodyText(httpEvent({ body: value as unknown as string }))).toBe(JSON.stringify(value));
  });
});

describe('the media type of a request body', () => {
  const handler = httpHandler(async () => ok({ reached: true }));

  it.each([
    ['application/json'],
    ['application/json; charset=utf-8'],
    ['Application/JSON;Charset=UTF-8'],
    [' application/json '],
  ])('takes a body sent as %s', async (type) => {
    const response = await handler(httpEvent({ headers: { 'content-type': type }, body: '{}' }), context);
    expect(parsedBody(response)).toEqual({ success: true, reached: true });
  });

  it.each([
    ['text/plain', { 'content-type': 'text/plain' }],
    ['a form', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['application/jsonp', { 'content-type': 'application/jsonp' }],
    ['application/json-patch+json', { 'content-type': 'application/json-patch+json' }],
    ['no Content-Type at all', {}],
  ])('refuses a body sent as %s with 415 unsupported_media_type, before the handler runs', async (_label, headers) => {
    // Prepare
    let reached = false;
    const guarded = httpHandler(async () => {
      reached = true;
      return ok({});
    });

    // Act
    const response = await guarded(httpEvent({ headers, body: '{"email":"a@b.co","password":"x"}' }), context);

    // Assess
    expect(response.statusCode).toBe(415);
    expect(parsedBody(response)).toEqual({ success: false, error: { code: 'unsupported_media_type', message: expect.any(String) } });
    expect(response.headers).toMatchObject(SECURITY_HEADERS);
    expect(reached).toBe(false);
  });

  it('needs no content type when there is no body, or for a GET', async () => {
    expect((await handler(httpEvent({ headers: {} }), context)).statusCode).toBe(200);
    expect((await handler(httpEvent({ headers: {}, body: '' }), context)).statusCode).toBe(200);
    const get = httpEvent({ headers: { 'content-type': 'text/plain' }, body: 'ignored' });
    (get.requestContext.http as { method: string }).method = 'GET';
    expect((await handler(get, context)).statusCode).toBe(200);
  });
});
