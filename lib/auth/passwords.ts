import { outsideStoreDeadline } from '../platform/dynamo.js';
import { randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';

/** bcrypt reads at most 72 bytes; anything longer would be silently truncated, so we refuse it. */
export const MAX_PASSWORD_BYTES = 72;

export function passwordBytes(password: string): number {
  return Buffer.byteLength(password, 'utf8');
}

/**
 * A password's hash, refused only beyond bcrypt's 72 bytes (which it would silently cut). What a
 * *new* password must be is the policy's (lib/auth/password-policy.ts), checked before this by
 * whoever takes one from a user; the demo user and the tests' users are made through here as they are.
 */
export async function hashPassword(password: string, cost: number): Promise<string> {
  if (passwordBytes(password) > MAX_PASSWORD_BYTES) throw new Error(`Password must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8`);
  return bcryptHash(password, cost);
}

/** The hash of a password already in use (a rehash at a new cost): no policy applies to it. */
export function bcryptHash(password: string, cost: number): Promise<string> {
  return outsideStoreDeadline(() => bcrypt.hash(password, cost));
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** Random salt and digest, drawn once per process: no password can be known to match it. */
const DECOY_SALT_AND_DIGEST = [...randomBytes(53)].map((byte) => BCRYPT_ALPHABET[byte % 64]).join('');

/** A well-formed bcrypt hash at `cost`; comparing against it costs what a real comparison costs. */
function decoyHash(cost: number): string {
  return `$2b$${String(cost).padStart(2, '0')}$${DECOY_SALT_AND_DIGEST}`;
}

/**
 * Compare a password with a stored hash, paying one full bcrypt comparison on every path: an
 * unknown user (no hash) or an over-long password compares against a decoy, so the time
 * taken does not tell which case it was.
 */
export async function verifyPassword(password: string, hash: string | undefined, cost: number): Promise<boolean> {
  // An account made by single sign-on has no password (an empty hash): compared against the decoy, never matched.
  const usable = hash !== undefined && hash !== '' && passwordBytes(password) <= MAX_PASSWORD_BYTES;
  // CPU, not the store: the request's store deadline stands still (lib/platform/dynamo.ts).
  const matches = await outsideStoreDeadline(() => bcrypt.compare(password, usable ? hash : decoyHash(cost)));
  return usable && matches;
}

/**
 * Whether a stored hash was made at another cost than the configured one. Unknown emails are
 * compared against a decoy at the configured cost, so every real hash must be at that cost too
 * or the time would tell them apart; such a hash is replaced at the user's next sign-in.
 */
export function needsRehash(hash: string, cost: number): boolean {
  try {
    return bcrypt.getRounds(hash) !== cost;
  } catch {
    return false;
  }
}
