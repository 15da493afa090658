import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { compensatingDecrement, scanAll, updateAndReadIf, updateIf } from '../platform/dynamo.js';
import { epochSeconds } from './sessions.js';
import { userFromItem, userKey, type CodeFailures, type User } from './users.js';

/**
 * A user's second factor, as attributes of the user item (read with the user: `User.totp`): the
 * TOTP secret (sealed, never in clear: lib/mfa/secret-box.ts), whether it is pending (set up, not
 * yet proven with a code) or active, the last time step a code was accepted for (a code is never
 * accepted twice), and the recovery codes' MACs. Every change is one conditional write, so racing
 * requests cannot both use one code, one recovery code, or one pending secret.
 */
const TOTP_ATTRIBUTES = 'totp_status, totp_secret, totp_last_step, recovery_kid, recovery_macs, totp_activated_at';
/** A code's step later than any accepted before. */
const LATER_STEP = '(attribute_not_exists(totp_last_step) OR totp_last_step < :step)';
/** The account's consecutive wrong second factors (`User.codeFailures`); `code_locks` is kept for the doubling. */
const CODE_FAILURE_ATTRIBUTES = 'code_failures, code_locked_until, code_locks, recovery_failures';
/**
 * What a successful TOTP code clears: its count and a lock in force (not how many locks there were,
 * nor the recovery codes' count: past its limit only an operator's unlock helps). A successful
 * recovery code clears both counts.
 */
const RESET_FAILURES = 'code_failures, code_locked_until';
const RESET_ALL_FAILURES = `${RESET_FAILURES}, recovery_failures`;
/** The longest a lock of TOTP codes lasts, however many came before it. */
const MAX_CODE_LOCK_SECONDS = 86_400;

/** The second-factor limits (MFA_MAX_FAILURES, MFA_LOCKOUT_SECONDS). */
export interface CodeLimits {
  maxFailures: number;
  lockoutSeconds: number;
}

/** How long the lock after `locks` earlier ones lasts: MFA_LOCKOUT_SECONDS, doubling each time, at most a day. */
export function codeLockSeconds(limits: CodeLimits, locks: number): number {
  return Math.min(limits.lockoutSeconds * 2 ** Math.min(locks, 20), MAX_CODE_LOCK_SECONDS);
}

/** A TOTP lock in force on the counts as read: seconds left, or undefined. */
export function codeLockLeft(failures: CodeFailures, limits: CodeLimits, at: Date): number | undefined {
  const left = failures.lockedUntil - epochSeconds(at);
  return failures.codes >= limits.maxFailures && left > 0 ? left : undefined;
}

/** A code's reservation: taken (with the count it made), or refused (a lock, with how long it lasts). */
export type CodeReservation = { taken: true; count: number; lockSeconds: number } | { taken: false; retryAfterSeconds: number };

export interface RecoveryCodes {
  /** The MFA key the MACs are under. */
  kid: string;
  macs: string[];
}

/**
 * `npm run users -- unlock`: the account's second-factor counts cleared, a TOTP lock and the
 * doubling of the next one, and the recovery codes' lock, which nothing else lifts. False when
 * there is no such user.
 */
export async function clearCodeFailures(db: DynamoDBDocumentClient, usersTable: string, userId: string): Promise<boolean> {
  return updateIf(db, {
    TableName: usersTable,
    Key: userKey(userId),
    UpdateExpression: `REMOVE ${CODE_FAILURE_ATTRIBUTES}`,
    ConditionExpression: 'attribute_exists(pk)',
  });
}

