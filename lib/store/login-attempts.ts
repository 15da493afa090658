import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { LoginLimits } from '../platform/config.js';
import { deviceKey, type DeviceItem, type DeviceToken } from './device-tokens.js';
import { batchGetAll, batchWriteAll, isConditionalCheckFailed, scanAll, storeCall, updateIf, type BatchWrite } from '../platform/dynamo.js';
import { epochSeconds } from './sessions.js';
import { emailKey, normalizeEmail, userFromItem, userKey, type User } from './users.js';

/**
 * Brute-force limits, shared by every Lambda through DynamoDB. Every counter a request is held to
 * is *reserved* with one conditional write before bcrypt runs, so however many requests race,
 * no more than the limit reach bcrypt:
 * - PAIR#<email>#<ip>: consecutive failures of one account from one IP. Each attempt pushes
 *   `expires_at` to now + lockout; at `maxFailures` the pair is locked until `expires_at`; a
 *   counter past its `expires_at` is stale and starts again at 1. A success deletes it (gives its
 *   slot back).
 * - IP#<ip>#<quarter hour>: failures from one IP across accounts in a 15-minute window. A success
 *   gives its slot back.
 * - the account's attempts in a clock hour (OWASP ASVS: at most 100 failures), successes
 *   included: an attribute of the user item, `login_attempts_<hour start>`, so that reserving it
 *   also reads the user (one round trip); for an email with no user, ACCT#<email>#<hour> here,
 *   so that both cost the same and a refusal says nothing about existence.
 * - a device token's own consecutive failures (its item, lib/store/device-tokens.ts): a request with a
 *   live device token for the account is held to this counter *instead* of the three above.
 * A request refused by a counter is not a failure: what it reserved elsewhere is given back.
 */
const HOUR = 3600;
const QUARTER_HOUR = 900;
/** The account counters of this many earlier hours are cleared from the user item as it is written. */
const STALE_HOURS_CLEARED = 24;

// Key builders, one per counter; the windowed ones also say when their window ends.
const pairKey = (email: string, ip: string) => ({ pk: `PAIR#${normalizeEmail(email)}#${ip}` });

function accountWindow(email: string, now: number) {
  const hour = Math.floor(now / HOUR) * HOUR;
  return { pk: `ACCT#${normalizeEmail(email)}#${hour}`, hour, windowEnd: hour + HOUR };
}

function ipWindow(ip: string, now: number) {
  const quarter = Math.floor(now / QUARTER_HOUR) * QUARTER_HOUR;
  return { pk: `IP#${ip}#${quarter}`, windowEnd: quarter + QUARTER_HOUR };
}

const ACCOUNT_ATTRIBUTE_PREFIX = 'login_attempts_';
const accountAttribute = (hour: number) => `${ACCOUNT_ATTRIBUTE_PREFIX}${hour}`;

/** The hourly counters on a user item older than the ones every reservation clears itself. */
function staleCounters(userItem: Record<string, unknown>, now: number): string[] {
  const oldestCleared = Math.floor(now / HOUR) * HOUR - STALE_HOURS_CLEARED * HOUR;
  return Object.keys(userItem).filter((name) => name.startsWith(ACCOUNT_ATTRIBUTE_PREFIX) && Number(name.slice(ACCOUNT_ATTRIBUTE_PREFIX.length)) < oldestCleared);
}

/**
 * A lock already in force is seen in the first read and answered with its own Retry-After. A
 * reservation refused after that was refused because requests in flight hold the last slots:
 * each of them ends as a success (giving its slot back) or a failure within a bcrypt's time, so
 * the client is told to try again in a second, when the counter says which it was.
 */
const CONTENDED_RETRY_AFTER_SECONDS = 1;

export interface Lock {
  /** Seconds until a login may be tried again. */
  retryAfterSeconds: number;
  /** Which limit, for the audit log. */
  by: 'pair' | 'account' | 'ip' | 'device';
}

/** A counter with a lock that slides: `failures`, live until `until`. */
interface SlidingCounter {
  failures: number;
  until: number;
}

/** A device token that holds for this sign-in: its item and the user it belongs to. */
export interface TrustedDevice {
  token: DeviceToken;
  item: DeviceItem;
  user: User;
  /** Hourly counters on the user item too old for a reservation's own clean-up (see `staleCounters`). */
  staleCounters: string[];
}

/** What the first read of a sign-in found. */
export interface LoginState {
  /** The user id the email claims (undefined: no such user). */
  userId: string | undefined;
  pair: SlidingCounter | undefined;
  ipFailures: number;
  /** The presented device token, when it is live for this account. */
  device: TrustedDevice | undefined;
}

