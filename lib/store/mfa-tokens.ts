import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { batchWriteAll, compensatingUpdate, storeCall, updateAndReadIf, updateIf, type BatchWrite } from '../platform/dynamo.js';
import { newUserToken, parseUserToken, type UserToken } from '../platform/ids.js';
import { epochSeconds, type IdpSession } from './sessions.js';

/**
 * The token a sign-in hands out when the password was right but a second factor is still due
 * (`mfa_required`), or must first be set up (`mfa_enrollment_required`): `mt_` + base64url(user id ‖
 * 256 random bits), stored only as SHA-256 in the attempts table. It lives 300 s, takes at most
 * MAX_MFA_TOKEN_ATTEMPTS codes (each attempt is reserved before the code is checked, so racing
 * requests cannot take more), and is spent by its one success. It is bound to the user's session
 * epoch: a password change or global logout meanwhile ends it.
 */
export type MfaToken = UserToken;
export type MfaTokenPurpose = 'verify' | 'enroll';

export const MFA_TOKEN_TTL_SECONDS = 300;
export const MAX_MFA_TOKEN_ATTEMPTS = 5;
const PREFIX = 'mt_';

export const mfaTokenKey = (hash: string) => ({ pk: `MFATOKEN#${hash}` });

export function newMfaToken(userId: string): MfaToken & { token: string } {
  return newUserToken(PREFIX, userId);
}

/** The parts of a well-formed mfa_token; undefined for anything else. */
export function parseMfaToken(value: string): MfaToken | undefined {
  return parseUserToken(PREFIX, value);
}

export interface MfaTokenState {
  userId: string;
  /** SHA-256 of the live device token the sign-in presented: a second factor is held to its counter too. */
  deviceHash: string | undefined;
  purpose: MfaTokenPurpose;
  userEpoch: number;
  attempts: number;
  expiresAt: number;
  spent: boolean;
  /** A federated sign-in's token: the IdP it came through (its session is signed in with `fed`). */
  federated: IdpSession | undefined;
  /** When it was made (epoch ms). */
  createdAt: number;
}

interface MfaTokenItem {
  pk: string;
  user_id: string;
  purpose: MfaTokenPurpose;
  user_epoch: number;
  attempts: number;
  created_at: string;
  /** Epoch seconds; also the TTL attribute. */
  expires_at: number;
  spent_at?: string;
  device_hash?: string;
  idp?: string;
  idp_sid?: string;
}

/** Whether a token as read may still take an attempt: what `reserveAttempt`'s condition holds it to. */
export function isMfaTokenUsable(state: MfaTokenState | undefined, at: Date): state is MfaTokenState {
  return state !== undefined && !state.spent && state.expiresAt > epochSeconds(at) && state.attempts < MAX_MFA_TOKEN_ATTEMPTS;
}

export class MfaTokensRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly table: string,
  ) {}

  /** Store a new token, in one BatchWriteItem with `alongside` (a sign-in's bookkeeping). */
  async create(
    token: MfaToken,
    { purpose, userEpoch, at, deviceHash, federated }: { purpose: MfaTokenPurpose; userEpoch: number; at: Date; deviceHash?: string; federated?: IdpSession },
    alongside: BatchWrite[] = [],
  ): Promise<void> {
    const item: MfaTokenItem = {
      ...mfaTokenKey(token.hash),
      user_id: token.userId,
      purpose,
      user_epoch: userEpoch,
      attempts: 0,
      created_at: at.toISOString(),
      expires_at: epochSeconds(at) + MFA_TOKEN_TTL_SECONDS,
      ...(deviceHash ? { device_hash: deviceHash } : {}),
      ...(federated ? { idp: federated.issuer, ...(federated.sid ? { idp_sid: federated.sid } : {}) } : {}),
    };
    // 256 random bits: a new key, without a condition (a BatchWriteItem takes none).
    await batchWriteAll(this.db, [{ table: this.table, put: { ...item } }, ...alongside]);
  }

  async get(token: MfaToken): Promise<MfaTokenState | undefined> {
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.table, Key: mfaTokenKey(token.hash), ConsistentRead: true })));
    return Item ? stateFrom(Item) : undefined;
  }

  /**
   * Take one of the token's attempts, before its code is checked: the token as it stands after,
   * or undefined when it is unknown, another user's, expired, spent or out of attempts.
   */
  async reserveAttempt(token: MfaToken, at: Date): Promise<MfaTokenState | undefined> {
    const item = await updateAndReadIf(this.db, {
      TableName: this.table,
      Key: mfaTokenKey(token.hash),
      UpdateExpression: 'ADD attempts :one',
      ConditionExpression: 'user_id = :user AND expires_at > :now AND attribute_not_exists(spent_at) AND attempts < :max',
      ExpressionAttributeValues: { ':one': 1, ':user': token.userId, ':now': epochSeconds(at), ':max': MAX_MFA_TOKEN_ATTEMPTS },
    });
    return item && stateFrom(item);
  }

  /** An attempt given back: its code was refused by another limit before being looked at. Best effort. */
  async giveBackAttempt(token: MfaToken): Promise<void> {
    await compensatingUpdate(this.db, {
      TableName: this.table,
      Key: mfaTokenKey(token.hash),
      UpdateExpression: 'ADD attempts :minus',
      ConditionExpression: 'attempts > :zero AND attribute_not_exists(spent_at)',
      ExpressionAttributeValues: { ':minus': -1, ':zero': 0 },
    }).catch(() => false);
  }

  /** A spend undone: the code it was for did not hold after all (spent by another request). Only the spend made `at`. Best effort. */
  async unspend(token: MfaToken, at: Date): Promise<void> {
    await compensatingUpdate(this.db, {
      TableName: this.table,
      Key: mfaTokenKey(token.hash),
      UpdateExpression: 'REMOVE spent_at',
      ConditionExpression: 'spent_at = :at',
      ExpressionAttributeValues: { ':at': at.toISOString() },
    }).catch(() => false);
  }

  /** Spend the token on its success; false when another request spent it first. */
  async spend(token: MfaToken, at: Date): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: mfaTokenKey(token.hash),
      UpdateExpression: 'SET spent_at = :at',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(spent_at)',
      ExpressionAttributeValues: { ':at': at.toISOString() },
    });
  }
}

function stateFrom(item: Record<string, unknown>): MfaTokenState {
  const row = item as unknown as MfaTokenItem;
  return {
    userId: row.user_id,
    deviceHash: row.device_hash,
    purpose: row.purpose,
    userEpoch: row.user_epoch,
    attempts: row.attempts,
    expiresAt: row.expires_at,
    spent: row.spent_at !== undefined,
    federated: row.idp ? { issuer: row.idp, ...(row.idp_sid ? { sid: row.idp_sid } : {}) } : undefined,
    createdAt: Date.parse(row.created_at),
  };
}
