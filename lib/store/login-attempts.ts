import { DeleteCommand, GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { LoginLimits } from '../platform/config.js';
import { deviceKey, isDeviceLive, type DeviceItem, type DeviceToken } from './device-tokens.js';
import { batchGetAll, batchWriteAll, compensatingDecrement, compensatingUpdate, isConditionalCheckFailed, listeningClock, outsideStoreDeadline, scanAll, storeCall, updateAndReadIf, updateIf, type BatchWrite } from '../platform/dynamo.js';
import { epochSeconds, sessionKey } from './sessions.js';
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
 * - a session's own wrong current passwords (`password_failures` on the session item): what a
 *   signed-in user's password change, or TOTP set-up, is held to.
 * Which check reserves which counter is said in one place: lib/auth/credentials.ts.
 *
 * The pair, IP and device counters also count their attempts still in flight (`pending`): a
 * reservation adds one, and its outcome takes it off (a failure stays counted, a success gives its
 * slot back). A request that finds the last slots held only by attempts in flight waits for them
 * (at most WAIT_FOR_IN_FLIGHT_MS), then goes on or is refused by what they recorded: 20 right
 * passwords at once all get in, and 20 wrong ones still get at most the limit.
 * A request refused by a counter moves none: what it reserved elsewhere is given back.
 */
const HOUR = 3600;
const QUARTER_HOUR = 900;
/** The account counters of this many earlier hours are cleared from the user item as it is written. */
const STALE_HOURS_CLEARED = 24;

/**
 * How long a request waits, at most, for attempts in flight to settle. One attempt is a bcrypt
 * comparison and a write (0.3–0.4 s at cost 12), so a request that is going to be refused learns
 * so within about one bcrypt time (or IN_FLIGHT_MS, when an attempt died without settling); this
 * bound only matters while waves of right passwords keep taking and giving back the slots, which
 * only someone holding the password can cause. It leaves the function's 10 s room for its own
 * bcrypt and its store deadline (which stands still while it waits).
 */
export const WAIT_FOR_IN_FLIGHT_MS = 3000;
/** Polls of a held counter: from this interval, doubling, up to 200 ms. */
const FIRST_POLL_MS = 25;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
 * The Retry-After of a request refused because attempts in flight still held the last slots after
 * WAIT_FOR_IN_FLIGHT_MS (they died without settling, or kept being replaced): a second.
 */
const CONTENDED_RETRY_AFTER_SECONDS = 1;

export interface Lock {
  /** Seconds until a login may be tried again. */
  retryAfterSeconds: number;
  /** Which limit, for the audit log. */
  by: 'pair' | 'account' | 'ip' | 'device' | 'session' | 'code' | 'recovery_code' | 'mfa_token';
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
  /** Whether the IP's window was full of settled failures when read (none in flight). */
  ipSettled: boolean;
  /** Whether the pair's failures had all settled when read. */
  pairSettled: boolean;
  /** The presented device token, when it is live for this account. */
  device: TrustedDevice | undefined;
}

/** What a stranger's sign-in reserved, so that a refusal, a failure or a success can settle it. */
export interface Reservation {
  lock: Lock | undefined;
  /** The user, read by the same write that reserved the account's attempt. */
  user: User | undefined;
  /** Hourly counters on the user item too old for the reservation's own clean-up. */
  staleCounters: string[];
  pairKey: Record<string, unknown>;
  ipKey: Record<string, unknown>;
}

/** One counter a reservation can wait on: how to take a slot given what was read, and what a read says. */
interface HeldCounter {
  by: Lock['by'];
  /** A counter that is an item of its own (a device token's): when it is gone there is nothing to reserve. */
  mustExist?: boolean;
  table: string;
  key: Record<string, unknown>;
  /** Take one slot, choosing the write by what was read (undefined: nothing read yet). */
  take(read: Record<string, unknown> | undefined, at: Date): Promise<boolean>;
  /** The lock the item shows at `at`, when there is one (its attempts may still be in flight). */
  lockOf(item: Record<string, unknown> | undefined, at: Date): Lock | undefined;
}

/**
 * An attempt in flight takes one bcrypt comparison and a write. One whose outcome never came (its
 * function died, a store fault lost the write) must not hold anyone: `pending` counts as settled
 * once the last reservation is older than this.
 */
export const IN_FLIGHT_MS = 1000;

/** A device token's counts: its failures, the lock they make, and its attempts in flight. */
const DEVICE_COUNTS = ['failures', 'failures_until', 'pending', 'pending_at'];

/** Whether a counter, as read, still has attempts in flight (wall-clock time: it is about real requests, not the tests' clock). */
const inFlight = (item: Record<string, unknown> | undefined) => Number(item?.pending ?? 0) > 0 && Date.now() - Number(item?.pending_at ?? 0) < IN_FLIGHT_MS;

export class LoginAttempts {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly table: string,
    private readonly usersTable: string,
    private readonly sessionsTable: string,
    private readonly limits: LoginLimits,
    /** DEVICE_TOKEN_TTL_SECONDS: no device token stands longer from its first issue. */
    private readonly deviceTokenTtlSeconds: number,
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
      if (item && user && isDeviceLive(item, user, now, this.deviceTokenTtlSeconds)) {
        device = { token, item, user, staleCounters: staleCounters(userItem!, now) };
      }
    }
    return {
      userId,
      pair: pair ? { failures: pair.failures ?? 0, until: pair.expires_at ?? 0 } : undefined,
      pairSettled: !inFlight(pair),
      ipFailures: Number(byKey.get(keys.ip.pk)?.failures ?? 0),
      ipSettled: !inFlight(byKey.get(keys.ip.pk)),
      device,
    };
  }

  /**
   * A lock in force when read, every attempt of it settled (pair or IP; or the device's): refused
   * without any write. A counter full of attempts still in flight is not a lock yet.
   */
  settledLock(state: LoginState, ip: string, at: Date): Lock | undefined {
    const now = epochSeconds(at);
    const { maxFailures, ipMaxFailures } = this.limits;
    if (state.device) {
      const { failures = 0, failures_until: until = 0 } = state.device.item;
      return until > now && failures >= maxFailures && !inFlight(state.device.item as unknown as Record<string, unknown>) ? { by: 'device', retryAfterSeconds: until - now } : undefined;
    }
    const locks: Lock[] = [];
    if (state.pair && state.pairSettled && state.pair.until > now && state.pair.failures >= maxFailures) locks.push({ by: 'pair', retryAfterSeconds: state.pair.until - now });
    if (state.ipSettled && state.ipFailures >= ipMaxFailures) locks.push({ by: 'ip', retryAfterSeconds: ipWindow(ip, now).windowEnd - now });
    return locks.sort((a, b) => b.retryAfterSeconds - a.retryAfterSeconds)[0];
  }

  /**
   * A sign-in with a live device token: one conditional write takes one of the token's attempts
   * (waiting for attempts in flight when they hold the last ones). The account and IP caps do not
   * apply; nothing else is counted. `gone`: the token ended meanwhile (it is no token at all).
   */
  async reserveDevice(device: TrustedDevice, at: Date): Promise<Lock | undefined | 'gone'> {
    return this.reserveWaiting(this.deviceCounter(device.token.hash), device.item as unknown as Record<string, unknown>, at);
  }

  /** The counter of a device token (by the SHA-256 of the token), as a sign-in or a second factor reserves it. */
  private deviceCounter(hash: string): HeldCounter {
    const sliding = { table: this.table, key: deviceKey(hash), failures: 'failures', until: 'failures_until', mustExist: true };
    return {
      ...sliding,
      by: 'device',
      take: (read, at) => this.reserveSliding(sliding, slidingOf(read, 'failures', 'failures_until'), at),
      lockOf: (item, at) => this.slidingLock('device', slidingOf(item, 'failures', 'failures_until'), at),
    };
  }

  /**
   * A sign-in without a live device token: first the account's attempt for this hour (which also
   * reads the user; a spent hour refuses here, before the pair and IP counters are touched, so
   * requests it refuses never hold their slots), then the pair and the IP counters, in parallel,
   * each waiting for attempts in flight that hold its last slots. A refusal gives back what was
   * reserved and returns the lock. 3 round trips (more while waiting).
   */
  async reserveStranger(email: string, ip: string, state: LoginState, at: Date): Promise<Reservation> {
    const now = epochSeconds(at);
    const pair = pairKey(email, ip);
    const window = ipWindow(ip, now);
    const held: Reservation = { lock: undefined, user: undefined, staleCounters: [], pairKey: pair, ipKey: { pk: window.pk } };
    const account = await this.reserveAccountAttempt(email, state.userId, at);
    if (account.lock) return { ...held, lock: account.lock };
    const pairRead = state.pair && { failures: state.pair.failures, expires_at: state.pair.until };
    const [pairReserved, ipReserved] = await Promise.allSettled([
      this.reserveWaiting(this.pairCounter(pair), pairRead, at),
      this.reserveWaiting(this.ipCounter(window), undefined, at),
    ]);
    const gotPair = pairReserved.status === 'fulfilled' && pairReserved.value === undefined;
    const gotIp = ipReserved.status === 'fulfilled' && ipReserved.value === undefined;
    if (!gotPair || !gotIp) {
      await Promise.allSettled([gotPair ? this.giveBack(pair) : undefined, gotIp ? this.giveBack(held.ipKey) : undefined, compensatingDecrement(this.db, account.taken)]);
      // A store fault is the answer (503), with whatever was reserved given back.
      for (const settled of [pairReserved, ipReserved]) if (settled.status === 'rejected') throw settled.reason;
      const lock = (gotPair ? ipReserved : pairReserved) as PromiseFulfilledResult<Lock | 'gone'>;
      return { ...held, lock: lock.value as Lock };
    }
    return { ...held, user: account.user, staleCounters: account.staleCounters };
  }

  private pairCounter(key: Record<string, unknown>): HeldCounter {
    const sliding = { table: this.table, key, failures: 'failures', until: 'expires_at', mustExist: false };
    return {
      ...sliding,
      by: 'pair',
      take: (read, at) => this.reserveSliding(sliding, slidingOf(read, 'failures', 'expires_at'), at),
      lockOf: (item, at) => this.slidingLock('pair', slidingOf(item, 'failures', 'expires_at'), at),
    };
  }

  private ipCounter(window: { pk: string; windowEnd: number }): HeldCounter {
    return {
      by: 'ip',
      table: this.table,
      key: { pk: window.pk },
      take: () => this.reserveWindow(window.pk, window.windowEnd),
      lockOf: (item, at) =>
        Number(item?.failures ?? 0) >= this.limits.ipMaxFailures ? { by: 'ip', retryAfterSeconds: window.windowEnd - epochSeconds(at) } : undefined,
    };
  }

  private slidingLock(by: Lock['by'], counter: SlidingCounter | undefined, at: Date): Lock | undefined {
    const left = (counter?.until ?? 0) - epochSeconds(at);
    return counter && counter.failures >= this.limits.maxFailures && left > 0 ? { by, retryAfterSeconds: left } : undefined;
  }

  /**
   * Take a slot of `counter`; when its last slots are held, read it again and again (strongly
   * consistent) until a slot frees up (an attempt in flight was right and gave its slot back),
   * or every attempt it holds has settled as a failure (refused with the lock), or
   * WAIT_FOR_IN_FLIGHT_MS has passed (refused for a second). Undefined: taken.
   */
  private async reserveWaiting(counter: HeldCounter, firstRead: Record<string, unknown> | undefined, at: Date): Promise<Lock | undefined | 'gone'> {
    const started = Date.now();
    const now = () => new Date(at.getTime() + (Date.now() - started));
    // The bound is measured as the store deadline is: without the time the process could not listen.
    const waitStarted = listeningClock();
    let read = firstRead;
    for (let poll = FIRST_POLL_MS, round = 0; ; poll = Math.min(poll * 2, 200), round++) {
      if (await counter.take(read, now())) return undefined;
      const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: counter.table, Key: counter.key, ConsistentRead: true })));
      read = Item;
      // A device token ended meanwhile (a logout elsewhere): there is no such counter to wait for.
      if (!Item && counter.mustExist) return 'gone';
      const lock = counter.lockOf(Item, now());
      if (lock && !inFlight(Item)) return lock;
      const left = WAIT_FOR_IN_FLIGHT_MS - (listeningClock() - waitStarted);
      if (left <= 0) return { by: counter.by, retryAfterSeconds: CONTENDED_RETRY_AFTER_SECONDS };
      // A slot that looked free is tried again at once, the first time; held ones are polled.
      // Waiting on other requests, not on the store: the store deadline stands still meanwhile.
      if (lock || round > 0) await outsideStoreDeadline(() => pause(Math.min(poll, left)));
    }
  }

  /** A stranger's success gives its IP slot back (its pair counter is deleted with the new session). */
  async giveBackIp(reservation: Pick<Reservation, 'ipKey'>): Promise<void> {
    await this.giveBack(reservation.ipKey);
  }

  /** A device token's slot given back: its attempt was refused elsewhere, or was a right password that still owes a second factor. */
  async giveBackDevice(hash: string): Promise<void> {
    await this.giveBack(deviceKey(hash));
  }

  /** A failure recorded: the stranger's attempts (pair and IP) stay counted, and are no longer in flight; the pair's lock slides on. */
  async settleStranger(reservation: Pick<Reservation, 'pairKey' | 'ipKey'>, at: Date): Promise<void> {
    await Promise.allSettled([this.settle(reservation.pairKey, at, 'expires_at'), this.settle(reservation.ipKey, at)]);
  }

  /** A device token's failure recorded: it stays counted, no longer in flight, and the token's lock slides on. */
  async settleDevice(hash: string, at: Date): Promise<void> {
    await this.settle(deviceKey(hash), at, 'failures_until');
  }

  /**
   * One attempt fewer, only on a counter that still has one: a counter deleted meanwhile (a success
   * cleared the pair) or already at zero is left alone, so a give-back can never create a counter or
   * push one below zero (which would hand out extra attempts, or leave an item without expiry).
   * Best effort: a fault here must not hide the answer.
   */
  private async giveBack(key: Record<string, unknown>): Promise<void> {
    await compensatingUpdate(this.db, {
      TableName: this.table,
      Key: key,
      UpdateExpression: 'ADD failures :minus, pending :minus',
      ConditionExpression: 'failures > :zero',
      ExpressionAttributeValues: { ':minus': -1, ':zero': 0 },
    }).catch(() => false);
  }

  /**
   * An attempt in flight has settled as a failure: still counted, no longer pending; a sliding
   * counter's lock (`until`) runs from now (each failure pushes it, as LOGIN_LOCKOUT_SECONDS says).
   * Best effort.
   */
  private async settle(key: Record<string, unknown>, at: Date, until?: string): Promise<void> {
    await compensatingUpdate(this.db, {
      TableName: this.table,
      Key: key,
      UpdateExpression: until ? 'ADD pending :minus SET #u = :until' : 'ADD pending :minus',
      // Only an attempt still pending: a success that cleared the counter meanwhile (the pair deleted, the device token renewed) wins.
      ConditionExpression: 'pending > :zero',
      ...(until ? { ExpressionAttributeNames: { '#u': until } } : {}),
      ExpressionAttributeValues: { ':minus': -1, ':zero': 0, ...(until ? { ':until': epochSeconds(at) + this.limits.lockoutSeconds } : {}) },
    }).catch(() => false);
  }

  /** A device token's counts cleared: a success with it (one that hands out a fresh token instead of renewing it). Best effort. */
  async clearDevice(hash: string): Promise<void> {
    await removeAttributes(this.db, this.table, deviceKey(hash), DEVICE_COUNTS).catch(() => false);
  }

  /**
   * A device token replaced by a new one, after a second factor's sign-in it was presented at has
   * succeeded (its code and token both spent). Best effort: a leftover token only lives out its life.
   */
  async forgetDevice(hash: string): Promise<void> {
    await storeCall(this.db.send(new DeleteCommand({ TableName: this.table, Key: deviceKey(hash) }))).catch(() => undefined);
  }

  /**
   * The device token of the session that activated TOTP, carried over to the new epoch with its
   * session (the activation ended every other one): only while it still names that session.
   */
  async carryDeviceOver(hash: string, sessionId: string, { from, to }: { from: number; to: number }): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: deviceKey(hash),
      UpdateExpression: 'SET user_epoch = :to',
      ConditionExpression: 'session_id = :sid AND user_epoch = :from',
      ExpressionAttributeValues: { ':sid': sessionId, ':from': from, ':to': to },
    }).catch(() => false);
  }

  /** The write that deletes a pair counter, for a sign-in's BatchWriteItem: a success ends its consecutive failures. */
  pairClearing(key: Record<string, unknown>): BatchWrite {
    return { table: this.table, deleteKey: key };
  }

  /** A device token's item as it stands (a second factor reserves its counter when the password's sign-in presented it). */
  async readDevice(hash: string): Promise<DeviceItem | undefined> {
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.table, Key: deviceKey(hash), ConsistentRead: true })));
    return Item as DeviceItem | undefined;
  }

  /**
   * The device token handed out with a session that has just ended, ended with it: only while that
   * session is still the one it was last handed out with (a later sign-in with it moved it on).
   */
  async endDevice(hash: string, sessionId: string): Promise<boolean> {
    try {
      await storeCall(
        this.db.send(new DeleteCommand({ TableName: this.table, Key: deviceKey(hash), ConditionExpression: 'session_id = :sid', ExpressionAttributeValues: { ':sid': sessionId } })),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  /** One of a device token's attempts, for a second factor (waiting as a sign-in does). */
  async reserveDeviceByHash(hash: string, item: DeviceItem, at: Date): Promise<Lock | undefined | 'gone'> {
    return this.reserveWaiting(this.deviceCounter(hash), item as unknown as Record<string, unknown>, at);
  }

  /**
   * A signed-in user's current password (a password change, a TOTP set-up), reserved on the
   * session's own count of wrong ones before bcrypt runs: LOGIN_MAX_FAILURES in a row lock that
   * session's checks for LOGIN_LOCKOUT_SECONDS. Nobody without the session can move it.
   */
  async reserveSessionPassword(sessionId: string, userId: string, read: SlidingCounter | undefined, at: Date): Promise<Lock | undefined> {
    const settled = this.slidingLock('session', read, at);
    if (settled) return settled;
    const taken = await this.reserveSliding(
      { table: this.sessionsTable, key: sessionKey(sessionId), failures: 'password_failures', until: 'password_failures_until', mustExist: true, owner: userId },
      read,
      at,
    );
    return taken ? undefined : { by: 'session', retryAfterSeconds: this.limits.lockoutSeconds };
  }

  /** A right current password: the session's count of wrong ones starts again. Best effort. */
  async clearSessionPassword(sessionId: string): Promise<void> {
    await removeAttributes(this.db, this.sessionsTable, sessionKey(sessionId), ['password_failures', 'password_failures_until']).catch(() => false);
  }

  /**
   * Clear hourly counters of the user item older than a reservation clears by itself (a user who
   * signs in every few days leaves one behind each time). Made where a sign-in has a round trip to
   * spare: a stranger's failure, a device token's sign-in. Best effort.
   */
  async clearStaleCounters(userId: string, names: string[]): Promise<void> {
    await removeAttributes(this.db, this.usersTable, userKey(userId), names).catch(() => false);
  }

  /**
   * One attempt of the account's hour, only while under the cap (a refusal moves nothing). For a
   * user, an attribute of the user item (`ADD`, which also returns the user, strongly consistent,
   * and clears the attributes of earlier hours); for an email with no user, a counter item of its
   * own, at the same cost. Successes count too: nobody signs in a hundred times an hour without a
   * device token.
   */
  private async reserveAccountAttempt(
    email: string,
    userId: string | undefined,
    at: Date,
  ): Promise<{ lock?: Lock; user?: User; staleCounters: string[]; taken: { table: string; key: Record<string, unknown>; attribute: string } }> {
    const now = epochSeconds(at);
    const window = accountWindow(email, now);
    const lock: Lock = { by: 'account', retryAfterSeconds: window.windowEnd - now };
    const cap = this.limits.accountMaxFailuresPerHour;
    if (userId !== undefined) {
      const names: Record<string, string> = { '#now': accountAttribute(window.hour) };
      for (let back = 1; back <= STALE_HOURS_CLEARED; back++) names[`#h${back}`] = accountAttribute(window.hour - back * HOUR);
      const item = await updateAndReadIf(this.db, {
        TableName: this.usersTable,
        Key: userKey(userId),
        UpdateExpression: `ADD #now :one REMOVE ${Object.keys(names).filter((name) => name !== '#now').join(', ')}`,
        // A claim whose user is gone (a creation that failed half-way) is refused as a spent hour:
        // there is no account to sign in to, and nothing is written.
        ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(#now) OR #now < :cap)',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':one': 1, ':cap': cap },
      });
      const taken = { table: this.usersTable, key: userKey(userId), attribute: accountAttribute(window.hour) };
      return item ? { user: userFromItem(item), staleCounters: staleCounters(item, now), taken } : { lock, staleCounters: [], taken };
    }
    const taken = await updateIf(this.db, {
      TableName: this.table,
      Key: { pk: window.pk },
      UpdateExpression: 'ADD attempts :one SET expires_at = if_not_exists(expires_at, :end)',
      ConditionExpression: 'attribute_not_exists(attempts) OR attempts < :cap',
      ExpressionAttributeValues: { ':one': 1, ':end': window.windowEnd, ':cap': cap },
    });
    const counter = { table: this.table, key: { pk: window.pk }, attribute: 'attempts' };
    return taken ? { staleCounters: [], taken: counter } : { lock, staleCounters: [], taken: counter };
  }

  /** One failure in a fixed window, only while the window is under the IP limit. False: refused. */
  private async reserveWindow(pk: string, windowEnd: number): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: { pk },
      UpdateExpression: 'ADD failures :one, pending :one SET expires_at = if_not_exists(expires_at, :end), pending_at = :ms',
      ConditionExpression: 'attribute_not_exists(failures) OR failures < :max',
      ExpressionAttributeValues: { ':one': 1, ':end': windowEnd, ':max': this.limits.ipMaxFailures, ':ms': Date.now() },
    });
  }

  /**
   * One attempt of a counter whose lock slides (pair, device token, a session's password checks),
   * chosen by what was read: a missing or live counter is added to while under the limit; a stale
   * one starts again at 1, only if it is still stale. One write either way, so of any number of
   * racing requests at most `maxFailures` get through. On the attempts table the attempt is also
   * marked in flight (`pending`, `pending_at`) until its outcome settles it, and a live counter's
   * lock is pushed to now + lockout only when a failure settles (`settle`): a reservation given back
   * leaves it as it was. (A session's count has no outcome to wait for: one user's own requests.)
   * False: refused.
   */
  private async reserveSliding(
    target: { table: string; key: Record<string, unknown>; failures: string; until: string; mustExist: boolean; owner?: string },
    read: SlidingCounter | undefined,
    at: Date,
  ): Promise<boolean> {
    const now = epochSeconds(at);
    const stale = read !== undefined && read.until <= now;
    const exists = target.owner !== undefined ? 'user_id = :owner AND ' : target.mustExist ? 'attribute_exists(pk) AND ' : '';
    const tracked = target.table === this.table;
    const live = tracked ? 'ADD #f :one, pending :one SET #u = if_not_exists(#u, :until), pending_at = :ms' : 'ADD #f :one SET #u = :until';
    return updateIf(this.db, {
      TableName: target.table,
      Key: target.key,
      UpdateExpression: stale ? `SET #f = :one, #u = :until${tracked ? ', pending = :one, pending_at = :ms' : ''}` : live,
      ConditionExpression: stale
        ? `${exists}(attribute_not_exists(#u) OR #u <= :now)`
        : `${exists}(attribute_not_exists(#f) OR (#u > :now AND #f < :max))`,
      ExpressionAttributeNames: { '#f': target.failures, '#u': target.until },
      ExpressionAttributeValues: {
        ':one': 1,
        ':until': now + this.limits.lockoutSeconds,
        ':now': now,
        ...(stale ? {} : { ':max': this.limits.maxFailures }),
        ...(tracked ? { ':ms': Date.now() } : {}),
        ...(target.owner !== undefined ? { ':owner': target.owner } : {}),
      },
    });
  }
}

