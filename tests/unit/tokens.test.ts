import { createHash, createHmac } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseSigningKeys, type SigningKeys } from '../../lib/platform/config.js';
import { newDeviceToken, parseDeviceToken } from '../../lib/store/device-tokens.js';
import { ApiError } from '../../lib/platform/errors.js';
import { newSessionId, newUserId } from '../../lib/platform/ids.js';
import { FixedKeyRing } from '../../lib/auth/signing-keys.js';
import {
  AccessTokens,
  formatRefreshToken,
  hashRefreshSecret,
  isIssuedSecret,
  issueRefreshSecret,
  newRefreshSecret,
  parseRefreshToken,
  refreshHashesEqual,
  successorSecret,
} from '../../lib/auth/tokens.js';

const SECRET = 'unit-test-signing-secret-0123456789abcdef';
const OTHER_SECRET = 'another-signing-secret-of-enough-bytes-42';
const ISSUER = 'vpn-enterprise-auth';
const AUDIENCE = 'vpn-enterprise';
const TTL_SECONDS = 900;
const T0 = new Date('2026-01-15T12:00:00.000Z');
const T0_SECONDS = T0.getTime() / 1000;

const KEYS = parseSigningKeys(SECRET);
const KID = KEYS.currentKid;
const SUBJECT = { userId: 'usr_AAAAAAAAAAAAAAAAAAAAAA', sessionId: 'BBBBBBBBBBBBBBBBBBBBBB', role: 'user' };

function accessTokens(at: Date = T0, signingKeys: SigningKeys = KEYS): AccessTokens {
  return new AccessTokens({ keyRing: new FixedKeyRing(signingKeys), issuer: ISSUER, audience: AUDIENCE, ttlSeconds: TTL_SECONDS, clock: () => at });
}

function secondsAfter(date: Date, seconds: number): Date {
  return new Date(date.getTime() + seconds * 1000);
}

function base64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodePart(token: string, index: number): string {
  return Buffer.from(token.split('.')[index]!, 'base64url').toString('utf8');
}

/** Claims that AccessTokens would accept at T0; each test breaks one thing. */
function validClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sid: SUBJECT.sessionId,
    role: SUBJECT.role,
    iss: ISSUER,
    aud: AUDIENCE,
    sub: SUBJECT.userId,
    jti: 'jti-0123456789',
    iat: T0_SECONDS,
    exp: T0_SECONDS + TTL_SECONDS,
    ...overrides,
  };
}

