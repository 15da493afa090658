import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionalCheckFailed, storeCall, updateAndReadIf, updateIf } from '../platform/dynamo.js';

/**
 * A user's second factor, one item beside the user in the users table: the TOTP secret (sealed,
 * never in clear: lib/mfa/secret-box.ts), whether it is pending (set up, not yet proven with a
 * code) or active, the last time step a code was accepted for (a code is never accepted twice),
 * and the recovery codes' MACs. Every change is one conditional write, so racing requests cannot
 * both use one code, one recovery code, or one pending secret.
 */
export const mfaKey = (userId: string) => ({ pk: `MFA#${userId}` });

export type TotpStatus = 'pending' | 'active';

export interface RecoveryCodes {
  /** The MFA key the MACs are under. */
  kid: string;
  macs: string[];
}

export interface MfaState {
  userId: string;
  status: TotpStatus;
  sealedSecret: string;
  /** The last 30-second step a code was accepted for; codes of this step and earlier are refused. */
  lastStep: number | undefined;
  recovery: RecoveryCodes | undefined;
  activatedAt: string | undefined;
}

interface MfaItem {
  pk: string;
  user_id: string;
  totp_status: TotpStatus;
  totp_secret: string;
  totp_last_step?: number;
  recovery_kid?: string;
  /** A string set: DynamoDB removes one member in a conditional write (and drops the attribute when it empties). */
  recovery_macs?: Set<string>;
  created_at: string;
  activated_at?: string;
}

export function mfaFromItem(item: Record<string, unknown>): MfaState {
  const row = item as unknown as MfaItem;
  return {
    userId: row.user_id,
    status: row.totp_status,
    sealedSecret: row.totp_secret,
    lastStep: row.totp_last_step,
    recovery: row.recovery_kid ? { kid: row.recovery_kid, macs: [...(row.recovery_macs ?? [])] } : undefined,
    activatedAt: row.activated_at,
  };
}

export class MfaRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly table: string,
  ) {}

  async get(userId: string): Promise<MfaState | undefined> {
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.table, Key: mfaKey(userId), ConsistentRead: true })));
    return Item ? mfaFromItem(Item) : undefined;
  }

  /** A new pending secret, replacing a pending one; false when TOTP is active (nothing written). */
  async savePending(userId: string, sealedSecret: string, at: Date): Promise<boolean> {
    const item: MfaItem = { ...mfaKey(userId), user_id: userId, totp_status: 'pending', totp_secret: sealedSecret, created_at: at.toISOString() };
    try {
      await storeCall(
        this.db.send(
          new PutCommand({
            TableName: this.table,
            Item: item,
            ConditionExpression: 'attribute_not_exists(pk) OR totp_status = :pending',
            ExpressionAttributeValues: { ':pending': 'pending' },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  /**
   * The pending secret proven by a code of `step`: active, that step spent, the recovery codes
   * stored. Only if the pending secret is still the one the code was checked against (a setup
   * meanwhile replaced it, or another activation won: false).
   */
  async activate(userId: string, { sealedSecret, step, recovery, at }: { sealedSecret: string; step: number; recovery: RecoveryCodes; at: Date }): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: mfaKey(userId),
      UpdateExpression: 'SET totp_status = :active, totp_last_step = :step, recovery_kid = :kid, recovery_macs = :macs, activated_at = :at',
      ConditionExpression: 'totp_status = :pending AND totp_secret = :sealed',
      ExpressionAttributeValues: {
        ':active': 'active',
        ':pending': 'pending',
        ':step': step,
        ':kid': recovery.kid,
        ':macs': new Set(recovery.macs),
        ':at': at.toISOString(),
        ':sealed': sealedSecret,
      },
    });
  }

  /** Spend a code's step: true only for a step later than any accepted before (a replay, or a racing twin, gets false). */
  async claimStep(userId: string, step: number): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: mfaKey(userId),
      UpdateExpression: 'SET totp_last_step = :step',
      ConditionExpression: 'totp_status = :active AND (attribute_not_exists(totp_last_step) OR totp_last_step < :step)',
      ExpressionAttributeValues: { ':active': 'active', ':step': step },
    });
  }

  /** Spend one recovery code (by its MAC): how many are left, or undefined when it was not there (used, or never one). */
  async useRecoveryCode(userId: string, mac: string): Promise<number | undefined> {
    const item = await updateAndReadIf(this.db, {
      TableName: this.table,
      Key: mfaKey(userId),
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
      Key: mfaKey(userId),
      UpdateExpression: 'SET recovery_kid = :kid, recovery_macs = :macs',
      ConditionExpression: 'totp_status = :active',
      ExpressionAttributeValues: { ':kid': recovery.kid, ':macs': new Set(recovery.macs), ':active': 'active' },
    });
  }

  /** TOTP and recovery codes gone (turned off, or reset by an operator). */
  async remove(userId: string): Promise<void> {
    await storeCall(this.db.send(new DeleteCommand({ TableName: this.table, Key: mfaKey(userId) })));
  }
}
