import { createHash, createHmac, createSecretKey, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { SignJWT, errors, jwtVerify, type JWTHeaderParameters } from 'jose';
import type { SigningKeys } from '../platform/config.js';
import { ApiError, bearerError } from '../platform/errors.js';
import { oncePer } from '../platform/memo.js';
import type { KeyRing } from './signing-keys.js';
import { AUTH_METHODS, PASSWORD_ONLY, type AuthMethod } from '../store/sessions.js';
import {
  ID_LENGTH_BYTES,
  digestsEqual,
  sessionIdFromBytes,
  sessionIdToBytes,
  userIdFromBytes,
  userIdToBytes,
} from '../platform/ids.js';

export type Clock = () => Date;


export interface AccessTokenClaims {
  sub: string;
  sid: string;
  role: string;
  amr: AuthMethod[];
  jti: string;
  iat: number;
  exp: number;
}

export interface AccessTokenOptions {
  keyRing: KeyRing;
  issuer: string;
  audience: string;
  ttlSeconds: number;
  clock?: Clock;
}

const ALGORITHM = 'HS256';
/** RFC 8725 asks for a small leeway only; 30 s absorbs clock skew between Lambdas and callers. */
export const CLOCK_TOLERANCE_SECONDS = 30;

/**
 * Access tokens: HS256 JWTs signed with the current key of the ring, verified with whichever key
 * their `kid` names. The only place that signs or verifies a JWT.
 */
export class AccessTokens {
  private readonly clock: Clock;

  constructor(private readonly options: AccessTokenOptions) {
    this.clock = options.clock ?? (() => new Date());
  }

  get ttlSeconds(): number {
    return this.options.ttlSeconds;
  }

  async sign(subject: { userId: string; sessionId: string; role: string; amr?: readonly AuthMethod[] }): Promise<string> {
    const ring = await this.options.keyRing.current();
    const kid = ring.currentKid;
    const iat = Math.floor(this.clock().getTime() / 1000);
    // Header members in this order so every token starts with the same bytes: {"alg":"HS256","typ":"JWT","kid":…}
    return new SignJWT({ sid: subject.sessionId, role: subject.role, amr: [...(subject.amr ?? PASSWORD_ONLY)] })
      .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT', kid })
      .setIssuer(this.options.issuer)
      .setAudience(this.options.audience)
      .setSubject(subject.userId)
      .setJti(randomBytes(16).toString('base64url'))
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.options.ttlSeconds)
      .sign(keyObjectsOf(ring).get(kid)!);
  }

  /**
   * Verify signature, algorithm, type, issuer, audience and times. Every failure becomes one
   * 401: `token_expired` for a genuine but expired token, `invalid_token` for anything else.
   */
  async verify(token: string): Promise<AccessTokenClaims> {
    try {
      const { payload } = await jwtVerify(token, async (header: JWTHeaderParameters) => this.keyFor(header), {
        algorithms: [ALGORITHM],
        typ: 'JWT',
        issuer: this.options.issuer,
        audience: this.options.audience,
        requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        // Also refuses an `iat` in the future, and caps any token at the configured lifetime.
        maxTokenAge: this.options.ttlSeconds,
        currentDate: this.clock(),
      });
      const { sub, sid, role, jti, iat, exp, amr = PASSWORD_ONLY } = payload;
      const methods = Array.isArray(amr) && amr.length > 0 && amr.every((method) => (AUTH_METHODS as readonly unknown[]).includes(method)) ? (amr as AuthMethod[]) : undefined;
      if (typeof sub !== 'string' || typeof sid !== 'string' || typeof role !== 'string' || typeof jti !== 'string' || !methods) {
        throw new errors.JWTClaimValidationFailed('unexpected claim types', payload);
      }
      return { sub, sid, role, amr: [...methods], jti, iat: iat!, exp: exp! };
    } catch (error) {
      // The key ring could not be read (503): not the token's fault.
      if (error instanceof ApiError) throw error;
      // JWTExpired is only raised after the signature checked out, so it never vouches for a forgery.
      throw bearerError(error instanceof errors.JWTExpired ? 'token_expired' : 'invalid_token', true);
    }
  }

  private async keyFor(header: JWTHeaderParameters): Promise<KeyObject> {
    const key = typeof header.kid === 'string' ? keyObjectsOf(await this.options.keyRing.including(header.kid)).get(header.kid) : undefined;
    if (!key) throw new errors.JWSSignatureVerificationFailed('unknown kid');
    return key;
  }
}

/** A ring's keys as KeyObjects, made once for each ring the key source hands out. */
const keyObjectsOf = oncePer((ring: SigningKeys): ReadonlyMap<string, KeyObject> => new Map([...ring.keys].map(([kid, bytes]) => [kid, createSecretKey(bytes)])));

