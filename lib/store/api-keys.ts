import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Role } from '../platform/config.js';
import { batchGetAll, isConditionalCheckFailed, storeCall, updateIf } from '../platform/dynamo.js';
import { MAX_API_KEY_SLOTS, parseApiKeyId } from '../platform/ids.js';
import { epochSeconds } from './sessions.js';
import { lastLoginKey, userFromItem, userKey, type User } from './users.js';

/**
 * API keys (attempts table): one item per key SLOT of a user, `APIKEY#<user id>#<slot>`, slots
 * 0 … MAX_API_KEYS_PER_USER − 1. A slot is free when it has no item, or its key is revoked, expired
 * or of an older `api_key_epoch` than the user's. So the limit is kept by the keys themselves: a
 * creation writes a free slot with a condition that it still holds what was read, and however many
 * race, no slot ever holds two live keys. A slot remembers the ids of the keys it held before
 * (`ended_ids`), and outlives its key by ENDED_KEY_RETENTION_SECONDS (the TTL, `expires_at`, is
 * clean-up only), so a revocation of a key that has ended answers the same however its slot was
 * used since. The key (`vak_…`, lib/platform/ids.ts)
 * names its user and slot, so a check reads the slot and the user in one BatchGetItem.
 */
export interface ApiKey {
  /** The public id (`ak_…`). */
  id: string;
  userId: string;
  slot: number;
  name: string;
  role: Role;
  /** SHA-256 of the whole key, base64url. */
  keyHash: string;
  /** The key's last 4 characters, for a list to tell keys apart. */
  hint: string;
  /** The user's api_key_epoch when it was made. */
  apiKeyEpoch: number;
  createdAt: string;
  /** Epoch seconds: the end of its life (also the TTL, which is clean-up only). */
  expiresAt: number;
  revokedAt: string | undefined;
  lastUsedAt: string | undefined;
  /** The ids of the keys this slot held before, oldest first. */
  endedIds: string[];
}

/** An API key as the API shows it: never the key, never its hash. */
export interface PublicApiKey {
  id: string;
  name: string;
  role: Role;
  created_at: string;
  expires_at: string;
  last_used_at: string | null;
}

export function toPublicApiKey(key: ApiKey): PublicApiKey {
  return {
    id: key.id,
    name: key.name,
    role: key.role,
    created_at: key.createdAt,
    expires_at: new Date(key.expiresAt * 1000).toISOString(),
    last_used_at: key.lastUsedAt ?? null,
  };
}

export const apiKeySlotKey = (userId: string, slot: number) => ({ pk: `APIKEY#${userId}#${slot}` });

interface ApiKeyItem {
  pk: string;
  key_id: string;
  user_id: string;
  slot: number;
  name: string;
  role: Role;
  key_hash: string;
  hint: string;
  api_key_epoch: number;
  created_at: string;
  /** Epoch seconds: the key's end of life. */
  key_expires_at: number;
  /** The table's TTL: the key's end of life plus ENDED_KEY_RETENTION_SECONDS. */
  expires_at: number;
  revoked_at?: string;
  last_used_at?: string;
  ended_ids?: string[];
}

function apiKeyFromItem(item: Record<string, unknown>): ApiKey {
  const row = item as unknown as ApiKeyItem;
  return {
    id: row.key_id,
    userId: row.user_id,
    slot: row.slot,
    name: row.name,
    role: row.role,
    keyHash: row.key_hash,
    hint: row.hint,
    apiKeyEpoch: row.api_key_epoch,
    createdAt: row.created_at,
    expiresAt: row.key_expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
    endedIds: row.ended_ids ?? [],
  };
}

/** Whether a key stands at `now`: not revoked, not expired (compared here: TTL deletes late), of the user's current epoch. */
export function isApiKeyLive(key: ApiKey | undefined, user: Pick<User, 'id' | 'apiKeyEpoch'>, now: Date): boolean {
  return key !== undefined && key.userId === user.id && key.revokedAt === undefined && key.expiresAt > epochSeconds(now) && key.apiKeyEpoch === user.apiKeyEpoch;
}

