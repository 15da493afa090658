import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { LoginLimits } from './config.js';
import { batchGetAll, isConditionalCheckFailed, storeCall } from './dynamo.js';
import { epochSeconds } from './sessions.js';
import { emailKey, normalizeEmail } from './users.js';

/**
 * Brute-force counters, shared by every Lambda through DynamoDB:
 * - ACCT#<email>#<hour>: every login attempt on one account in a clock hour, reserved with an
 *   atomic ADD *before* bcrypt runs, so however many requests race, attempt 101 of the hour is
 *   refused (OWASP ASVS: at most 100 failed attempts per hour; successes count too, and no
 *   person signs in a hundred times an hour).
 * - PAIR#<email>#<ip>: consecutive failures of one account from one IP. Each failure pushes
 *   `expires_at` to now + lockout; at `maxFailures` the pair is locked until `expires_at`; a
 *   counter past its `expires_at` is stale and starts again at 1. A success deletes it.
 * - IP#<ip>#<quarter hour>: failures from one IP across accounts in a 15-minute window.
 * The pair and IP counters are checked before bcrypt and counted after it, so requests racing
 * in the same instant can pass them together; the account reservation still bounds those to
 * 100 an hour. Unknown emails are counted like known ones, so a lock says nothing about existence.
 */
const HOUR = 3600;
const QUARTER_HOUR = 900;

// Key builders, one per counter; the windowed ones also say when their window ends.
const pairKey = (email: string, ip: string) => ({ pk: `PAIR#${normalizeEmail(email)}#${ip}` });

function accountWindow(email: string, now: number) {
  const hour = Math.floor(now / HOUR) * HOUR;
  return { pk: `ACCT#${normalizeEmail(email)}#${hour}`, windowEnd: hour + HOUR };
}

function ipWindow(ip: string, now: number) {
  const quarter = Math.floor(now / QUARTER_HOUR) * QUARTER_HOUR;
  return { pk: `IP#${ip}#${quarter}`, windowEnd: quarter + QUARTER_HOUR };
}

export interface Lock {
  /** Seconds until a login may be tried again. */
  retryAfterSeconds: number;
  /** Which limit, for the audit log. */
  by: 'pair' | 'account' | 'ip';
}

export interface AttemptState {
  lock: Lock | undefined;
  /** The user id the email claims, read in the same round trip (undefined: no such user). */
  userId: string | undefined;
  /** Whether the pair counter is live (a failure adds to it, a success deletes it). */
  pairLive: boolean;
}

export class LoginAttempts {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly table: string,
    private readonly usersTable: string,
    private readonly limits: LoginLimits,
  ) {}

  /** The pair and IP counters and the email's user id, in one BatchGetItem. */
  async read(email: string, ip: string, at: Date): Promise<AttemptState> {
    const now = epochSeconds(at);
    const keys = { pair: pairKey(email, ip), ip: ipWindow(ip, now) };
    const found = await batchGetAll(this.db, { [this.table]: [keys.pair, { pk: keys.ip.pk }], [this.usersTable]: [emailKey(email)] });
    const counters = new Map(found[this.table]!.map((item) => [item.pk as string, item as { failures?: number; expires_at?: number }]));
    const pair = counters.get(keys.pair.pk);
    const pairLive = pair !== undefined && (pair.expires_at ?? 0) > now;
    let lock: Lock | undefined;
    if (pairLive && (pair!.failures ?? 0) >= this.limits.maxFailures) lock = { by: 'pair', retryAfterSeconds: pair!.expires_at! - now };
    if ((counters.get(keys.ip.pk)?.failures ?? 0) >= this.limits.ipMaxFailures) {
      const ipLock = { by: 'ip' as const, retryAfterSeconds: keys.ip.windowEnd - now };
      if (!lock || ipLock.retryAfterSeconds > lock.retryAfterSeconds) lock = ipLock;
    }
    return { lock, userId: found[this.usersTable]![0]?.user_id as string | undefined, pairLive };
  }

  /** Take one of the account's attempts for this hour (atomic); a lock once the hour's are used up. */
  async reserveAccountAttempt(email: string, at: Date): Promise<Lock | undefined> {
    const now = epochSeconds(at);
    const account = accountWindow(email, now);
    const { Attributes } = await storeCall(
      this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: account.pk },
          UpdateExpression: 'ADD attempts :one SET expires_at = if_not_exists(expires_at, :end)',
          ExpressionAttributeValues: { ':one': 1, ':end': account.windowEnd },
          ReturnValues: 'UPDATED_NEW',
        }),
      ),
    );
    const attempts = Number(Attributes?.attempts ?? 0);
    return attempts > this.limits.accountMaxFailuresPerHour ? { by: 'account', retryAfterSeconds: account.windowEnd - now } : undefined;
  }

  /** Count one failed login against the pair and the IP (two atomic writes, in parallel). */
  async recordFailure(email: string, ip: string, at: Date, pairLive: boolean): Promise<void> {
    const now = epochSeconds(at);
    const window = ipWindow(ip, now);
    await Promise.all([this.bumpPair(pairKey(email, ip).pk, now, pairLive), this.bumpWindow(window.pk, window.windowEnd)]);
  }

  /** What a successful login deletes: the pair's consecutive failures (written with the new session). */
  pairKey(email: string, ip: string): { table: string; key: Record<string, unknown> } {
    return { table: this.table, key: pairKey(email, ip) };
  }

  private async bumpPair(pk: string, now: number, live: boolean): Promise<void> {
    const expiresAt = now + this.limits.lockoutSeconds;
    // Add to a live counter, restart a stale or missing one; the condition catches a counter
    // that changed state since it was read, and the other form is tried once.
    const forms = [
      { UpdateExpression: 'ADD failures :one SET expires_at = :exp', ConditionExpression: 'expires_at > :now' },
      { UpdateExpression: 'SET failures = :one, expires_at = :exp', ConditionExpression: 'attribute_not_exists(pk) OR expires_at <= :now' },
    ];
    for (const form of live ? forms : [forms[1]!, forms[0]!]) {
      try {
        await storeCall(
          this.db.send(
            new UpdateCommand({ TableName: this.table, Key: { pk }, ...form, ExpressionAttributeValues: { ':one': 1, ':exp': expiresAt, ':now': now } }),
          ),
        );
        return;
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
      }
    }
  }

  private async bumpWindow(pk: string, windowEnd: number): Promise<void> {
    await storeCall(
      this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk },
          UpdateExpression: 'ADD failures :one SET expires_at = if_not_exists(expires_at, :exp)',
          ExpressionAttributeValues: { ':one': 1, ':exp': windowEnd },
        }),
      ),
    );
  }
}
