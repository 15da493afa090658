import { DeleteCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionalCheckFailed, storeCall } from './dynamo.js';
import { newUserId } from './ids.js';

export const ROLES = ['admin', 'user'] as const;
export type Role = (typeof ROLES)[number];
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
}

/** What a user looks like outside the service: never the hash, never the status internals. */
export interface PublicUser {
  id: string;
  email: string;
  name: string;
  role: Role;
  created_at: string;
  last_login: string | null;
}

export function toPublicUser(user: User): PublicUser {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    role: user.role,
    created_at: user.createdAt,
    last_login: user.lastLogin,
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

// Key builders: a user item, and an email item that makes emails unique and finds the user by email.
export const userKey = (id: string) => ({ pk: `USER#${id}` });
export const emailKey = (email: string) => ({ pk: `EMAIL#${normalizeEmail(email)}` });

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
  last_login?: string;
  session_epoch: number;
}

export function userFromItem(item: Record<string, unknown>): User {
  const row = item as unknown as UserItem;
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    status: row.status,
    passwordHash: row.password_hash,
    createdAt: row.created_at,
    lastLogin: row.last_login ?? null,
    sessionEpoch: row.session_epoch ?? 0,
  };
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

  async get(id: string): Promise<User | undefined> {
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.table, Key: userKey(id), ConsistentRead: true })));
    return Item ? userFromItem(Item) : undefined;
  }

  async findByEmail(email: string): Promise<User | undefined> {
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.table, Key: emailKey(email) })));
    return Item ? this.get(Item.user_id as string) : undefined;
  }

  /** Set last_login; with `newPasswordHash` (same password, current bcrypt cost) replace the hash in the same write. */
  async recordLogin(id: string, at: Date, newPasswordHash?: string): Promise<User> {
    return newPasswordHash
      ? this.update(id, 'SET last_login = :at, password_hash = :hash', { ':at': at.toISOString(), ':hash': newPasswordHash })
      : this.update(id, 'SET last_login = :at', { ':at': at.toISOString() });
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

  async revokeAllSessions(id: string, at: Date): Promise<User> {
    return this.update(id, 'SET updated_at = :at ADD session_epoch :one', { ':at': at.toISOString(), ':one': 1 });
  }

  async list(): Promise<User[]> {
    const users: User[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await storeCall(
        this.db.send(
          new ScanCommand({
            TableName: this.table,
            FilterExpression: 'begins_with(pk, :prefix)',
            ExpressionAttributeValues: { ':prefix': 'USER#' },
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      users.push(...(page.Items ?? []).map(userFromItem));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return users.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.email.localeCompare(b.email));
  }

  private async update(
    id: string,
    expression: string,
    values: Record<string, unknown>,
    names?: Record<string, string>,
  ): Promise<User> {
    try {
      const { Attributes } = await storeCall(
        this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: userKey(id),
            UpdateExpression: expression,
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: values,
            ExpressionAttributeNames: names,
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return userFromItem(Attributes!);
    } catch (error) {
      if (isConditionalCheckFailed(error)) throw new UserNotFoundError(id);
      throw error;
    }
  }
}