/** What a stranger's sign-in reserved, so that a refusal or a success can give it back. */
export interface Reservation {
  lock: Lock | undefined;
  /** The user, read by the same write that reserved the account's attempt. */
  user: User | undefined;
  /** Hourly counters on the user item too old for the reservation's own clean-up. */
  staleCounters: string[];
  pairKey: Record<string, unknown>;
  /** Undefined when the IP's window was not counted (a signed-in user's password change). */
  ipKey: Record<string, unknown> | undefined;
}

/**
 * Which limits apply. A sign-in is held to all. A password change, made by a signed-in user, is
 * held to the account's own (the pair and the account's hour), not to the IP's window, which is
 * there for strangers spraying many accounts from one address.
 */
export interface LimitScope {
  ip: boolean;
}

export class LoginAttempts {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly table: string,
    private readonly usersTable: string,
    private readonly limits: LoginLimits,
  ) {}

  /**
   * One BatchGetItem: the email's claim, the pair and IP counters, and, when a well-formed device
   * token is presented, its item and its user. The token holds only if all of them agree.
   */
  async read(email: string, ip: string, token: DeviceToken | undefined, at: Date): Promise<LoginState> {
    const now = epochSeconds(at);
    const keys = { pair: pairKey(email, ip), ip: ipWindow(ip, now) };
    const attemptKeys: Array<Record<string, unknown>> = [keys.pair, { pk: keys.ip.pk }];
    const userKeys: Array<Record<string, unknown>> = [emailKey(email)];
    if (token) {
      attemptKeys.push(deviceKey(token.hash));
      userKeys.push(userKey(token.userId));
    }
    const found = await batchGetAll(this.db, { [this.table]: attemptKeys, [this.usersTable]: userKeys });
    const byKey = new Map([...found[this.table]!, ...found[this.usersTable]!].map((item) => [item.pk as string, item]));
    const userId = byKey.get(emailKey(email).pk)?.user_id as string | undefined;
    const pair = byKey.get(keys.pair.pk) as { failures?: number; expires_at?: number } | undefined;
    let device: TrustedDevice | undefined;
    if (token && token.userId === userId) {
      const item = byKey.get(deviceKey(token.hash).pk) as DeviceItem | undefined;
      const userItem = byKey.get(userKey(token.userId).pk);
      const user = userItem ? userFromItem(userItem) : undefined;
      if (item && user && item.user_id === user.id && item.expires_at > now && item.user_epoch === user.sessionEpoch) {
        device = { token, item, user, staleCounters: staleCounters(userItem!, now) };
      }
    }
    return {
      userId,
      pair: pair ? { failures: pair.failures ?? 0, until: pair.expires_at ?? 0 } : undefined,
      ipFailures: Number(byKey.get(keys.ip.pk)?.failures ?? 0),
      device,
    };
  }

  /** A lock already in force when read (pair or IP; or the device's), refused without any write. */
  settledLock(state: LoginState, ip: string, at: Date, scope: LimitScope = { ip: true }): Lock | undefined {
    const now = epochSeconds(at);
    const { maxFailures, ipMaxFailures } = this.limits;
    if (state.device) {
      const { failures = 0, failures_until: until = 0 } = state.device.item;
      return until > now && failures >= maxFailures ? { by: 'device', retryAfterSeconds: until - now } : undefined;
    }
    const locks: Lock[] = [];
    if (state.pair && state.pair.until > now && state.pair.failures >= maxFailures) locks.push({ by: 'pair', retryAfterSeconds: state.pair.until - now });
    if (scope.ip && state.ipFailures >= ipMaxFailures) locks.push({ by: 'ip', retryAfterSeconds: ipWindow(ip, now).windowEnd - now });
    return locks.sort((a, b) => b.retryAfterSeconds - a.retryAfterSeconds)[0];
  }

  /**
   * A sign-in with a live device token: one conditional write takes one of the token's attempts.
   * The account and IP caps do not apply; nothing else is counted.
   */
  async reserveDevice(device: TrustedDevice, at: Date): Promise<Lock | undefined> {
    const { item } = device;
    const read = item.failures_until === undefined ? undefined : { failures: item.failures ?? 0, until: item.failures_until };
    const reserved = await this.reserveSliding({ table: this.table, key: deviceKey(device.token.hash), failures: 'failures', until: 'failures_until', mustExist: true }, read, at);
    return reserved ? undefined : { by: 'device', retryAfterSeconds: CONTENDED_RETRY_AFTER_SECONDS };
  }

  /**
   * A sign-in without a live device token: the pair and the IP counters are reserved (in
   * parallel), then the account's attempt for this hour, which also reads the user. The first
   * refusal gives back what was reserved and returns the lock. 2 to 5 round trips.
   */
  async reserveStranger(email: string, ip: string, state: LoginState, at: Date, scope: LimitScope = { ip: true }): Promise<Reservation> {
    const now = epochSeconds(at);
    const pair = pairKey(email, ip);
    const window = ipWindow(ip, now);
    const held: Reservation = { lock: undefined, user: undefined, staleCounters: [], pairKey: pair, ipKey: scope.ip ? { pk: window.pk } : undefined };
    const [pairReserved, ipReserved] = await Promise.allSettled([
      this.reserveSliding({ table: this.table, key: pair, failures: 'failures', until: 'expires_at', mustExist: false }, state.pair, at),
      scope.ip ? this.reserveWindow(window.pk, window.windowEnd) : true,
    ]);
    const gotPair = pairReserved.status === 'fulfilled' && pairReserved.value;
    const gotIp = ipReserved.status === 'fulfilled' && ipReserved.value;
    if (!gotPair || !gotIp) {
      await this.giveBack({ pair: gotPair, ip: gotIp }, held);
      // A store fault is the answer (503), with whatever was reserved given back.
      for (const settled of [pairReserved, ipReserved]) if (settled.status === 'rejected') throw settled.reason;
      return { ...held, lock: { by: gotPair ? 'ip' : 'pair', retryAfterSeconds: CONTENDED_RETRY_AFTER_SECONDS } };
    }
    let account: Awaited<ReturnType<LoginAttempts['reserveAccountAttempt']>>;
    try {
      account = await this.reserveAccountAttempt(email, state.userId, at);
    } catch (error) {
      await this.giveBack({ pair: true, ip: true }, held);
      throw error;
    }
    if (account.lock) {
      await this.giveBack({ pair: true, ip: true }, held);
      return { ...held, lock: account.lock };
    }
    return { ...held, user: account.user, staleCounters: account.staleCounters };
  }

  /** A stranger's success gives its IP slot back (its pair counter is deleted with the new session). */
  async giveBackIp(reservation: Pick<Reservation, 'ipKey'>): Promise<void> {
    if (reservation.ipKey) await this.undoOne(reservation.ipKey);
  }

  /** Give back both slots of a reservation whose password was right but whose request went no further (a lost race). */
  async giveBackAll(reservation: Reservation): Promise<void> {
    await this.giveBack({ pair: true, ip: true }, reservation);
  }

  /** Give back what a refused request reserved; best effort (a fault here must not hide the answer). */
  private async giveBack(taken: { pair: boolean; ip: boolean }, reservation: Reservation): Promise<void> {
    await Promise.allSettled([taken.pair ? this.undoOne(reservation.pairKey) : undefined, taken.ip && reservation.ipKey ? this.undoOne(reservation.ipKey) : undefined]);
  }

  /**
   * One failure fewer, only on a counter that still has one: a counter deleted meanwhile (a success
   * cleared the pair) or already at zero is left alone, so a give-back can never create a counter or
   * push one below zero (which would hand out extra attempts, or leave an item without expiry).
   */
  private async undoOne(key: Record<string, unknown>): Promise<void> {
    await updateIf(this.db, {
      TableName: this.table,
      Key: key,
      UpdateExpression: 'ADD failures :minus',
      ConditionExpression: 'failures > :zero',
      ExpressionAttributeValues: { ':minus': -1, ':zero': 0 },
    });
  }

  /**
   * The pair counter's key: a sign-in finished with a second factor clears it, as a success
   * without one does.
   */
  pairKeyOf(email: string, ip: string): Record<string, unknown> {
    return pairKey(email, ip);
  }

  /**
   * One attempt of a code (a second factor at sign-in, or the code that turns TOTP off) on the
   * account's own limits, reserved before the code is looked at, as a password's is: the account+IP
   * pair (a live counter is added to while under the limit; a stale one starts again at 1; a locked
   * one refuses) and the account's hour, in parallel. Whatever login or device token came before, a
   * code is held to these. A refusal gives the other slot back and is the lock; a success's slot is
   * cleared with its session (the pair) or given back (`giveBackPair`); a wrong code stays counted.
   */
  async reserveCodeAttempt(email: string, ip: string, userId: string, at: Date): Promise<{ lock: Lock | undefined; pairKey: Record<string, unknown> }> {
    const key = pairKey(email, ip);
    const pair = { table: this.table, key, failures: 'failures', until: 'expires_at', mustExist: false };
    const [pairReserved, account] = await Promise.allSettled([
      this.reserveSliding(pair, undefined, at).then((added) => added || this.reserveSliding(pair, { failures: 0, until: 0 }, at)),
      this.reserveAccountAttempt(email, userId, at),
    ]);
    const gotPair = pairReserved.status === 'fulfilled' && pairReserved.value;
    if (account.status === 'rejected' || (account.status === 'fulfilled' && account.value.lock) || !gotPair) {
      if (gotPair) await this.undoOne(key).catch(() => undefined);
      for (const settled of [pairReserved, account]) if (settled.status === 'rejected') throw settled.reason;
      const lock = (account as PromiseFulfilledResult<{ lock?: Lock }>).value.lock;
      return { lock: lock ?? (await this.pairLock(key, at)), pairKey: key };
    }
    return { lock: undefined, pairKey: key };
  }

  /** The write that deletes a pair counter, for a sign-in's BatchWriteItem: a success ends its consecutive failures. */
  pairClearing(key: Record<string, unknown>): BatchWrite {
    return { table: this.table, deleteKey: key };
  }

  /** A code's pair slot given back (it was right, and no session clears the pair). Best effort. */
  async giveBackPair(key: Record<string, unknown>): Promise<void> {
    await this.undoOne(key).catch(() => undefined);
  }

  /** Why a pair refused a reservation: its lock, for as long as it lasts (1 s when racing requests took the last slots). */
  private async pairLock(key: Record<string, unknown>, at: Date): Promise<Lock> {
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true })));
    const until = Number(Item?.expires_at ?? 0) - epochSeconds(at);
    const locked = Number(Item?.failures ?? 0) >= this.limits.maxFailures && until > 0;
    return { by: 'pair', retryAfterSeconds: locked ? until : CONTENDED_RETRY_AFTER_SECONDS };
  }

  /**
   * Clear hourly counters of the user item older than a reservation clears by itself (a user who
   * signs in every few days leaves one behind each time). Made where a sign-in has a round trip to
   * spare: a stranger's failure, a device token's sign-in. Best effort.
   */
  async clearStaleCounters(userId: string, names: string[]): Promise<void> {
    await removeUserAttributes(this.db, this.usersTable, userId, names).catch(() => false);
  }

  /**
   * One attempt of the account's hour. For a user, an attribute of the user item (`ADD`, which
   * also returns the user, strongly consistent, and clears the attributes of earlier hours); for an
   * email with no user, a counter item of its own. Successes count too: nobody signs in a hundred
   * times an hour without a device token.
   */
  private async reserveAccountAttempt(email: string, userId: string | undefined, at: Date): Promise<{ lock?: Lock; user?: User; staleCounters: string[] }> {
    const now = epochSeconds(at);
    const window = accountWindow(email, now);
    const lock = (attempts: number): Lock | undefined =>
      attempts > this.limits.accountMaxFailuresPerHour ? { by: 'account', retryAfterSeconds: window.windowEnd - now } : undefined;
    if (userId !== undefined) {
      const names: Record<string, string> = { '#now': accountAttribute(window.hour) };
      for (let back = 1; back <= STALE_HOURS_CLEARED; back++) names[`#h${back}`] = accountAttribute(window.hour - back * HOUR);
      try {
        const { Attributes } = await storeCall(
          this.db.send(
            new UpdateCommand({
              TableName: this.usersTable,
              Key: userKey(userId),
              UpdateExpression: `ADD #now :one REMOVE ${Object.keys(names).filter((name) => name !== '#now').join(', ')}`,
              ConditionExpression: 'attribute_exists(pk)',
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: { ':one': 1 },
              ReturnValues: 'ALL_NEW',
            }),
          ),
        );
        return { lock: lock(Number(Attributes![accountAttribute(window.hour)])), user: userFromItem(Attributes!), staleCounters: staleCounters(Attributes!, now) };
      } catch (error) {
        // A claim whose user is gone (a creation that failed half-way): there is no account to
        // protect; the pair and IP counters still hold, and the request costs what an unknown email's does.
        if (!isConditionalCheckFailed(error)) throw error;
        return { staleCounters: [] };
      }
    }
    const { Attributes } = await storeCall(
      this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: window.pk },
          UpdateExpression: 'ADD attempts :one SET expires_at = if_not_exists(expires_at, :end)',
          ExpressionAttributeValues: { ':one': 1, ':end': window.windowEnd },
          ReturnValues: 'UPDATED_NEW',
        }),
      ),
    );
    return { lock: lock(Number(Attributes?.attempts ?? 0)), staleCounters: [] };
  }

  /** One failure in a fixed window, only while the window is under the IP limit. False: refused. */
  private async reserveWindow(pk: string, windowEnd: number): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: { pk },
      UpdateExpression: 'ADD failures :one SET expires_at = if_not_exists(expires_at, :end)',
      ConditionExpression: 'attribute_not_exists(failures) OR failures < :max',
      ExpressionAttributeValues: { ':one': 1, ':end': windowEnd, ':max': this.limits.ipMaxFailures },
    });
  }

  /**
   * One attempt of a counter whose lock slides (pair, device token), chosen by what was read:
   * a missing or live counter is added to while under the limit; a stale one starts again at 1,
   * only if it is still stale. One write either way, so of any number of racing requests at most
   * `maxFailures` get through; a request that lost a race at the moment a stale counter restarts
   * is refused for a second rather than written twice. False: refused.
   */
  private async reserveSliding(
    target: { table: string; key: Record<string, unknown>; failures: string; until: string; mustExist: boolean },
    read: SlidingCounter | undefined,
    at: Date,
  ): Promise<boolean> {
    const now = epochSeconds(at);
    const stale = read !== undefined && read.until <= now;
    const exists = target.mustExist ? 'attribute_exists(pk) AND ' : '';
    return updateIf(this.db, {
      TableName: target.table,
      Key: target.key,
      UpdateExpression: stale ? 'SET #f = :one, #u = :until' : 'ADD #f :one SET #u = :until',
      ConditionExpression: stale
        ? `${exists}(attribute_not_exists(#u) OR #u <= :now)`
        : `${exists}(attribute_not_exists(#f) OR (#u > :now AND #f < :max))`,
      ExpressionAttributeNames: { '#f': target.failures, '#u': target.until },
      ExpressionAttributeValues: { ':one': 1, ':until': now + this.limits.lockoutSeconds, ':now': now, ...(stale ? {} : { ':max': this.limits.maxFailures }) },
    });
  }

}

