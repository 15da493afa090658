import { createHash } from 'node:crypto';
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionalCheckFailed, scanAll, storeCall, updateAndReadIf, updateIf, type BatchWrite } from '../platform/dynamo.js';
import { newUserToken, parseUserToken, type UserToken } from '../platform/ids.js';
import { epochSeconds } from './sessions.js';
import { IDP_LOGOUT_PREFIX, userKey, type User } from './users.js';
import { connectionKey } from './sso-enforcement.js';

export { connectionKey };

/**
 * Single sign-on's items (README, "Access patterns"):
 *
 * | entity | table | key | TTL |
 * |---|---|---|---|
 * | connection (one per email domain) | users | `SSO#<domain>` | none |
 * | the IdP client (issuer, client id) and the set of `domains` connected through it, for back-channel logout | users | `SSOCLIENT#<sha256(issuer ‖ client id)>` | none |
 * | identity link (issuer, sub) -> user | users | `IDP#<sha256(issuer ‖ sub)>` | none |
 * | the user's side of it: `idp:<sha256(issuer)>` = sub, `idp_issuer:<sha256(issuer)>` = issuer | users | on `USER#<id>` | none |
 * | a flow between authorize and callback | attempts | `SSOFLOW#<sha256(state)>` | 10 min |
 * | a one-time code between callback and token | attempts | `SSOCODE#<sha256(code)>` | 60 s |
 * | an IdP session (issuer, sid) -> user, for logout tokens that carry only `sid` | attempts | `SSOSID#<sha256(issuer ‖ sid)>` | the session's end |
 * | a logout token's jti, spent | attempts | `SSOJTI#<sha256(issuer ‖ jti)>` | 1 h |
 *
 * TTL is clean-up only: every read compares `expires_at` with now.
 */
export const FLOW_TTL_SECONDS = 600;
export const CODE_TTL_SECONDS = 60;
export const JTI_TTL_SECONDS = 3600;

const digest = (...parts: string[]) => createHash('sha256').update(parts.join('\u0000')).digest('base64url');

export const connectionByClientKey = (issuer: string, clientId: string) => ({ pk: `SSOCLIENT#${digest(issuer, clientId)}` });
export const identityKey = (issuer: string, sub: string) => ({ pk: `IDP#${digest(issuer, sub)}` });
export const flowKey = (state: string) => ({ pk: `SSOFLOW#${digest(state)}` });
export const codeKey = (hash: string) => ({ pk: `SSOCODE#${hash}` });
export const idpSessionKey = (issuer: string, sid: string) => ({ pk: `SSOSID#${digest(issuer, sid)}` });
export const jtiKey = (issuer: string, jti: string) => ({ pk: `SSOJTI#${digest(issuer, jti)}` });

/** A company's identity provider, for one email domain. */
export interface Connection {
  domain: string;
  issuer: string;
  clientId: string;
  /** The client secret, sealed (lib/auth/sso-secrets.ts); never in clear at rest. */
  sealedClientSecret: string;
  /** Password sign-in refused for the domain's emails (401 sso_required). */
  enforce: boolean;
  /** With it, the role is admin while the groups claim holds it, else user, at every federated sign-in. */
  adminGroup: string | undefined;
  groupsClaim: string;
  createdAt: string;
}

interface ConnectionItem {
  pk: string;
  domain: string;
  issuer: string;
  client_id: string;
  client_secret: string;
  enforce: boolean;
  admin_group?: string;
  groups_claim: string;
  created_at: string;
}

function connectionFrom(item: Record<string, unknown>): Connection {
  const row = item as unknown as ConnectionItem;
  return {
    domain: row.domain,
    issuer: row.issuer,
    clientId: row.client_id,
    sealedClientSecret: row.client_secret,
    enforce: row.enforce === true,
    adminGroup: row.admin_group,
    groupsClaim: row.groups_claim ?? 'groups',
    createdAt: row.created_at,
  };
}

/** Which logout a user item records: every session of the issuer (by sub), or one IdP session (by sid). */
export const idpLogoutKey = (issuer: string, sid?: string) => (sid === undefined ? digest(issuer) : digest(issuer, sid));

/**
 * Whether a back-channel logout reached the user after a federated grant or mfa_token was made
 * (epoch ms): a logout of the whole issuer, or of the IdP session it came from.
 */