/**
 * Refresh tokens: `rt_` + base64url(session id ‖ user id ‖ 256-bit secret). The ids let one
 * BatchGetItem fetch the session and its user; only SHA-256(secret) is ever stored.
 */
export interface RefreshToken {
  sessionId: string;
  userId: string;
  secret: Buffer;
}

const REFRESH_PREFIX = 'rt_';
const SECRET_BYTES = 32;
const REFRESH_BYTES = 2 * ID_LENGTH_BYTES + SECRET_BYTES;
const REFRESH_TOKEN_LENGTH = REFRESH_PREFIX.length + Math.ceil((REFRESH_BYTES * 4) / 3);

/** 256 random bits: a secret no rotation key vouches for (what a guess looks like). */
export function newRefreshSecret(): Buffer {
  return randomBytes(SECRET_BYTES);
}

/** Per kid, the key refresh secrets are derived and vouched for with: kept apart from the JWT signing use. */
export type RotationKeys = ReadonlyMap<string, Uint8Array>;

/** Derived once for each ring the key source hands out. */
export const rotationKeysOf = oncePer(
  (ring: SigningKeys): RotationKeys =>
    new Map([...ring.keys].map(([kid, secret]) => [kid, new Uint8Array(hkdfSync('sha256', secret, new Uint8Array(0), 'vpn-auth refresh-token rotation', 32))])),
);

/**
 * Every refresh secret we issue is `nonce (128 bits) ‖ tag (128 bits)`, the tag an HMAC of the
 * session id and the nonce under the rotation key. A secret that nobody issued fails the tag in
 * one HMAC, so proving a presented token spent (a walk of up to 10,000 steps) is only ever paid
 * for a token this service really issued; a guess costs what a normal refresh costs.
 */
const NONCE_BYTES = SECRET_BYTES / 2;

function secretTag(rotationKey: Uint8Array, sessionId: string, nonce: Buffer): Buffer {
  return createHmac('sha256', rotationKey).update('refresh-tag\0').update(sessionId).update('\0').update(nonce).digest().subarray(0, SECRET_BYTES - NONCE_BYTES);
}

function vouchedSecret(rotationKey: Uint8Array, sessionId: string, nonce: Buffer): Buffer {
  return Buffer.concat([nonce, secretTag(rotationKey, sessionId, nonce)]);
}

/** The first refresh secret of a new session: a random nonce, vouched for by the rotation key. */
export function issueRefreshSecret(rotationKey: Uint8Array, sessionId: string): Buffer {
  return vouchedSecret(rotationKey, sessionId, randomBytes(NONCE_BYTES));
}

/** Whether `secret` was issued for this session under this rotation key (constant time). */
export function isIssuedSecret(rotationKey: Uint8Array, sessionId: string, secret: Buffer): boolean {
  if (secret.length !== SECRET_BYTES) return false;
  return timingSafeEqual(secret.subarray(NONCE_BYTES), secretTag(rotationKey, sessionId, secret.subarray(0, NONCE_BYTES)));
}

export function formatRefreshToken(token: RefreshToken): string {
  const packed = Buffer.concat([sessionIdToBytes(token.sessionId)!, userIdToBytes(token.userId)!, token.secret]);
  return REFRESH_PREFIX + packed.toString('base64url');
}

/** The parts of a well-formed refresh token, or undefined for anything else. */
export function parseRefreshToken(value: string): RefreshToken | undefined {
  if (!value.startsWith(REFRESH_PREFIX) || value.length !== REFRESH_TOKEN_LENGTH) return undefined;
  const body = value.slice(REFRESH_PREFIX.length);
  const packed = Buffer.from(body, 'base64url');
  if (packed.length !== REFRESH_BYTES || packed.toString('base64url') !== body) return undefined;
  return {
    sessionId: sessionIdFromBytes(packed.subarray(0, ID_LENGTH_BYTES)),
    userId: userIdFromBytes(packed.subarray(ID_LENGTH_BYTES, 2 * ID_LENGTH_BYTES)),
    secret: packed.subarray(2 * ID_LENGTH_BYTES),
  };
}

export function hashRefreshSecret(secret: Buffer): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/** Two refresh-secret hashes compared in constant time. */
export const refreshHashesEqual = digestsEqual;

/**
 * The secret that replaces `secret` at rotation. Derived, not random, so that racing refreshes
 * of one token (two tabs, a retried request) all converge on the same successor; keyed with a
 * server key so that holding an old token does not let anyone compute its successors.
 */
export function successorSecret(rotationKey: Uint8Array, sessionId: string, secret: Buffer): Buffer {
  const nonce = createHmac('sha256', rotationKey).update('refresh-rotation\0').update(sessionId).update('\0').update(secret).digest().subarray(0, NONCE_BYTES);
  return vouchedSecret(rotationKey, sessionId, nonce);
}