/**
 * `npm run users -- unlock`: clear every counter of one account. Its pair counters (every IP) and
 * its hourly attempts (on the user item, and any counted while the email had no user), and the
 * failure counters of its device tokens. The IP counters are left alone: they are the addresses',
 * not the account's. An operator command: it scans the attempts table.
 */
export async function unlockAccount(
  db: DynamoDBDocumentClient,
  tables: { attemptsTable: string; usersTable: string },
  email: string,
  userId: string,
): Promise<{ counters: number; devices: number }> {
  const prefixes = [`PAIR#${normalizeEmail(email)}#`, `ACCT#${normalizeEmail(email)}#`];
  const counters: Array<Record<string, unknown>> = [];
  const devices: Array<Record<string, unknown>> = [];
  const found = await scanAll(db, {
    TableName: tables.attemptsTable,
    FilterExpression: 'begins_with(pk, :pair) OR begins_with(pk, :account) OR (begins_with(pk, :device) AND user_id = :user)',
    ExpressionAttributeValues: { ':pair': prefixes[0], ':account': prefixes[1], ':device': 'DEVICE#', ':user': userId },
  });
  for (const item of found) ((item.pk as string).startsWith('DEVICE#') ? devices : counters).push({ pk: item.pk });
  await batchWriteAll(db, counters.map((key) => ({ table: tables.attemptsTable, deleteKey: key })));
  for (const key of devices) {
    await updateIf(db, { TableName: tables.attemptsTable, Key: key, UpdateExpression: 'REMOVE failures, failures_until', ConditionExpression: 'attribute_exists(pk)' });
  }
  const { Item } = await storeCall(db.send(new GetCommand({ TableName: tables.usersTable, Key: userKey(userId), ConsistentRead: true })));
  const hours = Object.keys(Item ?? {}).filter((name) => name.startsWith(ACCOUNT_ATTRIBUTE_PREFIX));
  await removeUserAttributes(db, tables.usersTable, userId, hours);
  return { counters: counters.length + hours.length, devices: devices.length };
}

/** Remove attributes (hourly counters) from a user item that still exists; nothing to do for none. */
async function removeUserAttributes(db: DynamoDBDocumentClient, usersTable: string, userId: string, names: string[]): Promise<boolean> {
  if (names.length === 0) return false;
  return updateIf(db, {
    TableName: usersTable,
    Key: userKey(userId),
    UpdateExpression: `REMOVE ${names.map((_, i) => `#a${i}`).join(', ')}`,
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeNames: Object.fromEntries(names.map((name, i) => [`#a${i}`, name])),
  });
}