export function loggedOutSince(user: Pick<User, 'idpLogouts'>, idp: { issuer: string; sid?: string | undefined }, createdAt: number): boolean {
  const logouts = user.idpLogouts;
  if (!logouts) return false;
  const whole = logouts[idpLogoutKey(idp.issuer)];
  const one = idp.sid === undefined ? undefined : logouts[idpLogoutKey(idp.issuer, idp.sid)];
  return (whole !== undefined && whole >= createdAt) || (one !== undefined && one >= createdAt);
}

/** An IdP client as back-channel logout finds it: by (issuer, client id), with every domain connected through it. */
export interface ClientRegistration {
  issuer: string;
  clientId: string;
  domains: string[];
}

/** What authorize keeps for the callback: ours (state, nonce, verifier) and the client's (redirect URI, state, challenge). */
export interface Flow {
  domain: string;
  redirectUri: string;
  clientState: string;
  codeChallenge: string;
  nonce: string;
  /** Our PKCE verifier for the IdP leg. */
  verifier: string;
  expiresAt: number;
}

/** What a one-time code stands for: a federated sign-in of this user, through this IdP. */
export interface FederatedGrant {
  userId: string;
  /** The S256 challenge the client sent to authorize: only its verifier redeems the code. */
  codeChallenge: string;
  issuer: string;
  /** The IdP's own session id (`sid` of the ID token), when it sent one. */
  idpSid: string | undefined;
  /** The IdP did a second factor (its `amr`). */
  idpMfa: boolean;
  /** When the callback made it (epoch ms). */
  createdAt: number;
  expiresAt: number;
}

export type SsoCode = UserToken;
const CODE_PREFIX = 'sc_';

export function newSsoCode(userId: string): SsoCode & { token: string } {
  return newUserToken(CODE_PREFIX, userId);
}

export function parseSsoCode(value: string): SsoCode | undefined {
  return parseUserToken(CODE_PREFIX, value);
}

/**
 * On a user's item, per issuer: `idp:<sha256(issuer)>` = the sub it is linked to, `idp_issuer:<sha256(issuer)>` = the issuer.
 * One sub per issuer and user, so that a recycled email cannot link a second one.
 */
const ISSUER_LINK_PREFIX = 'idp:';
const ISSUER_NAME_PREFIX = 'idp_issuer:';

/** The user is linked to another subject of the same issuer already. */
export class IdentityTakenError extends Error {
  constructor(readonly userId: string) {
    super(`The user ${userId} is linked to another subject of this issuer`);
    this.name = 'IdentityTakenError';
  }
}

export class ConnectionTakenError extends Error {
  constructor(domain: string) {
    super(`The domain ${domain} already has a connection (sso remove --domain ${domain} first)`);
    this.name = 'ConnectionTakenError';
  }
}