/** A sliding counter's state from an item read (undefined: none). */
function slidingOf(item: Record<string, unknown> | undefined, failures: string, until: string): SlidingCounter | undefined {
  if (!item || item[until] === undefined) return undefined;
  return { failures: Number(item[failures] ?? 0), until: Number(item[until]) };
}

/**
 * `npm run users -- unlock`: clear every counter of one account. Its pair counters (every IP) and
 * its hourly attempts (on the user item, and any counted while the email had no user), and the
 * failure counters of its device tokens. (Its second factor's counts are lib/store/mfa.ts's
 * `clearCodeFailures`, which the CLI's unlock calls beside this.) The IP counters are left alone: they are the addresses',
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
    await removeAttributes(db, tables.attemptsTable, key, DEVICE_COUNTS);
  }
  const { Item } = await storeCall(db.send(new GetCommand({ TableName: tables.usersTable, Key: userKey(userId), ConsistentRead: true })));
  const hours = Object.keys(Item ?? {}).filter((name) => name.startsWith(ACCOUNT_ATTRIBUTE_PREFIX));
  await removeAttributes(db, tables.usersTable, userKey(userId), hours);
  return { counters: counters.length + hours.length, devices: devices.length };
}

/** Remove attributes from an item that still exists (counters cleared); nothing to do for none. */
async function removeAttributes(db: DynamoDBDocumentClient, table: string, key: Record<string, unknown>, names: string[]): Promise<boolean> {
  if (names.length === 0) return false;
  return updateIf(db, {
    TableName: table,
    Key: key,
    UpdateExpression: `REMOVE ${names.map((_, i) => `#a${i}`).join(', ')}`,
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeNames: Object.fromEntries(names.map((name, i) => [`#a${i}`, name])),
  });
}
