import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { batchGetAll, isConditionalCheckFailed, scanAll, storeCall, updateAndReadIf, updateIf } from '../platform/dynamo.js';
import { newUserId } from '../platform/ids.js';
import { ROLES, type Role } from '../platform/config.js';

export { ROLES, type Role };
export type UserStatus = 'active' | 'disabled';

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
  status: UserStatus;
  passwordHash: string;
  createdAt: string;
  lastLogin: string | null;
  /** Sessions created under an older epoch are over: bumping it ends every session at once. */
  sessionEpoch: number;
  /** API keys made under an older epoch are over: bumping it ends every key of the user at once (lib/store/api-keys.ts). */
  apiKeyEpoch: number;
  /** The second factor, when one was set up (lib/store/mfa.ts writes it). */
  totp: TotpState | undefined;
  /**
   * The session that activated TOTP, kept across the epoch that activation moved on from (until
   * it is carried over to the new one: lib/store/sessions.ts, isSessionLive).
   */
  keptSession: { id: string; fromEpoch: number } | undefined;
  /** The account's consecutive wrong second factors (lib/store/mfa.ts, MFA_MAX_FAILURES). */
  codeFailures: CodeFailures;
  /**
   * When an IdP's back-channel logout last reached this user (epoch ms), by lib/store/sso.ts's
   * idpLogoutKey: a federated grant or mfa_token made before it opens no session.
   */
  idpLogouts?: Record<string, number>;
}

/** The user item's attributes that record an IdP's back-channel logout (lib/store/sso.ts writes them). */
export const IDP_LOGOUT_PREFIX = 'idp_logout:';

/**
 * Consecutive wrong second factors of an account, across every mfa_token, address and hour: only
 * someone holding the password or a live session can move them, and only a successful second factor
 * (or an operator's unlock) resets them.
 */
export interface CodeFailures {
  /** Wrong TOTP codes in a row (attempts reserved and not yet proven right). */
  codes: number;
  /** With `codes` at the limit: TOTP codes are refused until then (epoch seconds). */
  lockedUntil: number;
  /** How many locks the account has had: each further one lasts twice as long, up to a day. */
  locks: number;
  /** Wrong recovery codes in a row: at the limit, only an operator's unlock helps. */
  recovery: number;
}

export type TotpStatus = 'pending' | 'active';

/**
 * A user's TOTP, kept on the user item itself so that every read of the user (a sign-in's
 * reservation, a session check) knows at no extra cost whether a second factor is due.
 */
export interface TotpState {
  /** Set up and not yet proven with a code, or active. */
  status: TotpStatus;
  /** Sealed, never in clear (lib/mfa/secret-box.ts). */
  sealedSecret: string;
  /** The last 30-second step a code was accepted for; codes of this step and earlier are refused. */
  lastStep: number | undefined;
  /** The recovery codes' MACs, and the MFA key they are under. */
  recovery: { kid: string; macs: string[] } | undefined;
  activatedAt: string | undefined;
}

/** What a user looks like outside the service: never the hash, never the status internals. */
export interface PublicUser {
  id: string;
  email: string;
  name: string;
  role: Role;
  created_at: string;
  last_login: string | null;
  /** Whether sign-ins need a second factor (TOTP active). */
  mfa_enabled: boolean;
}

export function toPublicUser(user: User): PublicUser {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    role: user.role,
    created_at: user.createdAt,
    last_login: user.lastLogin,
    mfa_enabled: user.totp?.status === 'active',
  };
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export class EmailTakenError extends Error {
  constructor(email: string) {
    super(`A user with email ${email} already exists`);
    this.name = 'EmailTakenError';
  }
}

export class UserNotFoundError extends Error {
  constructor(reference: string) {
    super(`No user ${reference}`);
    this.name = 'UserNotFoundError';
  }
}

// Key builders: a user item, an email item that makes emails unique and finds the user by email,
// and the user's last sign-in, an item of its own so that a login writes it in the same
// BatchWriteItem as the new session (it is bookkeeping: no condition needed).
export const userKey = (id: string) => ({ pk: `USER#${id}` });
export const emailKey = (email: string) => ({ pk: `EMAIL#${normalizeEmail(email)}` });
export const lastLoginKey = (id: string) => ({ pk: `LOGIN#${id}` });

