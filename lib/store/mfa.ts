import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { scanAll, updateAndReadIf, updateIf } from '../platform/dynamo.js';
import { userFromItem, userKey, type User } from './users.js';

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

export interface RecoveryCodes {
  /** The MFA key the MACs are under. */
  kid: string;
  macs: string[];
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
        'kept_session_id = :kept, kept_session_epoch = :epoch ADD session_epoch :one',
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

  /** Spend a code's step: true only for a step later than any accepted before (a replay, or a racing twin, gets false). */
  async claimStep(userId: string, step: number): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression: 'SET totp_last_step = :step',
      ConditionExpression: `totp_status = :active AND ${LATER_STEP}`,
      ExpressionAttributeValues: { ':active': 'active', ':step': step },
    });
  }

  /** Spend one recovery code (by its MAC): how many are left, or undefined when it was not there (used, or never one). */
  async useRecoveryCode(userId: string, mac: string): Promise<number | undefined> {
    const item = await updateAndReadIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression: 'DELETE recovery_macs :mac',
      ConditionExpression: 'totp_status = :active AND contains(recovery_macs, :one)',
      ExpressionAttributeValues: { ':mac': new Set([mac]), ':one': mac, ':active': 'active' },
    });
    return item && ((item.recovery_macs as Set<string> | undefined)?.size ?? 0);
  }

  /** New recovery codes for active TOTP; the old ones die. False when TOTP is not active. */
  async replaceRecoveryCodes(userId: string, recovery: RecoveryCodes): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression: 'SET recovery_kid = :kid, recovery_macs = :macs',
      ConditionExpression: 'totp_status = :active',
      ExpressionAttributeValues: { ':kid': recovery.kid, ':macs': new Set(recovery.macs), ':active': 'active' },
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
      UpdateExpression: `REMOVE ${TOTP_ATTRIBUTES}`,
      ConditionExpression: `totp_status = :active AND ${LATER_STEP}`,
      ExpressionAttributeValues: { ':active': 'active', ':step': step },
    });
  }

  /**
   * An operator's reset (the user lost the authenticator and the codes): TOTP and recovery codes
   * gone and every session ended, in one write. The user as written; undefined when there is none.
   */
  async reset(userId: string, at: Date): Promise<User | undefined> {
    const item = await updateAndReadIf(this.db, {
      TableName: this.table,
      Key: userKey(userId),
      UpdateExpression: `REMOVE ${TOTP_ATTRIBUTES} SET updated_at = :at ADD session_epoch :one`,
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
