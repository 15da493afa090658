import { GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SESSIONS_BY_USER_INDEX } from '../../infra/tables.js';
import { batchGetAll, batchWriteAll, storeCall, updateAndReadIf, updateIf, type BatchWrite } from '../platform/dynamo.js';
import { lastLoginKey, userFromItem, userKey, type User } from './users.js';

/**
 * How a session was signed in (RFC 8176 `amr` values): a password, and a one-time code when there
 * was one; `fed` for a company identity provider's assertion (single sign-on), with `mfa` when that
 * provider said it did a second factor itself.
 */
export const AUTH_METHODS = ['pwd', 'otp', 'fed', 'mfa'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];
/** A session or token from before `amr` was recorded: signed in with a password alone. */
export const PASSWORD_ONLY: readonly AuthMethod[] = ['pwd'];

/**
 * A session: one login, kept alive by rotating its refresh token. Only the SHA-256 of the
 * current refresh secret is stored. `expires_at` is the absolute end of the session (epoch
 * seconds) and doubles as the DynamoDB TTL attribute; reads compare it with now, because TTL
 * deletion runs up to two days late.
 */
export interface Session {
  id: string;
  userId: string;
  refreshHash: string;
  /** Hash of the refresh secret rotated out last, and when. */
  previousHash: string | undefined;
  rotatedAt: string | undefined;
  /** The sign-in, then each refresh: what the idle timeout and the session cap go by. */
  lastUsedAt: string;
  /** How many times the refresh token was rotated. */
  generation: number;
  /** kid of the key the current refresh secret was derived with (and its successor will be, while that key is in the ring). */
  rotationKid: string;
  /** The user's session epoch when this session began; a bump of the user's epoch ends it. */
  userEpoch: number;
  /** How it was signed in; every token of the session, refreshed ones too, says so. */
  amr: AuthMethod[];
  createdAt: string;
  /** Where the sign-in came from: API Gateway's source IP (never X-Forwarded-For) and User-Agent, cut to 256 characters. */
  sourceIp: string | undefined;
  userAgent: string | undefined;
  expiresAt: number;
  revokedAt: string | undefined;
  /** Why it ended: `logout`, or `refresh_token_reused` when a spent refresh token came back. */
  revokedReason: string | undefined;
  /** SHA-256 of the device token handed out with it: ending the session ends that token. */
  deviceHash: string | undefined;
  /** Wrong current passwords given from this session in a row (a password change, a TOTP set-up), live until `until`. */
  passwordFailures: { failures: number; until: number } | undefined;
  /** Signed in through a company identity provider: its issuer and its own session id (`sid`), which its back-channel logout names. */
  idp: IdpSession | undefined;
}

/** The identity provider a federated session was signed in through. */
export interface IdpSession {
  issuer: string;
  /** The IdP's `sid` claim of the ID token, when it sent one. */
  sid?: string;
}

export const sessionKey = (id: string) => ({ pk: `SESSION#${id}` });

/** A session keeps at most this much of the User-Agent it was signed in with (characters). */
export const MAX_USER_AGENT_LENGTH = 256;

interface SessionItem {
  pk: string;
  id: string;
  user_id: string;
  refresh_hash: string;
  previous_hash?: string;
  rotated_at?: string;
  /** Absent on sessions made before it was recorded: their rotated_at, else created_at, stands in. */
  last_used_at?: string;
  generation: number;
  rotation_kid: string;
  user_epoch: number;
  /** Absent on sessions made before it was recorded: a password alone. */
  amr?: AuthMethod[];
  created_at: string;
  ip?: string;
  user_agent?: string;
  expires_at: number;
  revoked_at?: string;
  revoked_reason?: string;
  device_hash?: string;
  password_failures?: number;
  password_failures_until?: number;
  idp?: string;
  idp_sid?: string;
}

/** A session's last use: recorded since last_used_at exists; before, its last rotation, else its sign-in. */
const lastUsedOf = (row: SessionItem) => row.last_used_at ?? row.rotated_at ?? row.created_at;