interface UserItem {
  pk: string;
  id: string;
  email: string;
  name: string;
  role: Role;
  status: UserStatus;
  password_hash: string;
  created_at: string;
  updated_at: string;
  /** Written here before last sign-ins moved to their own item; still read when that item is missing. */
  last_login?: string;
  session_epoch: number;
  api_key_epoch?: number;
  totp_status?: TotpStatus;
  totp_secret?: string;
  totp_last_step?: number;
  recovery_kid?: string;
  /** A string set: one member is removed by a conditional write (the attribute goes when it empties). */
  recovery_macs?: Set<string>;
  totp_activated_at?: string;
  kept_session_id?: string;
  kept_session_epoch?: number;
  code_failures?: number;
  code_locked_until?: number;
  code_locks?: number;
  recovery_failures?: number;
}

/** A user from its item and, when read with it, its last-sign-in item. */
export function userFromItem(item: Record<string, unknown>, lastLoginItem?: Record<string, unknown>): User {
  const row = item as unknown as UserItem;
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    status: row.status,
    passwordHash: row.password_hash,
    createdAt: row.created_at,
    lastLogin: (lastLoginItem?.last_login as string | undefined) ?? row.last_login ?? null,
    sessionEpoch: row.session_epoch ?? 0,
    apiKeyEpoch: row.api_key_epoch ?? 0,
    totp:
      row.totp_status && row.totp_secret
        ? {
            status: row.totp_status,
            sealedSecret: row.totp_secret,
            lastStep: row.totp_last_step,
            recovery: row.recovery_kid ? { kid: row.recovery_kid, macs: [...(row.recovery_macs ?? [])] } : undefined,
            activatedAt: row.totp_activated_at,
          }
        : undefined,
    keptSession: row.kept_session_id !== undefined && row.kept_session_epoch !== undefined ? { id: row.kept_session_id, fromEpoch: row.kept_session_epoch } : undefined,
    codeFailures: { codes: row.code_failures ?? 0, lockedUntil: row.code_locked_until ?? 0, locks: row.code_locks ?? 0, recovery: row.recovery_failures ?? 0 },
    ...idpLogoutsOf(item),
  };
}

function idpLogoutsOf(item: Record<string, unknown>): { idpLogouts?: Record<string, number> } {
  const found = Object.entries(item).filter(([name, value]) => name.startsWith(IDP_LOGOUT_PREFIX) && typeof value === 'number');
  return found.length === 0 ? {} : { idpLogouts: Object.fromEntries(found.map(([name, value]) => [name.slice(IDP_LOGOUT_PREFIX.length), value as number])) };
}

export interface NewUser {
  email: string;
  name: string;
  role: Role;
  passwordHash: string;
}

