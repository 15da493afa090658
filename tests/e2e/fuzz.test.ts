import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { crc32Base64url } from '../../lib/platform/checksum.js';
import { apiUrl } from '../support/context.js';
import { e2eApp, login, requestFrom, type SourcedReply } from '../support/http.js';
import { createUser } from '../support/store.js';
import { randomBytes } from 'node:crypto';
import { afterAll } from 'vitest';
import { sealClientSecret } from '../../lib/auth/identity-providers.js';
import { SsoRepository } from '../../lib/store/sso.js';
import { SSO_TEST_REDIRECT_URIS } from '../support/api-setup.js';
import { apiEnv } from '../support/context.js';
import { startTestIdp, type TestIdp } from '../support/oidc-idp.js';

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

  // Single sign-on: random queries (a few of them for a domain connected to a real IdP, so that
  // well-formed ones reach it) and random bodies; the two GETs may answer 302, always without a body.
  describe('single sign-on', () => {
    let idp: TestIdp;
    let domain = '';
    beforeAll(async () => {
      const base = apiEnv().PUBLIC_BASE_URL!;
      idp = await startTestIdp({ callbackUrl: `${base}/v1/auth/sso/callback`, backchannelLogoutUrl: `${base}/v1/auth/sso/backchannel-logout` });
      domain = `fuzz-${randomBytes(3).toString('hex')}.sso.test`;
      const app = e2eApp();
      await new SsoRepository(app.db, app.config.usersTable, app.config.attemptsTable).addConnection({
        domain,
        issuer: idp.issuer,
        clientId: idp.clientId,
        sealedClientSecret: sealClientSecret(await app.mfaKeyRing!.current(), idp.clientSecret, domain),
        enforce: false,
        adminGroup: undefined,
        groupsClaim: 'groups',
        createdAt: new Date().toISOString(),
      });
    });
    afterAll(() => idp?.close());

    const pkceish = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{43}$/), fc.string({ maxLength: 200 }));
    const query = (fields: Record<string, fc.Arbitrary<string>>) =>
      fc.record(fields, { requiredKeys: [] }).map((params) => `?${new URLSearchParams(params as Record<string, string>).toString()}`);
    const authorizeQuery = fc.oneof(
      fc.string({ maxLength: 300 }).map((text) => `?${encodeURI(text)}`),
      query({
        email: fc.oneof(emailish, fc.constant('someone@DOMAIN')),
        domain: fc.oneof(fc.domain(), fc.constant('DOMAIN'), fc.string({ maxLength: 30 })),
        redirect_uri: fc.oneof(fc.constantFrom(...SSO_TEST_REDIRECT_URIS, 'http://127.0.0.1:4711/sso/desktop', 'http://localhost/sso/desktop'), fc.webUrl(), fc.string({ maxLength: 100 })),
        state: fc.string({ maxLength: 600 }),
        code_challenge: pkceish,
        code_challenge_method: fc.oneof(fc.constantFrom('S256', 'plain', 's256'), fc.string({ maxLength: 10 })),
      }),
      // Well-formed but for the state and the email's local part: these reach the IdP's discovery and answer 302.
      fc.tuple(fc.string({ minLength: 1, maxLength: 500 }), fc.stringMatching(/^[a-z0-9.]{1,20}$/), fc.stringMatching(/^[A-Za-z0-9_-]{43}$/)).map(
        ([state, local, challenge]) => `?${new URLSearchParams({ email: `${local}@DOMAIN`, redirect_uri: SSO_TEST_REDIRECT_URIS[0]!, state, code_challenge: challenge, code_challenge_method: 'S256' })}`,
      ),
    );
    const callbackQuery = fc.oneof(
      fc.string({ maxLength: 300 }).map((text) => `?${encodeURI(text)}`),
      query({ state: fc.oneof(fc.string({ maxLength: 600 }), fc.stringMatching(/^[A-Za-z0-9_-]{43}$/)), code: fc.string({ maxLength: 200 }), iss: fc.oneof(fc.webUrl(), fc.string()), error: fc.string({ maxLength: 50 }) }),
    );
    const tokenBody = fc.oneof(
      body,
      fc.record({ code: fc.oneof(secretish.map((s) => `sc_${s}`), fc.stringMatching(/^sc_[A-Za-z0-9_-]{64}$/), anyValue), code_verifier: fc.oneof(pkceish, anyValue) }, { requiredKeys: [] }).map((value) => JSON.stringify(value)),
    );
    const jwtish = fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map(([a, b, c]) => `eyJ${a}.eyJ${b}.${c}`.replace(/[+/=]/g, ''));
    const formBody = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.record({ logout_token: fc.oneof(jwtish, fc.string({ maxLength: 300 })), other: fc.string({ maxLength: 20 }) }, { requiredKeys: [] }).map((fields) => new URLSearchParams(fields as Record<string, string>).toString()),
      fc.constant('logout_token=a&logout_token=b'),
    );

    it.each([
      ['GET', '/sso/authorize', authorizeQuery, '127.0.0.55'],
      ['GET', '/sso/callback', callbackQuery, '127.0.0.56'],
    ] as const)(`answers ${RUNS / 8} random %s %s requests without a 5xx: a JSON refusal, or a 302 with no body`, async (method, path, queries, sourceIp) => {
      await fc.assert(
        fc.asyncProperty(queries, headers, async (search, sentHeaders) => {
          const reply = await requestFrom(sourceIp, method, `${path}${search.replaceAll('DOMAIN', domain)}`, { headers: sentHeaders, recordSecrets: false });
          if (reply.status === 302) {
            expect(reply.headers.location).toMatch(/^https?:\/\//);
            expect(reply.text).toBe('');
          } else expectWellFormed(reply);
        }),
        { numRuns: RUNS / 8 },
      );
    }, 180_000);

    it(`answers ${RUNS / 8} random POST /sso/token requests without a 5xx and with a well-formed body`, async () => {
      await fc.assert(
        fc.asyncProperty(tokenBody, headers, async (payload, sentHeaders) => {
          expectWellFormed(await requestFrom('127.0.0.57', 'POST', '/sso/token', { body: payload, headers: sentHeaders, recordSecrets: false }));
        }),
        { numRuns: RUNS / 8 },
      );
    }, 180_000);

    it(`answers ${RUNS / 8} random POST /sso/backchannel-logout requests without a 5xx and with a well-formed body`, async () => {
      await fc.assert(
        fc.asyncProperty(formBody, headers, fc.boolean(), async (payload, sentHeaders, asForm) => {
          const sent = asForm ? { ...sentHeaders, 'content-type': 'application/x-www-form-urlencoded' } : sentHeaders;
          expectWellFormed(await requestFrom('127.0.0.58', 'POST', '/sso/backchannel-logout', { body: payload, headers: sent, recordSecrets: false }));
        }),
        { numRuns: RUNS / 8 },
      );
    }, 180_000);
  });

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
