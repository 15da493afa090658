import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { requestFrom, type SourcedReply } from '../support/http.js';

/** Every answer, whatever was sent: never a 5xx, always our JSON shape, always the common headers. */
function expectWellFormed(reply: SourcedReply): void {
  expect(reply.status, reply.text).toBeLessThan(500);
  expect(reply.headers['content-type']).toMatch(/^application\/json/);
  expect(reply.headers['x-content-type-options']).toBe('nosniff');
  if (reply.status >= 400) {
    expect(reply.body).toEqual({ success: false, error: { code: expect.stringMatching(/^[a-z]+(_[a-z]+)*$/), message: expect.any(String) } });
  } else {
    expect(reply.body.success).toBe(true);
  }
}

// Header values must be visible ASCII for Node's HTTP client to send them at all.
const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength: 300 });
const anyValue = fc.oneof(fc.jsonValue(), fc.string(), fc.constant(null), fc.array(fc.string()), fc.dictionary(fc.string(), fc.jsonValue()));
const emailish = fc.oneof(fc.emailAddress(), fc.string({ maxLength: 400 }), fc.constant(''), fc.constant(' A@B.CO '));
const secretish = fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 100 }), fc.constant('\u0000'), fc.constant(''));

/** Bodies: arbitrary JSON text, raw garbage, and objects that nearly fit each endpoint. */
const body = fc.oneof(
  anyValue.map((value) => JSON.stringify(value) ?? ''),
  fc.string({ maxLength: 500 }),
  fc.record({ email: fc.oneof(emailish, anyValue), password: fc.oneof(secretish, anyValue) }, { requiredKeys: [] }).map((value) => JSON.stringify(value)),
  fc.record({ refresh_token: fc.oneof(secretish.map((s) => `rt_${s}`), anyValue), scope: fc.oneof(fc.constantFrom('local', 'global', 'all'), anyValue) }, { requiredKeys: [] }).map((value) => JSON.stringify(value)),
);
const authorization = fc.oneof(
  headerText,
  headerText.map((text) => `Bearer ${text}`),
  fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map(([a, b, c]) => `bearer eyJ${a}.eyJ${b}.${c}`),
  fc.constant('Bearer'),
);
const headers = fc.record(
  {
    // Only well-formed media types: serverless-offline's HTTP server (unlike API Gateway) refuses
    // a malformed Content-Type itself, before any Lambda runs. Ours ignore the header anyway.
    'content-type': fc.oneof(
      fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream'),
      fc.tuple(fc.stringMatching(/^[a-z]{1,10}$/), fc.stringMatching(/^[a-z0-9.+-]{1,20}$/)).map(([type, subtype]) => `${type}/${subtype}`),
    ),
    authorization,
    'x-forwarded-for': headerText,
    origin: headerText,
  },
  { requiredKeys: [] },
);

const RUNS = 1000;

describe('fuzzing every endpoint with random bodies and headers (fast-check)', () => {
  it.each([
    ['POST', '/login', '127.0.0.40'],
    ['POST', '/refresh', '127.0.0.41'],
    ['POST', '/logout', '127.0.0.42'],
    ['GET', '/me', '127.0.0.43'],
  ])(`answers ${RUNS} random %s %s requests without a 5xx and with a well-formed body`, async (method, path, sourceIp) => {
    await fc.assert(
      fc.asyncProperty(body, headers, async (payload, sentHeaders) => {
        const reply = await requestFrom(sourceIp, method, path, { body: method === 'GET' ? undefined : payload, headers: sentHeaders });
        expectWellFormed(reply);
      }),
      { numRuns: RUNS },
    );
  }, 180_000);
});
