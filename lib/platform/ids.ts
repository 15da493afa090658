import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { crc32Base64url } from './checksum.js';

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

/**
 * An API key's public id: `ak_` + base64url(user id ‖ slot ‖ 48 random bits). It names the key in
 * lists and in DELETE /api-keys/{id}, and the one item that holds the key (its user's slot); the
 * random part tells the key apart from a later one in the same slot. Not a secret.
 */
const API_KEY_ID_PREFIX = 'ak_';
const API_KEY_ID_RANDOM_BYTES = 6;
const API_KEY_ID_BYTES = ID_BYTES + 1 + API_KEY_ID_RANDOM_BYTES;
/** How many slots a user's keys may occupy at most (MAX_API_KEYS_PER_USER is at most this; one BatchGetItem reads 100 keys). */
export const MAX_API_KEY_SLOTS = 100;

export function newApiKeyId(userId: string, slot: number): string {
  return API_KEY_ID_PREFIX + Buffer.concat([userIdToBytes(userId)!, Buffer.of(slot), randomBytes(API_KEY_ID_RANDOM_BYTES)]).toString('base64url');
}

/** The user and slot named by an id's bytes; undefined when the slot is out of range. */
function slotOf(bytes: Buffer): { userId: string; slot: number } | undefined {
  const slot = bytes[ID_BYTES]!;
  return slot < MAX_API_KEY_SLOTS ? { userId: userIdFromBytes(bytes.subarray(0, ID_BYTES)), slot } : undefined;
}

/** The user and slot of a well-formed key id; undefined for anything else. */
export function parseApiKeyId(id: string): { userId: string; slot: number } | undefined {
  if (!id.startsWith(API_KEY_ID_PREFIX) || id.length !== API_KEY_ID_PREFIX.length + Math.ceil((API_KEY_ID_BYTES * 4) / 3)) return undefined;
  const body = id.slice(API_KEY_ID_PREFIX.length);
  const bytes = Buffer.from(body, 'base64url');
  if (bytes.length !== API_KEY_ID_BYTES || bytes.toString('base64url') !== body) return undefined;
  return slotOf(bytes);
}

/**
 * API keys: `vak_` + base64url(key id ‖ 256 random bits) + a checksum, the CRC-32 of everything
 * before it in base64url (6 characters), as GitHub's tokens carry one: a secret scanner can tell a
 * real key from noise offline, and a key with a wrong checksum or shape is refused before any
 * read. The key id (the bytes of its public `ak_` id) names the one item that holds the key's
 * hash. Only SHA-256 of the whole key is stored.
 */
export const API_KEY_PREFIX = 'vak_';
const API_KEY_SECRET_BYTES = 32;
const API_KEY_BODY_BYTES = API_KEY_ID_BYTES + API_KEY_SECRET_BYTES;
const API_KEY_BODY_LENGTH = Math.ceil((API_KEY_BODY_BYTES * 4) / 3);
const CHECKSUM_LENGTH = 6;
export const API_KEY_LENGTH = API_KEY_PREFIX.length + API_KEY_BODY_LENGTH + CHECKSUM_LENGTH;

export interface ParsedApiKey {
  /** Its public id (`ak_…`), read from the key itself. */
  keyId: string;
  userId: string;
  slot: number;
  /** SHA-256 of the key, base64url: the only form stored. */
  hash: string;
}

/** Whether a bearer value claims to be an API key (its prefix only: a session-only endpoint refuses it as such). */
export function looksLikeApiKey(value: string): boolean {
  return value.startsWith(API_KEY_PREFIX);
}

/** A new key for the key id `keyId` (from newApiKeyId). */
export function newApiKey(keyId: string): ParsedApiKey & { key: string } {
  const named = parseApiKeyId(keyId);
  if (!named) throw new TypeError('newApiKey needs a well-formed key id');
  const idBytes = Buffer.from(keyId.slice(API_KEY_ID_PREFIX.length), 'base64url');
  const unchecked = API_KEY_PREFIX + Buffer.concat([idBytes, randomBytes(API_KEY_SECRET_BYTES)]).toString('base64url');
  const key = unchecked + crc32Base64url(unchecked);
  return { key, keyId, ...named, hash: tokenHash(key) };
}

/** The parts of a well-formed key whose checksum holds; undefined for anything else. No I/O. */
export function parseApiKey(value: string): ParsedApiKey | undefined {
  if (value.length !== API_KEY_LENGTH || !value.startsWith(API_KEY_PREFIX)) return undefined;
  const unchecked = value.slice(0, -CHECKSUM_LENGTH);
  if (crc32Base64url(unchecked) !== value.slice(-CHECKSUM_LENGTH)) return undefined;
  const body = unchecked.slice(API_KEY_PREFIX.length);
  const bytes = Buffer.from(body, 'base64url');
  if (bytes.length !== API_KEY_BODY_BYTES || bytes.toString('base64url') !== body) return undefined;
  const idBytes = bytes.subarray(0, API_KEY_ID_BYTES);
  const named = slotOf(idBytes);
  return named && { keyId: API_KEY_ID_PREFIX + idBytes.toString('base64url'), ...named, hash: tokenHash(value) };
}
