import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { crc32Base64url } from '../../lib/platform/checksum.js';
import { apiUrl } from '../support/context.js';
import { e2eApp, login, requestFrom, type SourcedReply } from '../support/http.js';
import { createUser } from '../support/store.js';

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
  fc.record({ current_password: fc.oneof(secretish, anyValue), new_password: fc.oneof(secretish, anyValue) }, { requiredKeys: [] }).map((value) => JSON.stringify(value)),
  fc.record(
    {
      mfa_token: fc.oneof(secretish.map((s) => `mt_${s}`), fc.base64String().map((s) => `mt_${s.replace(/[+/=]/g, '')}`), anyValue),
      code: fc.oneof(fc.stringMatching(/^\d{6}$/), fc.stringMatching(/^[\d ]{1,12}$/), secretish, anyValue),
      recovery_code: fc.oneof(fc.stringMatching(/^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$/), secretish, anyValue),
      // A set-up by a session takes the current password
      current_password: fc.oneof(secretish, anyValue),
    },
    { requiredKeys: [] },
  ).map((value) => JSON.stringify(value)),
  fc.record(
    {
      name: fc.oneof(fc.string({ maxLength: 80 }), anyValue),
      expires_in_days: fc.oneof(fc.integer({ min: -5, max: 400 }), fc.double(), anyValue),
      role: fc.oneof(fc.constantFrom('admin', 'user', 'root'), anyValue),
    },
    { requiredKeys: [] },
  ).map((value) => JSON.stringify(value)),
);
/**
 * Random `vak_` strings: any text after the prefix, base64url of a key's length (a checksum that
 * almost never holds), and well-checksummed ones of random bytes (a read of a user that is not there).
 */
const base64url = fc.stringMatching(/^[A-Za-z0-9_-]{0,100}$/);
const apiKeyish = fc.oneof(
  headerText.map((text) => `vak_${text}`),
  base64url.map((text) => `vak_${text}`),
  fc.uint8Array({ minLength: 55, maxLength: 55 }).map((bytes) => {
    const unchecked = `vak_${Buffer.from(bytes).toString('base64url')}`;
    return unchecked + crc32Base64url(unchecked);
  }),
);
const authorization = fc.oneof(
  headerText,
  apiKeyish.map((key) => `Bearer ${key}`),
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
        const reply = await requestFrom(sourceIp, method, path, { body: method === 'GET' ? undefined : payload, headers: sentHeaders, recordSecrets: false });
        expectWellFormed(reply);
      }),
      { numRuns: RUNS },
    );
  }, 180_000);

  // The session endpoints: fewer runs; half of them with a live token, so the body and the path are
  // judged too (behind the bearer check).
  let liveToken = '';
  beforeAll(async () => {
    const user = await createUser(e2eApp());
    liveToken = (await login(user.email, user.password)).token;
  });
  it.each([
    ['GET', fc.constant('/sessions'), '127.0.0.44'],
    // Ids from the id alphabet, and a few odd ones.
    ['DELETE', fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/), fc.constantFrom('%20%20', '%2B', '%00', '%25', 'x'.repeat(300))).map((id) => `/sessions/${id}`), '127.0.0.45'],
    ['POST', fc.constant('/password'), '127.0.0.46'],
  ] as const)(`answers ${RUNS / 4} random %s requests without a 5xx and with a well-formed body`, async (method, path, sourceIp) => {
    await fuzzWithToken(method, path, sourceIp, RUNS / 4);
  }, 180_000);

  // The two-factor endpoints: fewer runs still (each shares its code with the others).
  it.each([
    ['POST', '/mfa/totp/setup', '127.0.0.47'],
    ['POST', '/mfa/totp/activate', '127.0.0.48'],
    ['POST', '/mfa/verify', '127.0.0.49'],
    ['POST', '/mfa/recovery-codes', '127.0.0.50'],
    ['DELETE', '/mfa/totp', '127.0.0.51'],
  ] as const)(`answers ${RUNS / 8} random %s %s requests without a 5xx and with a well-formed body`, async (method, path, sourceIp) => {
    await fuzzWithToken(method, fc.constant(path), sourceIp, RUNS / 8);
  }, 180_000);

  // The API-key endpoints (half of the runs with a live session's token: keys are made up to the limit).
  it.each([
    ['POST', fc.constant('/api-keys'), '127.0.0.52'],
    ['GET', fc.constant('/api-keys'), '127.0.0.53'],
    ['DELETE', fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/).map((id) => `ak_${id}`), fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/), fc.constantFrom('%20', '%00', 'x'.repeat(300))).map((id) => `/api-keys/${id}`), '127.0.0.54'],
  ] as const)(`answers ${RUNS / 8} random %s API-key requests without a 5xx and with a well-formed body`, async (method, path, sourceIp) => {
    await fuzzWithToken(method, path, sourceIp, RUNS / 8);
  }, 180_000);

  it(`lets the shared authorizer answer ${RUNS / 4} random vak_ keys with a refusal, never a 5xx`, async () => {
    await fc.assert(
      fc.asyncProperty(apiKeyish, async (key) => {
        const response = await fetch(`${apiUrl()}/v1/example/protected`, { headers: { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(20_000) });
        await response.text();
        expect(response.status).toBe(403);
      }),
      { numRuns: RUNS / 4 },
    );
  }, 180_000);

  /** Random requests, half of them with a live token. */
  async function fuzzWithToken(method: string, path: fc.Arbitrary<string>, sourceIp: string, runs: number): Promise<void> {
    await fc.assert(
      fc.asyncProperty(path, body, headers, fc.boolean(), async (target, payload, sentHeaders, live) => {
        const withToken = live ? { ...sentHeaders, authorization: `Bearer ${liveToken}` } : sentHeaders;
        const reply = await requestFrom(sourceIp, method, target, { body: method === 'GET' ? undefined : payload, headers: withToken, recordSecrets: false });
        expectWellFormed(reply);
      }),
      { numRuns: runs },
    );
  }
});