export class SsoRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly usersTable: string,
    readonly attemptsTable: string,
  ) {}

  // Connections (written by the users CLI only).

  /** A new connection, refused when the domain has one. The (issuer, client id) copy is written after it. */
  async addConnection(connection: Connection): Promise<void> {
    const item: ConnectionItem = {
      ...connectionKey(connection.domain),
      domain: connection.domain.toLowerCase(),
      issuer: connection.issuer,
      client_id: connection.clientId,
      client_secret: connection.sealedClientSecret,
      enforce: connection.enforce,
      ...(connection.adminGroup ? { admin_group: connection.adminGroup } : {}),
      groups_claim: connection.groupsClaim,
      created_at: connection.createdAt,
    };
    try {
      await storeCall(this.db.send(new PutCommand({ TableName: this.usersTable, Item: item, ConditionExpression: 'attribute_not_exists(pk)' })));
    } catch (error) {
      if (isConditionalCheckFailed(error)) throw new ConnectionTakenError(connection.domain);
      throw error;
    }
    // Several domains may share one client of one IdP (a tenant with many email domains): the
    // (issuer, client id) item holds the set of them, so removing one leaves the others' logout working.
    await storeCall(
      this.db.send(
        new UpdateCommand({
          TableName: this.usersTable,
          Key: connectionByClientKey(connection.issuer, connection.clientId),
          UpdateExpression: 'SET issuer = :issuer, client_id = :client ADD domains :domain REMOVE client_secret',
          ExpressionAttributeValues: { ':issuer': connection.issuer, ':client': connection.clientId, ':domain': new Set([item.domain]) },
        }),
      ),
    );
  }

  /**
   * The client secret sealed again (a rotation of the MFA ring), only over the sealed form read.
   * False when it changed meanwhile (a remove, an add).
   */
  async resealClientSecret(connection: Connection, sealed: string): Promise<boolean> {
    return updateIf(this.db, {
      TableName: this.usersTable,
      Key: connectionKey(connection.domain),
      UpdateExpression: 'SET client_secret = :new',
      ConditionExpression: 'client_secret = :old',
      ExpressionAttributeValues: { ':new': sealed, ':old': connection.sealedClientSecret },
    });
  }

  async connection(domain: string): Promise<Connection | undefined> {
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.usersTable, Key: connectionKey(domain), ConsistentRead: true })));
    return Item ? connectionFrom(Item) : undefined;
  }

  /** The IdP client behind a logout token's (iss, aud), and the domains connected through it. */
  async clientRegistration(issuer: string, clientId: string): Promise<ClientRegistration | undefined> {
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.usersTable, Key: connectionByClientKey(issuer, clientId), ConsistentRead: true })));
    if (!Item) return undefined;
    const domains = Item.domains instanceof Set ? [...(Item.domains as Set<string>)].sort() : [];
    return domains.length === 0 ? undefined : { issuer: Item.issuer as string, clientId: Item.client_id as string, domains };
  }

  async listConnections(): Promise<Connection[]> {
    const items = await scanAll(this.db, { TableName: this.usersTable, FilterExpression: 'begins_with(pk, :sso)', ExpressionAttributeValues: { ':sso': 'SSO#' } });
    return items.map(connectionFrom).sort((a, b) => a.domain.localeCompare(b.domain));
  }

  /** False when the domain had none. */
  async removeConnection(domain: string): Promise<boolean> {
    const existing = await this.connection(domain);
    if (!existing) return false;
    const clientKey = connectionByClientKey(existing.issuer, existing.clientId);
    await storeCall(this.db.send(new UpdateCommand({ TableName: this.usersTable, Key: clientKey, UpdateExpression: 'DELETE domains :domain', ExpressionAttributeValues: { ':domain': new Set([existing.domain]) } })));
    // Gone only when no other domain shares the client (DynamoDB drops a set that becomes empty).
    await storeCall(this.db.send(new DeleteCommand({ TableName: this.usersTable, Key: clientKey, ConditionExpression: 'attribute_not_exists(domains)' }))).catch((error: unknown) => {
      if (!isConditionalCheckFailed(error)) throw error;
    });
    await storeCall(this.db.send(new DeleteCommand({ TableName: this.usersTable, Key: connectionKey(domain) })));
    return true;
  }

  // Identity links.

  /** The user linked to (issuer, sub), if any. */
  async linkedUser(issuer: string, sub: string): Promise<string | undefined> {
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.usersTable, Key: identityKey(issuer, sub), ConsistentRead: true })));
    return Item?.user_id as string | undefined;
  }

  /**
   * Link (issuer, sub) to a user, unless it is linked already: the user it is linked to now. The
   * user's own item first claims the issuer (`idp:<sha256(issuer)>` = sub, only when it holds no
   * other sub of that issuer), then the link is written; a user already linked to another sub of
   * the issuer is refused (IdentityTakenError): an email recycled at the IdP must not take over
   * the account of the person who had it. No transactions (dynalite): a lost race gives the claim back.
   */
  async link(issuer: string, sub: string, userId: string, at: Date): Promise<string> {
    const claimed = await updateIf(this.db, {
      TableName: this.usersTable,
      Key: userKey(userId),
      UpdateExpression: 'SET #link = :sub, #issuer = :issuer',
      ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(#link) OR #link = :sub)',
      ExpressionAttributeNames: { '#link': `${ISSUER_LINK_PREFIX}${digest(issuer)}`, '#issuer': `${ISSUER_NAME_PREFIX}${digest(issuer)}` },
      ExpressionAttributeValues: { ':sub': sub, ':issuer': issuer },
    });
    if (!claimed) throw new IdentityTakenError(userId);
    try {
      await storeCall(
        this.db.send(
          new PutCommand({
            TableName: this.usersTable,
            Item: { ...identityKey(issuer, sub), user_id: userId, issuer, sub, created_at: at.toISOString() },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
      return userId;
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      const owner = (await this.linkedUser(issuer, sub))!;
      if (owner !== userId) await this.releaseClaim(issuer, sub, userId);
      return owner;
    }
  }

  private async releaseClaim(issuer: string, sub: string, userId: string): Promise<void> {
    await updateIf(this.db, {
      TableName: this.usersTable,
      Key: userKey(userId),
      UpdateExpression: 'REMOVE #link, #issuer',
      ConditionExpression: '#link = :sub',
      ExpressionAttributeNames: { '#link': `${ISSUER_LINK_PREFIX}${digest(issuer)}`, '#issuer': `${ISSUER_NAME_PREFIX}${digest(issuer)}` },
      ExpressionAttributeValues: { ':sub': sub },
    });
  }

  /**
   * Every (issuer, sub) link of a user removed (`users sso unlink --email E`): the user can then be
   * linked again by email, to whichever sub the IdP now sends. The number of links removed.
   */
  async unlinkUser(userId: string): Promise<number> {
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.usersTable, Key: userKey(userId), ConsistentRead: true })));
    let removed = 0;
    for (const [attribute, sub] of Object.entries(Item ?? {})) {
      if (!attribute.startsWith(ISSUER_LINK_PREFIX) || typeof sub !== 'string') continue;
      const issuer = (Item![`${ISSUER_NAME_PREFIX}${attribute.slice(ISSUER_LINK_PREFIX.length)}`] as string | undefined) ?? undefined;
      if (issuer) await storeCall(this.db.send(new DeleteCommand({ TableName: this.usersTable, Key: identityKey(issuer, sub), ConditionExpression: 'user_id = :user', ExpressionAttributeValues: { ':user': userId } }))).catch((error: unknown) => {
        if (!isConditionalCheckFailed(error)) throw error;
      });
      await storeCall(this.db.send(new UpdateCommand({ TableName: this.usersTable, Key: userKey(userId), UpdateExpression: 'REMOVE #link, #issuer', ExpressionAttributeNames: { '#link': attribute, '#issuer': `${ISSUER_NAME_PREFIX}${attribute.slice(ISSUER_LINK_PREFIX.length)}` } })));
      removed++;
    }
    return removed;
  }

  // Flows (authorize -> callback).

  async createFlow(state: string, flow: Omit<Flow, 'expiresAt'>, at: Date): Promise<void> {
    await storeCall(
      this.db.send(
        new PutCommand({
          TableName: this.attemptsTable,
          Item: {
            ...flowKey(state),
            domain: flow.domain,
            redirect_uri: flow.redirectUri,
            client_state: flow.clientState,
            code_challenge: flow.codeChallenge,
            nonce: flow.nonce,
            verifier: flow.verifier,
            created_at: at.toISOString(),
            expires_at: epochSeconds(at) + FLOW_TTL_SECONDS,
          },
        }),
      ),
    );
  }

  /** Take the flow of `state`, once: undefined when it is unknown, spent or expired. */
  async takeFlow(state: string, at: Date): Promise<Flow | undefined> {
    const item = await updateAndReadIf(this.db, {
      TableName: this.attemptsTable,
      Key: flowKey(state),
      UpdateExpression: 'SET spent_at = :at',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(spent_at) AND expires_at > :now',
      ExpressionAttributeValues: { ':at': at.toISOString(), ':now': epochSeconds(at) },
    });
    if (!item) return undefined;
    return {
      domain: item.domain as string,
      redirectUri: item.redirect_uri as string,
      clientState: item.client_state as string,
      codeChallenge: item.code_challenge as string,
      nonce: item.nonce as string,
      verifier: item.verifier as string,
      expiresAt: item.expires_at as number,
    };
  }

  // One-time codes (callback -> token).

  async createCode(code: SsoCode, grant: Omit<FederatedGrant, 'expiresAt' | 'userId' | 'createdAt'>, at: Date): Promise<void> {
    await storeCall(
      this.db.send(
        new PutCommand({
          TableName: this.attemptsTable,
          Item: {
            ...codeKey(code.hash),
            user_id: code.userId,
            code_challenge: grant.codeChallenge,
            issuer: grant.issuer,
            ...(grant.idpSid ? { idp_sid: grant.idpSid } : {}),
            idp_mfa: grant.idpMfa,
            created_at: at.toISOString(),
            expires_at: epochSeconds(at) + CODE_TTL_SECONDS,
          },
        }),
      ),
    );
  }

  /**
   * Spend a code, once, only with the challenge of its verifier: of racing requests exactly one
   * gets the grant; a wrong verifier leaves the code as it was. Undefined for anything refused.
   */
  async spendCode(code: SsoCode, challenge: string, at: Date): Promise<FederatedGrant | undefined> {
    const item = await updateAndReadIf(this.db, {
      TableName: this.attemptsTable,
      Key: codeKey(code.hash),
      UpdateExpression: 'SET spent_at = :at',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(spent_at) AND expires_at > :now AND code_challenge = :challenge AND user_id = :user',
      ExpressionAttributeValues: { ':at': at.toISOString(), ':now': epochSeconds(at), ':challenge': challenge, ':user': code.userId },
    });
    if (!item) return undefined;
    return {
      userId: item.user_id as string,
      codeChallenge: item.code_challenge as string,
      issuer: item.issuer as string,
      idpSid: item.idp_sid as string | undefined,
      idpMfa: item.idp_mfa === true,
      createdAt: Date.parse(item.created_at as string),
      expiresAt: item.expires_at as number,
    };
  }

  // Back-channel logout.

  /** The item that finds a user by the IdP's session id, written with the session it was opened for. */
  idpSessionWrite(issuer: string, sid: string, userId: string, expiresAt: number): BatchWrite {
    return { table: this.attemptsTable, put: { ...idpSessionKey(issuer, sid), user_id: userId, expires_at: expiresAt } };
  }

  /**
   * The user behind a logout token: by its sub (the link) when it has one, else by its sid (the IdP
   * session's item, written at a federated sign-in). The sessions to end are then picked by sid, if given.
   */
  async userOf(issuer: string, { sub, sid }: { sub?: string; sid?: string }, at: Date): Promise<string | undefined> {
    if (sub) return this.linkedUser(issuer, sub);
    if (!sid) return undefined;
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.attemptsTable, Key: idpSessionKey(issuer, sid), ConsistentRead: true })));
    return Item && (Item.expires_at as number) > epochSeconds(at) ? (Item.user_id as string) : undefined;
  }

  /** Record on the user's item that the IdP logged them out (of one IdP session when `sid` is given), at `at`. */
  async recordLogout(userId: string, issuer: string, sid: string | undefined, at: Date): Promise<void> {
    await updateIf(this.db, {
      TableName: this.usersTable,
      Key: userKey(userId),
      UpdateExpression: 'SET #logout = :at',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#logout': `${IDP_LOGOUT_PREFIX}${idpLogoutKey(issuer, sid)}` },
      ExpressionAttributeValues: { ':at': at.getTime() },
    });
  }

  /** Give back a jti this request spent (at `at`), when the logout it stood for could not be carried out. */
  async giveBackJti(issuer: string, jti: string, at: Date): Promise<void> {
    await storeCall(
      this.db.send(new DeleteCommand({ TableName: this.attemptsTable, Key: jtiKey(issuer, jti), ConditionExpression: 'created_at = :at', ExpressionAttributeValues: { ':at': at.toISOString() } })),
    ).catch((error: unknown) => {
      if (!isConditionalCheckFailed(error)) throw error;
    });
  }

  /** Spend a logout token's jti: false when it was spent before (a replay). */
  async spendJti(issuer: string, jti: string, at: Date): Promise<boolean> {
    try {
      await storeCall(
        this.db.send(
          new PutCommand({
            TableName: this.attemptsTable,
            Item: { ...jtiKey(issuer, jti), created_at: at.toISOString(), expires_at: epochSeconds(at) + JTI_TTL_SECONDS },
            ConditionExpression: 'attribute_not_exists(pk) OR expires_at < :now',
            ExpressionAttributeValues: { ':now': epochSeconds(at) },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }
}
