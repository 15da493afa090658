import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Ids are 128 random bits in base64url: unguessable, and packable into a refresh token. */
const ID_BYTES = 16;
const USER_PREFIX = 'usr_';

export function newUserId(): string {
  return USER_PREFIX + randomBytes(ID_BYTES).toString('base64url');
}

export function newSessionId(): string {
  return randomBytes(ID_BYTES).toString('base64url');
}

export function userIdToBytes(userId: string): Buffer | undefined {
  if (!userId.startsWith(USER_PREFIX)) return undefined;
  return idToBytes(userId.slice(USER_PREFIX.length));
}

export function userIdFromBytes(bytes: Buffer): string {
  return USER_PREFIX + bytes.toString('base64url');
}

export function sessionIdToBytes(sessionId: string): Buffer | undefined {
  return idToBytes(sessionId);
}

export function sessionIdFromBytes(bytes: Buffer): string {
  return bytes.toString('base64url');
}

function idToBytes(encoded: string): Buffer | undefined {
  const bytes = Buffer.from(encoded, 'base64url');
  // Canonical form only, so one id has exactly one spelling.
  return bytes.length === ID_BYTES && bytes.toString('base64url') === encoded ? bytes : undefined;
}

export const ID_LENGTH_BYTES = ID_BYTES;

/**
 * A token of one user's: `<prefix>` + base64url(user id ‖ 256 random bits). The user id inside lets
 * one read fetch the token's item and its user together; only SHA-256 of the whole token is stored.
 */
export interface UserToken {
  userId: string;
  /** SHA-256 of the token, base64url: the only form stored. */
  hash: string;
}

const USER_TOKEN_SECRET_BYTES = 32;
const USER_TOKEN_BYTES = ID_BYTES + USER_TOKEN_SECRET_BYTES;

/** Two secrets' digests (hashes, MACs) compared in constant time; different lengths are unequal, never a throw. */
export function digestsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export function newUserToken(prefix: string, userId: string): UserToken & { token: string } {
  const token = prefix + Buffer.concat([userIdToBytes(userId)!, randomBytes(USER_TOKEN_SECRET_BYTES)]).toString('base64url');
  return { token, userId, hash: tokenHash(token) };
}

/** The parts of a well-formed token with that prefix; undefined for anything else. */
export function parseUserToken(prefix: string, value: string): UserToken | undefined {
  if (!value.startsWith(prefix) || value.length !== prefix.length + Math.ceil((USER_TOKEN_BYTES * 4) / 3)) return undefined;
  const body = value.slice(prefix.length);
  const bytes = Buffer.from(body, 'base64url');
  if (bytes.length !== USER_TOKEN_BYTES || bytes.toString('base64url') !== body) return undefined;
  return { userId: userIdFromBytes(bytes.subarray(0, ID_BYTES)), hash: tokenHash(value) };
}
