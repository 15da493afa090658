import { randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';

/** bcrypt reads at most 72 bytes; anything longer would be silently truncated, so we refuse it. */
export const MAX_PASSWORD_BYTES = 72;
export const MIN_PASSWORD_LENGTH = 8;

export function passwordBytes(password: string): number {
  return Buffer.byteLength(password, 'utf8');
}

/** Why a new password is not acceptable, or undefined when it is. */
export function passwordProblem(password: string): string | undefined {
  if ([...password].length < MIN_PASSWORD_LENGTH) return `must be at least ${MIN_PASSWORD_LENGTH} characters`;
  if (passwordBytes(password) > MAX_PASSWORD_BYTES) return `must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8`;
  return undefined;
}

/** A new password's hash: refused unless the password meets the policy. */
export async function hashPassword(password: string, cost: number): Promise<string> {
  const problem = passwordProblem(password);
  if (problem) throw new Error(`Password ${problem}`);
  return bcryptHash(password, cost);
}

/** The hash of a password already in use (a rehash at a new cost): no policy applies to it. */
export function bcryptHash(password: string, cost: number): Promise<string> {
  return bcrypt.hash(password, cost);
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
  const usable = hash !== undefined && passwordBytes(password) <= MAX_PASSWORD_BYTES;
  const matches = await bcrypt.compare(password, usable ? hash : decoyHash(cost));
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
