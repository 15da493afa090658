import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { App } from '../../lib/app.js';
import { deviceKey, parseDeviceToken } from '../../lib/store/device-tokens.js';
import { mfaTokenKey, parseMfaToken } from '../../lib/store/mfa-tokens.js';
import { normalizeEmail, userKey } from '../../lib/store/users.js';

/**
 * The brute-force counters as the running Lambdas left them, read strongly consistent through an
 * app wired like them (e2eApp(), or a stage API's app()), so a test can say which counters a
 * request moved. The key formats are the ones lib/store/login-attempts.ts documents.
 */
const QUARTER_HOUR = 900;
const HOUR = 3600;
const epochSeconds = (at: Date) => Math.floor(at.getTime() / 1000);

/** PAIR#<email>#<ip>: one account's consecutive failures from one address. */
export const pairPk = (email: string, ip: string) => `PAIR#${normalizeEmail(email)}#${ip}`;
/** IP#<ip>#<quarter hour>: one address's failures in the 15-minute window of `at`. */
export const ipWindowPk = (ip: string, at = new Date()) => `IP#${ip}#${Math.floor(epochSeconds(at) / QUARTER_HOUR) * QUARTER_HOUR}`;
/** The user item's attribute counting the account's attempts in the clock hour of `at`. */
export const hourAttribute = (at = new Date()) => `login_attempts_${Math.floor(epochSeconds(at) / HOUR) * HOUR}`;

async function get(app: App, table: string, key: Record<string, unknown>): Promise<Record<string, any> | undefined> {
  const { Item } = await app.db.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
  return Item;
}

/** An item of the attempts table by its key (a PAIR#, IP# or ACCT# counter), or undefined. */
export function attemptsItem(app: App, pk: string): Promise<Record<string, any> | undefined> {
  return get(app, app.config.attemptsTable, { pk });
}

/** The user item, with its hourly attempts and its wrong second-factor counts (`code_failures`, …). */
export function userItem(app: App, userId: string): Promise<Record<string, any> | undefined> {
  return get(app, app.config.usersTable, userKey(userId));
}

/** The item of an `mfa_token` as handed out (`attempts`, `spent_at`, …). */
export function mfaTokenItem(app: App, mfaToken: string): Promise<Record<string, any> | undefined> {
  const parsed = parseMfaToken(mfaToken);
  if (!parsed) throw new Error(`not an mfa_token: ${mfaToken.slice(0, 6)}…`);
  return get(app, app.config.attemptsTable, mfaTokenKey(parsed.hash));
}

/** The item of a device token as handed out (`created_at`, `expires_at`, `failures`, `session_id`, …). */
export function deviceTokenItem(app: App, deviceToken: string): Promise<Record<string, any> | undefined> {
  const parsed = parseDeviceToken(deviceToken);
  if (!parsed) throw new Error(`not a device token: ${deviceToken.slice(0, 6)}…`);
  return get(app, app.config.attemptsTable, deviceKey(parsed.hash));
}

/**
 * Wait, when fewer than `margin` seconds are left of the current `window` (900: the IP's quarter
 * hour, 3600: the account's hour), until the next one has begun: a test that fills a window and
 * then reads it must not straddle two.
 */
export async function clearOfWindowEnd(window: number, margin: number): Promise<void> {
  const left = window - ((Date.now() / 1000) % window);
  if (left < margin) await new Promise((done) => setTimeout(done, (left + 1) * 1000));
}