/** What a new key's item holds, besides its slot. */
export interface NewApiKey {
  userId: string;
  name: string;
  role: Role;
  /** A new key for a slot: its public id, its hash and its hint (the caller keeps the key itself). */
  mint: (slot: number) => { id: string; keyHash: string; hint: string };
  apiKeyEpoch: number;
  expiresAt: number;
}

/** How long a slot keeps its item (and the ids it held) after its key's end of life. */
export const ENDED_KEY_RETENTION_SECONDS = 90 * 86_400;
/** How many earlier ids a slot remembers. */
const ENDED_IDS_KEPT = 32;

/** What revoking a key by its id found. */
export type Revocation = { found: 'key'; before: ApiKey } | { found: 'ended' } | { found: 'none' };

/** At most one write per key per hour for `last_used_at`. */
export const LAST_USED_RESOLUTION_SECONDS = 3600;

export class ApiKeysRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly table: string,
    private readonly usersTable: string,
  ) {}

  /** Every slot's item of a user, by slot (one strongly consistent BatchGetItem). */
  async slots(userId: string, count: number): Promise<Map<number, ApiKey>> {
    const keys = Array.from({ length: count }, (_, slot) => apiKeySlotKey(userId, slot));
    const found = await batchGetAll(this.db, { [this.table]: keys });
    return new Map(found[this.table]!.map((item) => apiKeyFromItem(item)).map((key) => [key.slot, key]));
  }

  /**
   * A user's live keys, newest first: every slot a key can name, not only those under today's
   * MAX_API_KEYS_PER_USER (a limit lowered since must not hide keys that still work).
   */
  async liveKeys(user: Pick<User, 'id' | 'apiKeyEpoch'>, now: Date): Promise<ApiKey[]> {
    const slots = await this.slots(user.id, MAX_API_KEY_SLOTS);
    return [...slots.values()].filter((key) => isApiKeyLive(key, user, now)).sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  }

  /**
   * Write a new key into one of the user's free slots: one read of every slot, then a PutItem on
   * a free one (a random one first, so racing creations rarely collide), conditional on its still
   * being free; a slot taken meanwhile moves on to the next free one. Undefined when none is left:
   * at most `count` live keys, however many creations race.
   */
  async create(key: NewApiKey, count: number, now: Date): Promise<ApiKey | undefined> {
    const current = await this.slots(key.userId, count);
    const user = { id: key.userId, apiKeyEpoch: key.apiKeyEpoch };
    const free = Array.from({ length: count }, (_, slot) => slot).filter((slot) => !isApiKeyLive(current.get(slot), user, now));
    const start = Math.floor(Math.random() * free.length);
    for (const slot of [...free.slice(start), ...free.slice(0, start)]) {
      const previous = current.get(slot);
      const item: ApiKeyItem = {
        ...apiKeySlotKey(key.userId, slot),
        ...(({ id, keyHash, hint }) => ({ key_id: id, key_hash: keyHash, hint }))(key.mint(slot)),
        user_id: key.userId,
        slot,
        name: key.name,
        role: key.role,
        api_key_epoch: key.apiKeyEpoch,
        created_at: now.toISOString(),
        key_expires_at: key.expiresAt,
        expires_at: key.expiresAt + ENDED_KEY_RETENTION_SECONDS,
        ...(previous ? { ended_ids: [...previous.endedIds, previous.id].slice(-ENDED_IDS_KEPT) } : {}),
      };
      try {
        await storeCall(
          this.db.send(
            new PutCommand({
              TableName: this.table,
              Item: item,
              // Still what was read, and still free: a key of a later epoch (an operator ended the
              // user's keys since this creation read the user) is not this creation's to replace.
              ...(previous
                ? {
                    ConditionExpression: 'key_id = :previous AND (attribute_exists(revoked_at) OR key_expires_at <= :now OR api_key_epoch < :epoch)',
                    ExpressionAttributeValues: { ':previous': previous.id, ':now': epochSeconds(now), ':epoch': key.apiKeyEpoch },
                  }
                : { ConditionExpression: 'attribute_not_exists(pk)' }),
            }),
          ),
        );
        return apiKeyFromItem(item as unknown as Record<string, unknown>);
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
      }
    }
    return undefined;
  }

  /** The key in a slot and its user (and last sign-in, for /auth/me), in one BatchGetItem. */
  async getWithUser(userId: string, slot: number, { lastLogin = false } = {}): Promise<{ key?: ApiKey; user?: User }> {
    const userKeys = lastLogin ? [userKey(userId), lastLoginKey(userId)] : [userKey(userId)];
    const found = await batchGetAll(this.db, { [this.table]: [apiKeySlotKey(userId, slot)], [this.usersTable]: userKeys });
    const keyItem = found[this.table]?.[0];
    const byKey = new Map(found[this.usersTable]!.map((item) => [item.pk as string, item]));
    const userItem = byKey.get(userKey(userId).pk);
    return {
      ...(keyItem ? { key: apiKeyFromItem(keyItem) } : {}),
      ...(userItem ? { user: userFromItem(userItem, byKey.get(lastLoginKey(userId).pk)) } : {}),
    };
  }

  /**
   * Revoke the key with this id in its slot, only if it is the user's: the key as it was before
   * (a key already ended stays as it was, its first `revoked_at` kept); `ended` when the slot has
   * held it and moved on to a later key; `none` when the user never had it.
   */
  async revoke(userId: string, slot: number, keyId: string, at: Date): Promise<Revocation> {
    try {
      const { Attributes } = await storeCall(
        this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: apiKeySlotKey(userId, slot),
            UpdateExpression: 'SET revoked_at = if_not_exists(revoked_at, :at)',
            ConditionExpression: 'key_id = :id AND user_id = :user',
            ExpressionAttributeValues: { ':at': at.toISOString(), ':id': keyId, ':user': userId },
            ReturnValues: 'ALL_OLD',
          }),
        ),
      );
      return { found: 'key', before: apiKeyFromItem(Attributes!) };
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.table, Key: apiKeySlotKey(userId, slot), ConsistentRead: true })));
    const held = Item && apiKeyFromItem(Item);
    return held?.userId === userId && held.endedIds.includes(keyId) ? { found: 'ended' } : { found: 'none' };
  }

  /**
   * Revoke one of this user's keys by its public id: true when it was live, false when it had
   * already ended, undefined when the user has no such key (unknown, malformed, another user's).
   */
  async revokeById(user: Pick<User, 'id' | 'apiKeyEpoch'>, keyId: string, now: Date): Promise<boolean | undefined> {
    const parsed = parseApiKeyId(keyId);
    if (!parsed || parsed.userId !== user.id) return undefined;
    const revocation = await this.revoke(user.id, parsed.slot, keyId, now);
    if (revocation.found === 'none') return undefined;
    return revocation.found === 'key' && isApiKeyLive(revocation.before, user, now);
  }

  /**
   * Record a use, at most once an hour per key: written only when the last one recorded is older
   * than that (or there is none), so a busy key costs one write an hour, not one per request.
   */
  async touch(key: ApiKey, at: Date): Promise<boolean> {
    const hourAgo = new Date(at.getTime() - LAST_USED_RESOLUTION_SECONDS * 1000).toISOString();
    return updateIf(this.db, {
      TableName: this.table,
      Key: apiKeySlotKey(key.userId, key.slot),
      UpdateExpression: 'SET last_used_at = :at',
      ConditionExpression: 'key_id = :id AND (attribute_not_exists(last_used_at) OR last_used_at < :hourAgo)',
      ExpressionAttributeValues: { ':at': at.toISOString(), ':id': key.id, ':hourAgo': hourAgo },
    });
  }
}

/** Whether a key's `last_used_at` is due for a write at `now`. */
export function isUseDue(key: ApiKey, now: Date): boolean {
  return key.lastUsedAt === undefined || Date.parse(key.lastUsedAt) < now.getTime() - LAST_USED_RESOLUTION_SECONDS * 1000;
}