function sessionFromItem(item: Record<string, unknown>): Session {
  const row = item as unknown as SessionItem;
  return {
    id: row.id,
    userId: row.user_id,
    refreshHash: row.refresh_hash,
    previousHash: row.previous_hash,
    rotatedAt: row.rotated_at,
    lastUsedAt: lastUsedOf(row),
    generation: row.generation,
    rotationKid: row.rotation_kid,
    userEpoch: row.user_epoch,
    amr: row.amr ?? [...PASSWORD_ONLY],
    createdAt: row.created_at,
    sourceIp: row.ip,
    userAgent: row.user_agent,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    revokedReason: row.revoked_reason,
    deviceHash: row.device_hash,
    passwordFailures: row.password_failures_until !== undefined ? { failures: row.password_failures ?? 0, until: row.password_failures_until } : undefined,
    idp: row.idp ? { issuer: row.idp, ...(row.idp_sid ? { sid: row.idp_sid } : {}) } : undefined,
  };
}

export const epochSeconds = (at: Date) => Math.floor(at.getTime() / 1000);

/**
 * Whether a session has gone unused (no refresh) for `idleSeconds` (0: never idle). An idle
 * session has ended: it is not refreshed, not listed, and its access tokens are refused wherever
 * the session is checked (lib/auth/auth-service.ts).
 */
export function isSessionIdle(session: Pick<Session, 'lastUsedAt'>, idleSeconds: number, now: Date): boolean {
  return idleSeconds > 0 && now.getTime() - Date.parse(session.lastUsedAt) >= idleSeconds * 1000;
}

/** What a user sees of one of their sessions (lists read it from the by-user index). */
export interface SessionSummary {
  id: string;
  createdAt: string;
  lastUsedAt: string;
  sourceIp: string | undefined;
  userAgent: string | undefined;
  /** The user's epoch when it began: it stands only while the user's is still this. */
  userEpoch: number;
  /** How it was signed in (`fed` through a company IdP, whose issuer is `idp`). */
  amr: AuthMethod[];
  idp: string | undefined;
}

/** A session as shown outside the service (the API's list, the users CLI's JSON): where and when, never a hash. */
export interface PublicSession {
  id: string;
  created_at: string;
  last_used_at: string;
  ip: string | null;
  user_agent: string | null;
  /** How it was signed in (RFC 8176): ["pwd"], ["pwd","otp"], ["fed"], ["fed","mfa"], ["fed","otp"]. */
  amr: AuthMethod[];
  /** The company IdP (issuer) a federated session was signed in through, else null. */
  idp: string | null;
}

export function toPublicSession(session: SessionSummary): PublicSession {
  return { id: session.id, created_at: session.createdAt, last_used_at: session.lastUsedAt, ip: session.sourceIp ?? null, user_agent: session.userAgent ?? null, amr: [...session.amr], idp: session.idp ?? null };
}

/** Whether the session still stands at `now` for this user: not revoked, not expired, not superseded. */
export function isSessionLive(session: Session | undefined, user: User | undefined, now: Date): boolean {
  return (
    session !== undefined &&
    user !== undefined &&
    session.userId === user.id &&
    session.revokedAt === undefined &&
    session.expiresAt > epochSeconds(now) &&
    (session.userEpoch === user.sessionEpoch || isKeptSession(session, user)) &&
    user.status === 'active'
  );
}

/**
 * The session TOTP was activated from: activation moved the user to a new epoch (ending every
 * other session) and named this one in the same write, so it never stops standing, not even
 * before it is carried over to the new epoch. Any later change of epoch ends it like the others.
 */
function isKeptSession(session: Session, user: User): boolean {
  const kept = user.keptSession;
  return kept !== undefined && kept.id === session.id && kept.fromEpoch === session.userEpoch && user.sessionEpoch === kept.fromEpoch + 1;
}

export interface Rotation {
  fromHash: string;
  toHash: string;
  rotationKid: string;
  at: Date;
}