export class MfaRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly table: string,
  ) {}

  /** A new pending secret, replacing a pending one; false when TOTP is active (or the user is gone): nothing written. */
  async savePending(userId: string, sealedSecret: string): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression: 'SET totp_status = :pending, totp_secret = :sealed REMOVE totp_last_step, recovery_kid, recovery_macs, totp_activated_at',
      ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(totp_status) OR totp_status = :pending)',
      ExpressionAttributeValues: { ':pending': 'pending', ':sealed': sealedSecret },
    });
  }

  /**
   * The pending secret proven by a code of `step`: active, that step spent, the recovery codes
   * stored, and a new session epoch (every session and device token of the user ends). Only if the
   * pending secret is still the one the code was checked against and the epoch is still the one
   * read (a setup, another activation or a logout won meanwhile: undefined). `keepSession`: the
   * session activating, which stands on (lib/store/sessions.ts, isSessionLive). The user as written.
   */
  async activate(
    userId: string,
    { sealedSecret, step, recovery, epoch, at, keepSession }: { sealedSecret: string; step: number; recovery: RecoveryCodes; epoch: number; at: Date; keepSession?: string },
  ): Promise<User | undefined> {
    const item = await updateAndReadIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression:
        'SET totp_status = :active, totp_last_step = :step, recovery_kid = :kid, recovery_macs = :macs, totp_activated_at = :at, updated_at = :at, ' +
        `kept_session_id = :kept, kept_session_epoch = :epoch ADD session_epoch :one REMOVE ${RESET_FAILURES}`,
      ConditionExpression: 'totp_status = :pending AND totp_secret = :sealed AND session_epoch = :epoch',
      ExpressionAttributeValues: {
        ':active': 'active',
        ':pending': 'pending',
        ':step': step,
        ':kid': recovery.kid,
        ':macs': new Set(recovery.macs),
        ':at': at.toISOString(),
        ':sealed': sealedSecret,
        ':epoch': epoch,
        ':one': 1,
        // No session to keep (an enrolment at sign-in): a name no session has.
        ':kept': keepSession ?? '-',
      },
    });
    return item && userFromItem(item);
  }

  /**
   * Spend a code's step: true only for a step later than any accepted before (a replay, or a racing
   * twin, gets false). A success: the account's wrong-code counts and any lock in force end with it.
   */
  async claimStep(userId: string, step: number): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression: `SET totp_last_step = :step REMOVE ${RESET_FAILURES}`,
      ConditionExpression: `totp_status = :active AND ${LATER_STEP}`,
      ExpressionAttributeValues: { ':active': 'active', ':step': step },
    });
  }

  /**
   * Spend one recovery code (by its MAC): how many are left, or undefined when it was not there
   * (used, or never one). A success, so the wrong-code counts and a TOTP lock in force end with it.
   */
  async useRecoveryCode(userId: string, mac: string): Promise<number | undefined> {
    const item = await updateAndReadIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression: `DELETE recovery_macs :mac REMOVE ${RESET_ALL_FAILURES}`,
      ConditionExpression: 'totp_status = :active AND contains(recovery_macs, :one)',
      ExpressionAttributeValues: { ':mac': new Set([mac]), ':one': mac, ':active': 'active' },
    });
    return item && ((item.recovery_macs as Set<string> | undefined)?.size ?? 0);
  }

  /**
   * New recovery codes for active TOTP, proven by a code of `step` spent by this very write (a
   * replay fails); the old codes die, and the wrong-code counts end. False when TOTP is not active
   * or the step is not later than the last.
   */
  async replaceRecoveryCodes(userId: string, recovery: RecoveryCodes, step: number): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression: `SET recovery_kid = :kid, recovery_macs = :macs, totp_last_step = :step REMOVE ${RESET_FAILURES}`,
      ConditionExpression: `totp_status = :active AND ${LATER_STEP}`,
      ExpressionAttributeValues: { ':kid': recovery.kid, ':macs': new Set(recovery.macs), ':active': 'active', ':step': step },
    });
  }

  /**
   * One TOTP code's attempt, reserved before the code is checked: the account's consecutive wrong
   * codes, as read (`read`), go up by one while under MFA_MAX_FAILURES; after a lock has run out
   * they start again at 1. Each reservation also sets when a lock it would complete ends (so the one
   * that reaches the limit has set it). Of any number of racing codes, at most the limit are taken.
   * A lock in force, or a race lost to the code that completed one, is refused without a write.
   */
  async reserveCode(userId: string, read: CodeFailures, limits: CodeLimits, at: Date): Promise<CodeReservation> {
    const now = epochSeconds(at);
    const left = codeLockLeft(read, limits, at);
    if (left !== undefined) return { taken: false, retryAfterSeconds: left };
    const lockEnds = now + codeLockSeconds(limits, read.locks);
    const ranOut = read.codes >= limits.maxFailures;
    const item = await updateAndReadIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression: ranOut ? 'SET code_failures = :one, code_locked_until = :until' : 'ADD code_failures :one SET code_locked_until = :until',
      ConditionExpression: ranOut
        ? 'attribute_exists(pk) AND code_failures >= :max AND code_locked_until <= :now'
        : 'attribute_exists(pk) AND (attribute_not_exists(code_failures) OR code_failures < :max)',
      ExpressionAttributeValues: { ':one': 1, ':until': lockEnds, ':max': limits.maxFailures, ...(ranOut ? { ':now': now } : {}) },
    });
    if (!item) return { taken: false, retryAfterSeconds: codeLockSeconds(limits, read.locks) };
    return { taken: true, count: Number(item.code_failures), lockSeconds: lockEnds - now };
  }

  /**
   * One recovery code's attempt, reserved before it is checked: the count it made, while under the
   * limit; undefined when refused (no such lock runs out: only a success or an unlock resets it).
   */
  async reserveRecoveryCode(userId: string, limits: CodeLimits): Promise<number | undefined> {
    const item = await updateAndReadIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression: 'ADD recovery_failures :one',
      ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(recovery_failures) OR recovery_failures < :max)',
      ExpressionAttributeValues: { ':one': 1, ':max': limits.maxFailures },
    });
    return item && Number(item.recovery_failures);
  }

  /** A code's reservation given back (its request was refused by another limit): one fewer, never below zero. Best effort. */
  async giveBackCode(userId: string, kind: 'code' | 'recovery_code'): Promise<void> {
    await compensatingDecrement(this.db, { table: this.table, key: userKey(userId), attribute: kind === 'code' ? 'code_failures' : 'recovery_failures' });
  }

  /** A lock began (the wrong code that reached the limit): the next one lasts twice as long. */
  async countLock(userId: string): Promise<void> {
    await updateIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression: 'ADD code_locks :one',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: { ':one': 1 },
    });
  }

  /**
   * The user turns TOTP off with a code of `step`: secret and recovery codes gone, only if that
   * step is later than any accepted before (the code is spent by this very write: a replay fails).
   */
  async turnOff(userId: string, step: number): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression: `REMOVE ${TOTP_ATTRIBUTES}, ${RESET_ALL_FAILURES}`,
      ConditionExpression: `totp_status = :active AND ${LATER_STEP}`,
      ExpressionAttributeValues: { ':active': 'active', ':step': step },
    });
  }

  /**
   * An operator's reset (the user lost the authenticator and the codes): TOTP and recovery codes
   * gone and every session and API key ended, in one write. The user as written; undefined when there is none.
   */
  async reset(userId: string, at: Date): Promise<User | undefined> {
    const item = await updateAndReadIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      // The second factor's counts go with it: a new authenticator starts with a clean slate. So do
      // every session and API key (whoever took over the second factor may have made some).
      UpdateExpression: `REMOVE ${TOTP_ATTRIBUTES}, ${CODE_FAILURE_ATTRIBUTES} SET updated_at = :at ADD session_epoch :one, api_key_epoch :one`,
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: { ':at': at.toISOString(), ':one': 1 },
    });
    return item && userFromItem(item);
  }

  /**
   * Every stored TOTP, as kept: which MFA key each secret is sealed under and each set of recovery
   * codes is kept under. An operator's scan (`npm run keys -- ... --ring mfa`), never a request's.
   */
  async scanTotp(): Promise<Array<{ userId: string; sealedSecret: string; recoveryKid: string | undefined }>> {
    const items = await scanAll(this.db, {
      TableName: this.table,
      FilterExpression: 'begins_with(pk, :user) AND attribute_exists(totp_secret)',
      ProjectionExpression: 'id, totp_secret, recovery_kid',
      ExpressionAttributeValues: { ':user': 'USER#' },
    });
    return items.map((item) => ({ userId: item.id as string, sealedSecret: item.totp_secret as string, recoveryKid: item.recovery_kid as string | undefined }));
  }

  /** A secret sealed again (under the current MFA key), only over the sealed form it replaces. */
  async reseal(userId: string, from: string, to: string): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression: 'SET totp_secret = :to',
      ConditionExpression: 'totp_secret = :from',
      ExpressionAttributeValues: { ':from': from, ':to': to },
    });
  }
}