/** An HS256 JWT built by hand, so header and claims can be anything a forger might send. */
function handSigned(header: Record<string, unknown>, payload: Record<string, unknown>, secret: string = SECRET): string {
  const input = `${base64urlJson(header)}.${base64urlJson(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const VALID_HEADER = { alg: 'HS256', typ: 'JWT', kid: KID };

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(
    () => expect.fail('expected the promise to reject'),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
}

async function expectInvalidToken(token: string, verifier: AccessTokens = accessTokens()): Promise<void> {
  const error = await rejection(verifier.verify(token));
  expect(error.code).toBe('invalid_token');
  expect(error.status).toBe(401);
  expect(error.headers['WWW-Authenticate']).toContain('error="invalid_token"');
}

describe('AccessTokens.sign and verify', () => {
  it('round-trips the subject, session, role and times, with exp = iat + ttl', async () => {
    // Prepare
    const tokens = accessTokens();

    // Act
    const token = await tokens.sign(SUBJECT);
    const claims = await tokens.verify(token);

    // Assess
    expect(claims).toEqual({
      sub: SUBJECT.userId,
      sid: SUBJECT.sessionId,
      role: SUBJECT.role,
      amr: ['pwd'],
      jti: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      iat: T0_SECONDS,
      exp: T0_SECONDS + TTL_SECONDS,
    });
    expect(tokens.ttlSeconds).toBe(TTL_SECONDS);
  });

  it('gives every token its own jti', async () => {
    // Prepare
    const tokens = accessTokens();

    // Act
    const [first, second] = await Promise.all([tokens.sign(SUBJECT), tokens.sign(SUBJECT)]);

    // Assess
    const [a, b] = await Promise.all([tokens.verify(first), tokens.verify(second)]);
    expect(a.jti).not.toBe(b.jti);
  });

  it('writes the protected header exactly as {"alg":"HS256","typ":"JWT","kid":…}, in that order', async () => {
    // Act
    const token = await accessTokens().sign(SUBJECT);

    // Assess
    expect(decodePart(token, 0)).toBe(`{"alg":"HS256","typ":"JWT","kid":"${KID}"}`);
    expect(token.startsWith('eyJhbGciOiJIUzI1NiIs')).toBe(true);
  });

  it('puts the issuer and audience in the claims', async () => {
    // Act
    const token = await accessTokens().sign(SUBJECT);

    // Assess
    expect(JSON.parse(decodePart(token, 1))).toMatchObject({ iss: ISSUER, aud: AUDIENCE });
  });

  it('accepts a hand-built token with valid claims (so the forgeries below fail for their own reason)', async () => {
    // Act
    const claims = await accessTokens().verify(handSigned(VALID_HEADER, validClaims()));

    // Assess
    expect(claims.sub).toBe(SUBJECT.userId);
  });
});

describe('AccessTokens.verify times', () => {
  it('answers token_expired, with an invalid_token challenge, once the clock is past exp + 30 s', async () => {
    // Prepare
    const token = await accessTokens().sign(SUBJECT);
    const later = accessTokens(secondsAfter(T0, TTL_SECONDS + 31));

    // Act
    const error = await rejection(later.verify(token));

    // Assess
    expect(error.code).toBe('token_expired');
    expect(error.status).toBe(401);
    expect(error.headers['WWW-Authenticate']).toContain('error="invalid_token"');
    expect(error.headers['WWW-Authenticate']).toContain('realm="vpn-enterprise"');
  });

  it('still accepts a token within the 30 s leeway after exp', async () => {
    // Prepare
    const token = await accessTokens().sign(SUBJECT);
    const slightlyLater = accessTokens(secondsAfter(T0, TTL_SECONDS + 29));

    // Act
    const claims = await slightlyLater.verify(token);

    // Assess
    expect(claims.exp).toBe(T0_SECONDS + TTL_SECONDS);
  });

  it('refuses a token whose nbf is 5 minutes in the future', async () => {
    await expectInvalidToken(handSigned(VALID_HEADER, validClaims({ nbf: T0_SECONDS + 300 })));
  });

  // jose checks `iat` against the clock only when maxTokenAge is set; verify() sets it.
  it('refuses a token whose iat is 5 minutes in the future', async () => {
    await expectInvalidToken(
      handSigned(VALID_HEADER, validClaims({ iat: T0_SECONDS + 300, exp: T0_SECONDS + 300 + TTL_SECONDS })),
    );
  });
});

describe('AccessTokens.verify refuses forged or foreign tokens as invalid_token', () => {
  it('refuses a token for another issuer', async () => {
    // Prepare
    const foreign = new AccessTokens({ keyRing: new FixedKeyRing(KEYS), issuer: 'someone-else', audience: AUDIENCE, ttlSeconds: TTL_SECONDS, clock: () => T0 });

    // Act + Assess
    await expectInvalidToken(await foreign.sign(SUBJECT));
  });

  it('refuses a token for another audience', async () => {
    // Prepare
    const foreign = new AccessTokens({ keyRing: new FixedKeyRing(KEYS), issuer: ISSUER, audience: 'another-api', ttlSeconds: TTL_SECONDS, clock: () => T0 });

    // Act + Assess
    await expectInvalidToken(await foreign.sign(SUBJECT));
  });

  it.each(['none', 'None', 'NONE'])('refuses an unsigned token with alg "%s"', async (alg) => {
    // Prepare
    const token = `${base64urlJson({ alg, typ: 'JWT', kid: KID })}.${base64urlJson(validClaims())}.`;

    // Act + Assess
    await expectInvalidToken(token);
  });

  it('refuses a token whose payload was changed (role -> admin) under the original signature', async () => {
    // Prepare
    const [header, payload, signature] = (await accessTokens().sign(SUBJECT)).split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const tampered = `${header}.${base64urlJson({ ...claims, role: 'admin' })}.${signature}`;

    // Act + Assess
    await expectInvalidToken(tampered);
  });

  it('refuses a token whose signature was stripped', async () => {
    // Prepare
    const [header, payload] = (await accessTokens().sign(SUBJECT)).split('.');

    // Act + Assess
    await expectInvalidToken(`${header}.${payload}.`);
    await expectInvalidToken(`${header}.${payload}`);
  });

  it('refuses an HS512 token signed with the same secret', async () => {
    // Prepare
    const token = await new SignJWT({ sid: SUBJECT.sessionId, role: SUBJECT.role })
      .setProtectedHeader({ alg: 'HS512', typ: 'JWT', kid: KID })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(SUBJECT.userId)
      .setJti('jti-0123456789')
      .setIssuedAt(T0_SECONDS)
      .setExpirationTime(T0_SECONDS + TTL_SECONDS)
      .sign(KEYS.keys.get(KID)!);

    // Act + Assess
    await expectInvalidToken(token);
  });

  it('refuses a token signed with a different secret under the same kid', async () => {
    // Prepare
    const impostorKeys: SigningKeys = { currentKid: KID, keys: new Map([[KID, new TextEncoder().encode(OTHER_SECRET)]]) };
    const token = await accessTokens(T0, impostorKeys).sign(SUBJECT);

    // Act + Assess
    expect(decodePart(token, 0)).toContain(`"kid":"${KID}"`);
    await expectInvalidToken(token);
  });

  it('refuses a token with an unknown kid', async () => {
    await expectInvalidToken(handSigned({ ...VALID_HEADER, kid: 'unknown' }, validClaims()));
  });

  it('refuses a token without a kid', async () => {
    await expectInvalidToken(handSigned({ alg: 'HS256', typ: 'JWT' }, validClaims()));
  });

  it.each(['at+jwt', 'JWS'])('refuses a token whose typ is "%s"', async (typ) => {
    await expectInvalidToken(handSigned({ ...VALID_HEADER, typ }, validClaims()));
  });

  it('refuses a token without typ', async () => {
    await expectInvalidToken(handSigned({ alg: 'HS256', kid: KID }, validClaims()));
  });

  it('refuses a token without a sid claim', async () => {
    // Prepare
    const { sid: _omitted, ...withoutSid } = validClaims();

    // Act + Assess
    await expectInvalidToken(handSigned(VALID_HEADER, withoutSid));
  });

  it('says how the session was signed in (amr, RFC 8176): a password alone unless told otherwise', async () => {
    // Prepare
    const tokens = accessTokens();

    // Act
    const twoFactor = await tokens.sign({ ...SUBJECT, amr: ['pwd', 'otp'] });

    // Assess
    expect(JSON.parse(decodePart(twoFactor, 1)).amr).toEqual(['pwd', 'otp']);
    expect((await tokens.verify(twoFactor)).amr).toEqual(['pwd', 'otp']);
    expect(JSON.parse(decodePart(await tokens.sign(SUBJECT), 1)).amr).toEqual(['pwd']);
    // A token from before amr was issued reads as a password alone
    expect((await tokens.verify(handSigned(VALID_HEADER, validClaims()))).amr).toEqual(['pwd']);
  });

  it.each([[['pwd', 'sms']], [[]], ['pwd'], [[1]]])('refuses a token whose amr is %j', async (amr) => {
    await expectInvalidToken(handSigned(VALID_HEADER, validClaims({ amr })));
  });

  it('refuses a token whose role is not a string', async () => {
    await expectInvalidToken(handSigned(VALID_HEADER, validClaims({ role: ['admin'] })));
  });

  it('refuses something that is not a JWT at all', async () => {
    await expectInvalidToken('not-a-jwt');
  });
});

describe('AccessTokens with a key ring (JWT_SECRET as JSON)', () => {
  const NEW_SECRET = 'the-new-signing-secret-after-rotation-1234';
  const OLD_SECRET = 'the-old-signing-secret-before-rotation-567';
  const ring = parseSigningKeys(JSON.stringify({ new: NEW_SECRET, old: OLD_SECRET }));

  it('verifies tokens signed before the rotation with the old key', async () => {
    // Prepare
    const beforeRotation = accessTokens(T0, parseSigningKeys(JSON.stringify({ old: OLD_SECRET })));
    const token = await beforeRotation.sign(SUBJECT);

    // Act
    const claims = await accessTokens(T0, ring).verify(token);

    // Assess
    expect(decodePart(token, 0)).toContain('"kid":"old"');
    expect(claims.sub).toBe(SUBJECT.userId);
  });

  it('signs new tokens with the first key, kid "new"', async () => {
    // Prepare
    const tokens = accessTokens(T0, ring);

    // Act
    const token = await tokens.sign(SUBJECT);

    // Assess
    expect(JSON.parse(decodePart(token, 0))).toEqual({ alg: 'HS256', typ: 'JWT', kid: 'new' });
    await expect(tokens.verify(token)).resolves.toMatchObject({ sub: SUBJECT.userId });
    // A verifier that only knows the old key cannot check it: the new key really signed it.
    await expectInvalidToken(token, accessTokens(T0, parseSigningKeys(JSON.stringify({ old: OLD_SECRET }))));
  });
});

describe('refresh tokens', () => {
  const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

  function freshToken() {
    const parts = { sessionId: newSessionId(), userId: newUserId(), secret: newRefreshSecret() };
    return { parts, token: formatRefreshToken(parts) };
  }

  it('formats rt_ + 86 base64url characters (64 bytes) and parses back to the same parts', () => {
    // Prepare
    const { parts, token } = freshToken();

    // Act
    const parsed = parseRefreshToken(token);

    // Assess
    expect(token).toMatch(/^rt_[A-Za-z0-9_-]{86}$/);
    expect(parsed).toBeDefined();
    expect(parsed?.sessionId).toBe(parts.sessionId);
    expect(parsed?.userId).toBe(parts.userId);
    expect(parsed?.secret.toString('hex')).toBe(parts.secret.toString('hex'));
  });

  it('draws a new 32-byte secret each time', () => {
    // Act
    const first = newRefreshSecret();
    const second = newRefreshSecret();

    // Assess
    expect(first).toHaveLength(32);
    expect(first.equals(second)).toBe(false);
  });

  it.each([
    ['a wrong prefix', (token: string) => `rx_${token.slice(3)}`],
    ['an upper-case prefix', (token: string) => `RT_${token.slice(3)}`],
    ['no prefix', (token: string) => token.slice(3)],
    ['one character too few', (token: string) => token.slice(0, -1)],
    ['one character too many', (token: string) => `${token}A`],
    ['a "!" inside', (token: string) => `${token.slice(0, 40)}!${token.slice(41)}`],
    ['a "+" inside (base64, not base64url)', (token: string) => `${token.slice(0, 40)}+${token.slice(41)}`],
    ['a "/" inside (base64, not base64url)', (token: string) => `${token.slice(0, 40)}/${token.slice(41)}`],
    ['padding', (token: string) => `${token.slice(0, -1)}=`],
    ['white space', (token: string) => `${token.slice(0, 40)} ${token.slice(41)}`],
  ])('rejects a token with %s', (_case, mangle) => {
    // Prepare
    const { token } = freshToken();

    // Act + Assess
    expect(parseRefreshToken(mangle(token))).toBeUndefined();
  });

  it('rejects a non-canonical encoding of the same bytes', () => {
    // Prepare: 64 bytes end in one lone byte, whose second character carries 4 unused bits.
    const { token } = freshToken();
    const last = BASE64URL.indexOf(token.at(-1)!);
    expect(last % 16).toBe(0);
    const nonCanonical = token.slice(0, -1) + BASE64URL[last + 1];
    expect(Buffer.from(nonCanonical.slice(3), 'base64url').equals(Buffer.from(token.slice(3), 'base64url'))).toBe(true);

    // Act + Assess
    expect(parseRefreshToken(nonCanonical)).toBeUndefined();
  });

  it('hashes the secret with SHA-256 into base64url', () => {
    // Prepare
    const zeros = Buffer.alloc(32);

    // Act
    const hash = hashRefreshSecret(zeros);

    // Assess: SHA-256 of 32 zero bytes
    expect(hash).toBe('Zmh6rfhivXdsj8GLjp-OIAiXFIVu4jOzkCpZHQ1fKSU');
    expect(hash).toBe(createHash('sha256').update(zeros).digest('base64url'));
  });

  it('gives different secrets different hashes, and one secret always the same', () => {
    // Prepare
    const a = newRefreshSecret();
    const b = newRefreshSecret();

    // Act + Assess
    expect(hashRefreshSecret(a)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(hashRefreshSecret(a)).not.toBe(hashRefreshSecret(b));
    expect(hashRefreshSecret(Buffer.from(a))).toBe(hashRefreshSecret(a));
  });

  it('compares hashes: equal, different, and different length (without throwing)', () => {
    // Prepare
    const secret = newRefreshSecret();
    const hash = hashRefreshSecret(secret);
    const other = hashRefreshSecret(newRefreshSecret());

    // Act + Assess
    expect(refreshHashesEqual(hash, hashRefreshSecret(Buffer.from(secret)))).toBe(true);
    expect(refreshHashesEqual(hash, other)).toBe(false);
    expect(refreshHashesEqual(hash, hash.slice(0, -1))).toBe(false);
    expect(refreshHashesEqual(hash, '')).toBe(false);
  });

  describe('successorSecret', () => {
    const rotationKey = new TextEncoder().encode(SECRET);
    const sessionId = newSessionId();
    const secret = newRefreshSecret();

    it('is deterministic for the same key, session and secret', () => {
      // Act
      const first = successorSecret(rotationKey, sessionId, secret);
      const second = successorSecret(Uint8Array.from(rotationKey), sessionId, Buffer.from(secret));

      // Assess
      expect(first).toHaveLength(32);
      expect(first.equals(second)).toBe(true);
      expect(first.equals(secret)).toBe(false);
    });

    it.each([
      ['the key', () => successorSecret(new TextEncoder().encode(OTHER_SECRET), sessionId, secret)],
      ['the session', () => successorSecret(rotationKey, newSessionId(), secret)],
      ['the secret', () => successorSecret(rotationKey, sessionId, newRefreshSecret())],
    ])('changes when %s changes', (_what, derive) => {
      // Prepare
      const reference = successorSecret(rotationKey, sessionId, secret);

      // Act + Assess
      expect(derive().equals(reference)).toBe(false);
    });

    it('chains: the successor of a successor is new again', () => {
      // Act
      const next = successorSecret(rotationKey, sessionId, secret);
      const afterNext = successorSecret(rotationKey, sessionId, next);

      // Assess
      expect(afterNext.equals(next)).toBe(false);
      expect(afterNext.equals(secret)).toBe(false);
    });
  });
});

describe('issued refresh secrets carry a tag of the rotation key', () => {
  const rotationKey = new TextEncoder().encode('a-rotation-key-of-at-least-32-bytes!!');
  const sessionId = newSessionId();

  it('vouches for every secret issued or derived for the session, and for nothing else', () => {
    const issued = issueRefreshSecret(rotationKey, sessionId);
    const next = successorSecret(rotationKey, sessionId, issued);
    expect(issued).toHaveLength(32);
    expect(isIssuedSecret(rotationKey, sessionId, issued)).toBe(true);
    expect(isIssuedSecret(rotationKey, sessionId, next)).toBe(true);
    expect(isIssuedSecret(rotationKey, sessionId, newRefreshSecret())).toBe(false);
    expect(isIssuedSecret(rotationKey, newSessionId(), issued)).toBe(false);
    expect(isIssuedSecret(new TextEncoder().encode('another-rotation-key-of-32-bytes!!!!'), sessionId, issued)).toBe(false);
    const flipped = Buffer.from(issued);
    flipped[0]! ^= 1;
    expect(isIssuedSecret(rotationKey, sessionId, flipped)).toBe(false);
    expect(isIssuedSecret(rotationKey, sessionId, issued.subarray(0, 31))).toBe(false);
  });

  it('issues a different secret every time', () => {
    expect(issueRefreshSecret(rotationKey, sessionId).equals(issueRefreshSecret(rotationKey, sessionId))).toBe(false);
  });
});

describe('device tokens', () => {
  it('is dt_ + base64url(user id, 256 random bits), parsed back to the user and a hash of the whole token', () => {
    const userId = newUserId();
    const made = newDeviceToken(userId);
    expect(made.token).toMatch(/^dt_[A-Za-z0-9_-]{64}$/);
    expect(Buffer.from(made.token.slice(3), 'base64url').subarray(16)).toHaveLength(32);
    expect(parseDeviceToken(made.token)).toEqual({ userId, hash: made.hash });
    expect(made.hash).not.toContain(made.token.slice(3));
    expect(newDeviceToken(userId).token).not.toBe(made.token);
  });

  it.each(['', 'dt_', 'dt_short', `rt_${'A'.repeat(64)}`, `dt_${'A'.repeat(63)}=`, `dt_${'A'.repeat(65)}`, `dt_${'A'.repeat(63)}+`, `dt_${'A'.repeat(63)}\n`])('refuses %j as no token', (value) => {
    expect(parseDeviceToken(value)).toBeUndefined();
  });
});
