import { createHash, randomBytes } from 'node:crypto';
import { userIdFromBytes, userIdToBytes, ID_LENGTH_BYTES } from '../platform/ids.js';

/**
 * Device tokens (OWASP's "device cookies", for an API): every successful sign-in hands the client
 * `dt_` + base64url(user id ‖ 256 random bits). Presented at a later sign-in of the same account,
 * it marks the request as coming from a device that has signed in before: the per-account and
 * per-IP caps, which strangers can exhaust, do not apply to it, and its failures are counted
 * against the token alone. So however many addresses an attacker uses up an account's hourly
 * attempts from, the owner's device still gets in with the right password.
 *
 * The user id inside lets the login's first read fetch the token's item and its user together;
 * only SHA-256 of the whole token is stored. A token is live while its item exists, has not
 * expired, belongs to that user, and was issued under the user's current session epoch (so
 * set-password, disable, revoke-sessions and a global logout end every device token too).
 */
export interface DeviceToken {
  userId: string;
  /** SHA-256 of the token, base64url: the only form stored. */
  hash: string;
}

const PREFIX = 'dt_';
const SECRET_BYTES = 32;
const TOKEN_BYTES = ID_LENGTH_BYTES + SECRET_BYTES;
const TOKEN_LENGTH = PREFIX.length + Math.ceil((TOKEN_BYTES * 4) / 3);

function hashOf(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export function newDeviceToken(userId: string): DeviceToken & { token: string } {
  const token = PREFIX + Buffer.concat([userIdToBytes(userId)!, randomBytes(SECRET_BYTES)]).toString('base64url');
  return { token, userId, hash: hashOf(token) };
}

/** The parts of a well-formed device token; undefined for anything else (treated as no token). */
export function parseDeviceToken(value: string): DeviceToken | undefined {
  if (!value.startsWith(PREFIX) || value.length !== TOKEN_LENGTH) return undefined;
  const body = value.slice(PREFIX.length);
  const bytes = Buffer.from(body, 'base64url');
  if (bytes.length !== TOKEN_BYTES || bytes.toString('base64url') !== body) return undefined;
  return { userId: userIdFromBytes(bytes.subarray(0, ID_LENGTH_BYTES)), hash: hashOf(value) };
}

export const deviceKey = (hash: string) => ({ pk: `DEVICE#${hash}` });

/** A device token as stored (attempts table): owner, epoch, lifetime, and its own failure counter. */
export interface DeviceItem {
  pk: string;
  user_id: string;
  user_epoch: number;
  created_at: string;
  /** End of the token's life (epoch seconds); the TTL attribute. */
  expires_at: number;
  /** Consecutive failed sign-ins with this token, live until `failures_until`. */
  failures?: number;
  failures_until?: number;
}

export function deviceItem(token: DeviceToken, userEpoch: number, createdAt: string, expiresAt: number): DeviceItem {
  return { ...deviceKey(token.hash), user_id: token.userId, user_epoch: userEpoch, created_at: createdAt, expires_at: expiresAt };
}
