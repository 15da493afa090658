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
 *
 * Its life is fixed: DEVICE_TOKEN_TTL_SECONDS from when it was first issued, however often it is
 * used. A sign-in with a token past half its life hands out a fresh one instead (the old one still
 * stands until its own end, for a client that missed the answer), so a daily user never meets the
 * end. Each token names the session it was last handed out with: ending that session (a local
 * logout, DELETE /auth/sessions/{id}) ends the token too, so a lost laptop's token loses its exemption.
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
  /** End of the token's life (epoch seconds): its first issue + DEVICE_TOKEN_TTL_SECONDS. The TTL attribute. */
  expires_at: number;
  /** The session it was last handed out with (absent on tokens from before this was recorded). */
  session_id?: string;
  /** Attempts reserved and not yet settled (lib/store/login-attempts.ts). */
  pending?: number;
  /** Consecutive failed sign-ins with this token, live until `failures_until`. */
  failures?: number;
  failures_until?: number;
}

export function deviceItem(token: DeviceToken, userEpoch: number, createdAt: string, expiresAt: number, sessionId: string): DeviceItem {
  return { ...deviceKey(token.hash), user_id: token.userId, user_epoch: userEpoch, created_at: createdAt, expires_at: expiresAt, session_id: sessionId };
}

/**
 * Whether a device token's item stands for this user at `now` (epoch seconds): within its life, which
 * is never more than `ttlSeconds` from its first issue (tokens written before lives were fixed carry
 * a later `expires_at`).
 */
export function isDeviceLive(item: DeviceItem, user: { id: string; sessionEpoch: number }, now: number, ttlSeconds: number): boolean {
  const end = Math.min(item.expires_at, Math.floor(Date.parse(item.created_at) / 1000) + ttlSeconds);
  return item.user_id === user.id && end > now && item.user_epoch === user.sessionEpoch;
}

/** Whether a token of this life should be replaced at a sign-in: less than half of it is left. */
export function isDeviceAging(item: Pick<DeviceItem, 'created_at' | 'expires_at'>, now: number): boolean {
  const issued = Math.floor(Date.parse(item.created_at) / 1000);
  return item.expires_at - now < (item.expires_at - issued) / 2;
}