export class UsersRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly table: string,
  ) {}

  /**
   * Create a user. The email item is written first with `attribute_not_exists`, so of two
   * concurrent creations with one email exactly one wins; DynamoDB Local substitutes
   * (dynalite) have no transactions, and this needs none.
   */
  async create(input: NewUser, now: Date): Promise<User> {
    const id = newUserId();
    const email = normalizeEmail(input.email);
    try {
      await storeCall(
        this.db.send(
          new PutCommand({
            TableName: this.table,
            Item: { ...emailKey(email), user_id: id },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error)) throw new EmailTakenError(email);
      throw error;
    }
    const item: UserItem = {
      ...userKey(id),
      id,
      email,
      name: input.name,
      role: input.role,
      status: 'active',
      password_hash: input.passwordHash,
      created_at: now.toISOString(),
      updated_at: now.toISOString(),
      session_epoch: 0,
    };
    try {
      await storeCall(
        this.db.send(new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' })),
      );
    } catch (error) {
      // Give the email back rather than leave it claimed by a user that does not exist.
      await this.db.send(new DeleteCommand({ TableName: this.table, Key: emailKey(email) })).catch(() => undefined);
      throw error;
    }
    return userFromItem(item as unknown as Record<string, unknown>);
  }

  /** The user and its last sign-in, one strongly consistent BatchGetItem. */
  async get(id: string): Promise<User | undefined> {
    const found = await batchGetAll(this.db, { [this.table]: [userKey(id), lastLoginKey(id)] });
    const items = new Map(found[this.table]!.map((item) => [item.pk as string, item]));
    const item = items.get(userKey(id).pk);
    return item ? userFromItem(item, items.get(lastLoginKey(id).pk)) : undefined;
  }

  async findByEmail(email: string): Promise<User | undefined> {
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.table, Key: emailKey(email), ConsistentRead: true })));
    return Item ? this.get(Item.user_id as string) : undefined;
  }

  /** The item that records a sign-in, for the login's BatchWriteItem. */
  lastLoginWrite(id: string, at: Date): { table: string; put: Record<string, unknown> } {
    return { table: this.table, put: { ...lastLoginKey(id), user_id: id, last_login: at.toISOString() } };
  }

  /**
   * Replace a hash made at another bcrypt cost with one at the current cost, only if the user
   * still has the hash and the session epoch that were read: a set-password between the read and
   * this write must never be undone. False when it was not written.
   */
  async rehashPassword(id: string, read: { passwordHash: string; sessionEpoch: number }, newPasswordHash: string): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.table,
      Key: userKey(id),
      UpdateExpression: 'SET password_hash = :new',
      ConditionExpression: 'password_hash = :old AND session_epoch = :epoch',
      ExpressionAttributeValues: { ':new': newPasswordHash, ':old': read.passwordHash, ':epoch': read.sessionEpoch },
    });
  }

  /**
   * A password change by the user: the new hash, and a new session epoch (every session ends),
   * only if the epoch is still the one read when the current password was checked. Every change of
   * password bumps the epoch, so of two racing changes exactly one is written (undefined for the
   * other); a sign-in's rehash (same password, new cost) does not bump it and so does not make a
   * change fail, while the rehash, conditional on the epoch too, cannot land after it.
   */
  async replacePassword(id: string, read: { sessionEpoch: number }, newPasswordHash: string, at: Date): Promise<User | undefined> {
    return this.updateAndRead(id, 'SET password_hash = :new, updated_at = :at ADD session_epoch :one', 'session_epoch = :epoch', {
      ':new': newPasswordHash,
      ':epoch': read.sessionEpoch,
      ':at': at.toISOString(),
      ':one': 1,
    });
  }

  async setStatus(id: string, status: UserStatus, at: Date): Promise<User> {
    // Disabling ends every session too; enabling does not bring old sessions back.
    const expression =
      status === 'disabled'
        ? 'SET #status = :status, updated_at = :at ADD session_epoch :one'
        : 'SET #status = :status, updated_at = :at';
    return this.update(id, expression, { ':status': status, ':at': at.toISOString(), ...(status === 'disabled' ? { ':one': 1 } : {}) }, { '#status': 'status' });
  }

  /** A new password ends every existing session: whoever knew the old one is signed out. */
  async setPasswordHash(id: string, passwordHash: string, at: Date): Promise<User> {
    return this.update(id, 'SET password_hash = :hash, updated_at = :at ADD session_epoch :one', {
      ':hash': passwordHash,
      ':at': at.toISOString(),
      ':one': 1,
    });
  }

  /** The role an SSO connection's groups claim gives (`--admin-group`), at a federated sign-in. */
  async setRole(id: string, role: Role, at: Date): Promise<User> {
    return this.update(id, 'SET #role = :role, updated_at = :at', { ':role': role, ':at': at.toISOString() }, { '#role': 'role' });
  }

  async revokeAllSessions(id: string, at: Date): Promise<User> {
    return this.update(id, 'SET updated_at = :at ADD session_epoch :one', { ':at': at.toISOString(), ':one': 1 });
  }

  /**
   * End every API key of the user at once (`mfa-reset`, `revoke-sessions --include-api-keys`): a key
   * made under an older epoch is refused. A password change and a global logout leave keys alone.
   */
  async revokeAllApiKeys(id: string, at: Date): Promise<User> {
    return this.update(id, 'SET updated_at = :at ADD api_key_epoch :one', { ':at': at.toISOString(), ':one': 1 });
  }

  async list(): Promise<User[]> {
    const users: Array<Record<string, unknown>> = [];
    const lastLogins = new Map<string, Record<string, unknown>>();
    const items = await scanAll(this.db, {
      TableName: this.table,
      FilterExpression: 'begins_with(pk, :user) OR begins_with(pk, :login)',
      ExpressionAttributeValues: { ':user': 'USER#', ':login': 'LOGIN#' },
    });
    for (const item of items) {
      if ((item.pk as string).startsWith('LOGIN#')) lastLogins.set(item.user_id as string, item);
      else users.push(item);
    }
    return users
      .map((item) => userFromItem(item, lastLogins.get(item.id as string)))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.email.localeCompare(b.email));
  }

  private async update(id: string, expression: string, values: Record<string, unknown>, names?: Record<string, string>): Promise<User> {
    const user = await this.updateAndRead(id, expression, 'attribute_exists(pk)', values, names);
    if (!user) throw new UserNotFoundError(id);
    return user;
  }

  /** The user item updated and read back if `condition` holds; undefined if it does not. */
  private async updateAndRead(id: string, expression: string, condition: string, values: Record<string, unknown>, names?: Record<string, string>): Promise<User | undefined> {
    const item = await updateAndReadIf(this.db, {
      TableName: this.table,
      Key: userKey(id),
      UpdateExpression: expression,
      ConditionExpression: condition,
      ExpressionAttributeValues: values,
      ExpressionAttributeNames: names,
    });
    return item && userFromItem(item);
  }
}
