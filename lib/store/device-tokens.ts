import { newUserToken, parseUserToken, type UserToken } from '../platform/ids.js';

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
export type DeviceToken = UserToken;

const PREFIX = 'dt_';

export function newDeviceToken(userId: string): DeviceToken & { token: string } {
  return newUserToken(PREFIX, userId);
}

/** The parts of a well-formed device token; undefined for anything else (treated as no token). */
export function parseDeviceToken(value: string): DeviceToken | undefined {
  return parseUserToken(PREFIX, value);
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
