import { BatchGetCommand, DeleteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { LoginLimits } from './config.js';
import { isConditionalCheckFailed, storeCall } from './dynamo.js';
import { epochSeconds } from './sessions.js';
import { emailKey, normalizeEmail } from './users.js';

/**
 * Failed-login counters, shared by every Lambda through DynamoDB:
 * - PAIR#<email>#<ip>: consecutive failures of one account from one IP. Each failure pushes
 *   `expires_at` to now + lockout; at `maxFailures` the pair is locked until `expires_at`, and a
 *   counter past its `expires_at` is stale and starts again at 1. A success deletes it.
 * - ACCT#<email>#<hour>: failures of one account from anywhere in a clock hour.
 * - IP#<ip>#<quarter hour>: failures from one IP across accounts in a 15-minute window.
 * Unknown emails are counted like known ones, so a lockout tells nothing about existence.
 */
const HOUR = 3600;
const QUARTER_HOUR = 900;

interface Keys {
  pair: { pk: string };
  account: { pk: string; windowEnd: number };
  ip: { pk: string; windowEnd: number };
}

function keysFor(email: string, ip: string, now: number): Keys {
  const account = normalizeEmail(email);
  const hour = Math.floor(now / HOUR) * HOUR;
  const quarter = Math.floor(now / QUARTER_HOUR) * QUARTER_HOUR;
  return {
    pair: { pk: `PAIR#${account}#${ip}` },
    account: { pk: `ACCT#${account}#${hour}`, windowEnd: hour + HOUR },
    ip: { pk: `IP#${ip}#${quarter}`, windowEnd: quarter + QUARTER_HOUR },
  };
}

export interface AttemptState {
  /** Seconds until a login may be tried again; undefined when not locked. */
  lockedForSeconds: number | undefined;
  /** Why it is locked, for the audit log. */
  lockedBy: 'pair' | 'account' | 'ip' | undefined;
  /** The user id the email claims, read in the same round trip (undefined: no such user). */
  userId: string | undefined;
  /** Whether the pair counter is live (a failure adds to it) or absent/stale (a failure starts it). */
  pairLive: boolean;
}

interface CounterItem {
  pk: string;
  failures?: number;
  expires_at?: number;
  user_id?: string;
}

export class LoginAttempts {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly table: string,
    private readonly usersTable: string,
    private readonly limits: LoginLimits,
  ) {}

  /** The three counters and the email's user id, in one BatchGetItem. */
  async read(email: string, ip: string, at: Date): Promise<AttemptState> {
    const now = epochSeconds(at);
    const keys = keysFor(email, ip, now);
    let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead: boolean }> = {
      [this.table]: { Keys: [{ pk: keys.pair.pk }, { pk: keys.account.pk }, { pk: keys.ip.pk }], ConsistentRead: true },
      [this.usersTable]: { Keys: [emailKey(email)], ConsistentRead: true },
    };
    const items = new Map<string, CounterItem>();
    for (let attempt = 0; attempt < 3 && Object.keys(request).length > 0; attempt++) {
      const { Responses, UnprocessedKeys } = await storeCall(this.db.send(new BatchGetCommand({ RequestItems: request })));
      for (const item of [...(Responses?.[this.table] ?? []), ...(Responses?.[this.usersTable] ?? [])]) {
        items.set(item.pk as string, item as CounterItem);
      }
      request = (UnprocessedKeys ?? {}) as typeof request;
    }
    if (Object.keys(request).length > 0) throw new Error('BatchGetItem left keys unprocessed after retries');

    const pair = items.get(keys.pair.pk);
    const pairLive = pair !== undefined && (pair.expires_at ?? 0) > now;
    const locks: Array<[AttemptState['lockedBy'], number]> = [];
    if (pairLive && (pair!.failures ?? 0) >= this.limits.maxFailures) locks.push(['pair', pair!.expires_at! - now]);
    if ((items.get(keys.account.pk)?.failures ?? 0) >= this.limits.accountMaxFailuresPerHour) locks.push(['account', keys.account.windowEnd - now]);
    if ((items.get(keys.ip.pk)?.failures ?? 0) >= this.limits.ipMaxFailures) locks.push(['ip', keys.ip.windowEnd - now]);
    const longest = locks.sort((a, b) => b[1] - a[1])[0];
    return {
      lockedForSeconds: longest ? Math.max(1, longest[1]) : undefined,
      lockedBy: longest?.[0],
      userId: items.get(emailKey(email).pk)?.user_id,
      pairLive,
    };
  }

  /** Count one failed login against the pair, the account and the IP (three atomic writes, in parallel). */
  async recordFailure(email: string, ip: string, at: Date, pairLive: boolean): Promise<void> {
    const now = epochSeconds(at);
    const keys = keysFor(email, ip, now);
    await Promise.all([
      this.bumpPair(keys.pair.pk, now, pairLive),
      this.bumpWindow(keys.account.pk, keys.account.windowEnd),
      this.bumpWindow(keys.ip.pk, keys.ip.windowEnd),
    ]);
  }

  /** A successful login clears the pair's consecutive failures. */
  async recordSuccess(email: string, ip: string, at: Date): Promise<void> {
    const keys = keysFor(email, ip, epochSeconds(at));
    await storeCall(this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: keys.pair.pk } })));
  }

  private async bumpPair(pk: string, now: number, live: boolean): Promise<void> {
    const expiresAt = now + this.limits.lockoutSeconds;
    // Add to a live counter, restart a stale or missing one; the condition catches a counter
    // that changed state since it was read, and the other form is tried once.
    const forms = [
      { UpdateExpression: 'ADD failures :one SET expires_at = :exp', ConditionExpression: 'expires_at > :now' },
      { UpdateExpression: 'SET failures = :one, expires_at = :exp', ConditionExpression: 'attribute_not_exists(pk) OR expires_at <= :now' },
    ];
    const order = live ? forms : [forms[1]!, forms[0]!];
    for (const form of order) {
      try {
        await storeCall(
          this.db.send(
            new UpdateCommand({
              TableName: this.table,
              Key: { pk },
              ...form,
              ExpressionAttributeValues: { ':one': 1, ':exp': expiresAt, ':now': now },
            }),
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
