import { randomBytes } from 'node:crypto';

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