export class SessionsRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly table: string,
    private readonly usersTable: string,
  ) {}

  /**
   * Store a new session. `alsoWrite` items (a login's last-sign-in record, device token, spent
   * failure counter) go in the same BatchWriteItem, one round trip; a session id is 128 random
   * bits, so it needs no existence condition (which BatchWriteItem could not carry).
   */
  async create(
    session: Omit<Session, 'previousHash' | 'rotatedAt' | 'lastUsedAt' | 'revokedAt' | 'revokedReason' | 'generation' | 'sourceIp' | 'userAgent' | 'amr' | 'deviceHash' | 'passwordFailures' | 'idp'> &
      Partial<Pick<Session, 'sourceIp' | 'userAgent' | 'amr' | 'deviceHash' | 'idp'>>,
    alsoWrite: BatchWrite[] = [],
  ): Promise<Session> {
    const item: SessionItem = {
      ...sessionKey(session.id),
      id: session.id,
      user_id: session.userId,
      refresh_hash: session.refreshHash,
      generation: 0,
      rotation_kid: session.rotationKid,
      user_epoch: session.userEpoch,
      amr: [...(session.amr ?? PASSWORD_ONLY)],
      created_at: session.createdAt,
      last_used_at: session.createdAt,
      ...(session.sourceIp ? { ip: session.sourceIp } : {}),
      ...(session.userAgent ? { user_agent: [...session.userAgent].slice(0, MAX_USER_AGENT_LENGTH).join('') } : {}),
      expires_at: session.expiresAt,
      ...(session.deviceHash ? { device_hash: session.deviceHash } : {}),
      ...(session.idp ? { idp: session.idp.issuer, ...(session.idp.sid ? { idp_sid: session.idp.sid } : {}) } : {}),
    };
    if (alsoWrite.length === 0) {
      await storeCall(this.db.send(new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' })));
    } else {
      await batchWriteAll(this.db, [{ table: this.table, put: item as unknown as Record<string, unknown> }, ...alsoWrite]);
    }
    return sessionFromItem(item as unknown as Record<string, unknown>);
  }

  /**
   * The session and its user in one round trip, both strongly consistent; with `lastLogin`, the
   * user's last-sign-in item too (for answers that show the user).
   */
  async getWithUser(sessionId: string, userId: string, { lastLogin = false } = {}): Promise<{ session?: Session; user?: User }> {
    const userKeys = lastLogin ? [userKey(userId), lastLoginKey(userId)] : [userKey(userId)];
    const found = await batchGetAll(this.db, { [this.table]: [sessionKey(sessionId)], [this.usersTable]: userKeys });
    const sessionItem = found[this.table]?.[0];
    const byKey = new Map(found[this.usersTable]!.map((item) => [item.pk as string, item]));
    const userItem = byKey.get(userKey(userId).pk);
    return {
      ...(sessionItem ? { session: sessionFromItem(sessionItem) } : {}),
      ...(userItem ? { user: userFromItem(userItem, byKey.get(lastLoginKey(userId).pk)) } : {}),
    };
  }

  /**
   * Replace the current refresh hash, only if it is still `fromHash` and the session still
   * stands: of two racing rotations of one token exactly one succeeds. Returns false for the loser.
   */
  async rotate(sessionId: string, rotation: Rotation): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: sessionKey(sessionId),
      UpdateExpression: 'SET refresh_hash = :to, previous_hash = :from, rotated_at = :at, last_used_at = :at, rotation_kid = :kid ADD generation :one',
      ConditionExpression: 'refresh_hash = :from AND attribute_not_exists(revoked_at) AND expires_at > :now',
      ExpressionAttributeValues: {
        ':from': rotation.fromHash,
        ':to': rotation.toHash,
        ':at': rotation.at.toISOString(),
        ':kid': rotation.rotationKid,
        ':one': 1,
        ':now': epochSeconds(rotation.at),
      },
    });
  }

  /** The session alone, strongly consistent (after a lost rotation race). */
  async get(sessionId: string): Promise<Session | undefined> {
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.table, Key: sessionKey(sessionId), ConsistentRead: true })));
    return Item ? sessionFromItem(Item) : undefined;
  }

  /**
   * The user's live sessions, newest first, at most `limit`: not revoked, not expired, not idle,
   * and of the user's current epoch when `sessionEpoch` is given (without it, each summary carries
   * its epoch for the caller to filter by). One Query of the by-user index per page (a page holds
   * thousands of sessions), over the sign-ins of the last `maxAgeSeconds` (REFRESH_TOKEN_TTL_SECONDS:
   * no older session can stand); the index is eventually consistent, so a session ended or begun in the
   * last moment may be missing or still shown.
   */
  async listLive(
    user: { id: string; sessionEpoch?: number },
    now: Date,
    { idleSeconds, limit, maxAgeSeconds }: { idleSeconds: number; limit: number; maxAgeSeconds: number },
  ): Promise<SessionSummary[]> {
    const live: SessionSummary[] = [];
    const byEpoch = user.sessionEpoch !== undefined;
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await storeCall(
        this.db.send(
          new QueryCommand({
            TableName: this.table,
            IndexName: SESSIONS_BY_USER_INDEX,
            // Only sign-ins young enough to stand: older ones are not even read.
            KeyConditionExpression: 'user_id = :user AND created_at > :oldest',
            FilterExpression: `attribute_not_exists(revoked_at) AND expires_at > :now${byEpoch ? ' AND user_epoch = :epoch' : ''}`,
            ExpressionAttributeValues: {
              ':user': user.id,
              ':oldest': new Date(now.getTime() - maxAgeSeconds * 1000).toISOString(),
              ':now': epochSeconds(now),
              ...(byEpoch ? { ':epoch': user.sessionEpoch } : {}),
            },
            ScanIndexForward: false,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        const row = item as unknown as SessionItem;
        const summary: SessionSummary = {
          id: row.id,
          createdAt: row.created_at,
          lastUsedAt: lastUsedOf(row),
          sourceIp: row.ip,
          userAgent: row.user_agent,
          userEpoch: row.user_epoch,
          // Absent from sessions made before it was recorded (and from an index built before it was projected): a password alone.
          amr: row.amr ?? [...PASSWORD_ONLY],
          idp: row.idp,
        };
        if (!isSessionIdle(summary, idleSeconds, now)) live.push(summary);
        if (live.length === limit) return live;
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return live;
  }

  /**
   * The user's sessions that may stand, read whole (the index does not hold how they were signed
   * in): a Query of the by-user index, then BatchGetItem of those sessions. For a back-channel
   * logout, which ends those of one IdP.
   */
  async federatedSessions(userId: string, now: Date): Promise<Session[]> {
    const live = await this.listLive({ id: userId }, now, { idleSeconds: 0, limit: Infinity, maxAgeSeconds: 31_536_000 });
    const sessions: Session[] = [];
    for (let start = 0; start < live.length; start += 100) {
      const found = await batchGetAll(this.db, { [this.table]: live.slice(start, start + 100).map((summary) => sessionKey(summary.id)) });
      sessions.push(...found[this.table]!.map(sessionFromItem).filter((session) => session.idp !== undefined && session.revokedAt === undefined));
    }
    return sessions;
  }

  /**
   * Keep a live session across its user's new epoch (TOTP was just activated from it, which ended
   * every other session): only if it is still this user's, not revoked, and of the epoch `from`.
   */
  async carryOver(sessionId: string, userId: string, { from, to }: { from: number; to: number }): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: sessionKey(sessionId),
      UpdateExpression: 'SET user_epoch = :to',
      ConditionExpression: 'user_id = :user AND user_epoch = :from AND attribute_not_exists(revoked_at)',
      ExpressionAttributeValues: { ':user': userId, ':from': from, ':to': to },
    });
  }

  /** End a session of this user. Idempotent: the first revocation time and reason are kept. False if there is no such session. */
  async revoke(sessionId: string, userId: string, at: Date, reason = 'logout'): Promise<boolean> {
    return (await this.end(sessionId, userId, at, reason)) !== undefined;
  }

  /**
   * `revoke`, answering what a caller must end with the session: the device token handed out with
   * it (`deviceHash`). Undefined if there is no such session of this user.
   */
  async end(sessionId: string, userId: string, at: Date, reason = 'logout'): Promise<{ deviceHash: string | undefined } | undefined> {
    const item = await updateAndReadIf(this.db, {
      TableName: this.table,
      Key: sessionKey(sessionId),
      UpdateExpression: 'SET revoked_at = if_not_exists(revoked_at, :at), revoked_reason = if_not_exists(revoked_reason, :reason)',
      ConditionExpression: 'attribute_exists(pk) AND user_id = :user',
      ExpressionAttributeValues: { ':at': at.toISOString(), ':user': userId, ':reason': reason },
    });
    return item && { deviceHash: item.device_hash as string | undefined };
  }
}
