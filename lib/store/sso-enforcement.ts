import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { storeCall } from '../platform/dynamo.js';

/**
 * The one read of SSO that a password sign-in and a password change make: whether the email's domain
 * refuses passwords (`sso add --enforce`). A module of its own, so that those functions do not
 * bundle the whole SSO repository (lib/store/sso.ts, which keys its connections by this).
 */
export const connectionKey = (domain: string) => ({ pk: `SSO#${domain.toLowerCase()}` });

/** What the check needs of a connection. */
export interface EnforcementSource {
  connection(domain: string): Promise<{ enforce?: boolean } | undefined>;
}

/** The domain's connection, its `enforce` flag only (one strongly consistent GetItem of the users table). */
export class ConnectionEnforcement implements EnforcementSource {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly usersTable: string,
  ) {}

  async connection(domain: string): Promise<{ enforce?: boolean } | undefined> {
    const { Item } = await storeCall(this.db.send(new GetCommand({ TableName: this.usersTable, Key: connectionKey(domain), ProjectionExpression: '#enforce', ExpressionAttributeNames: { '#enforce': 'enforce' }, ConsistentRead: true })));
    return Item ? { enforce: Item.enforce === true } : undefined;
  }
}

/** How long a Lambda trusts what it read of a domain's enforcement: `sso add --enforce` applies within this. */
export const ENFORCEMENT_CACHE_MS = 30_000;

/**
 * Which email domains refuse passwords (`sso add --enforce`): one GetItem of the domain's connection,
 * remembered for 30 s by each Lambda, so a flood of password attempts costs no more reads.
 */
export class EnforcedDomains {
  private readonly known = new Map<string, { at: number; enforced: Promise<boolean> }>();

  constructor(private readonly sso: EnforcementSource, private readonly now: () => number = Date.now) {}

  async enforces(email: string): Promise<boolean> {
    const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
    const cached = this.known.get(domain);
    if (cached && this.now() - cached.at < ENFORCEMENT_CACHE_MS) return cached.enforced;
    const enforced = this.sso.connection(domain).then((connection) => connection?.enforce === true);
    if (this.known.size > 1000) this.known.clear();
    this.known.set(domain, { at: this.now(), enforced });
    enforced.catch(() => this.known.delete(domain));
    return enforced;
  }
}

