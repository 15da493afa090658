import { BatchGetCommand, GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableNames } from '../../infra/tables.js';
import { createDocumentClient, isStoreUnavailable } from '../../lib/platform/dynamo.js';
import { placeholderCredentials } from '../../lib/platform/local-credentials.js';
import type { Access } from '../../scripts/local-iam/policy.js';
import { startIamProxy, type IamProxy } from '../../scripts/local-iam/proxy.js';
import { ensureTables } from '../../scripts/local-stack.js';
import { dynamoEndpoint } from '../support/context.js';

const STAGE = 'iamcheck';
const TABLES = tableNames(STAGE);

/** The roles under test: small, so each case says what it allows. */
const ACCESS: Access = {
  me: { UsersTable: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'] },
  listSessions: { UsersTable: ['dynamodb:BatchGetItem'], SessionsTable: ['dynamodb:BatchGetItem', 'dynamodb:Query'] },
  login: { UsersTable: ['dynamodb:BatchGetItem'], 'SessionsTable/index/by-user': ['dynamodb:Query'] },
};

describe('the local IAM check in front of dynalite', () => {
  let proxy: IamProxy;
  const clients: DynamoDBDocumentClient[] = [];
  /** A client signed as a Lambda of the stage (or as no Lambda at all), as lib/app.ts makes it. */
  const clientOf = (fn?: string, stage = STAGE) => {
    const client = createDocumentClient({ region: 'us-east-1', dynamodbEndpoint: proxy.endpoint, placeholderCredentials: true, functionName: fn && `vpn-auth-${stage}-${fn}` });
    clients.push(client);
    return client;
  };
  const userKey = { pk: 'USER#usr_iam' };

  beforeAll(async () => {
    proxy = await startIamProxy({ target: dynamoEndpoint(), access: () => ACCESS });
    await ensureTables(proxy.endpoint, STAGE);
    await clientOf().send(new PutCommand({ TableName: TABLES.users, Item: { ...userKey, email: 'iam@example.com' } }));
  });
  afterAll(async () => {
    for (const client of clients) client.destroy();
    await proxy.close();
  });

  it("refuses an action outside the function's role exactly as DynamoDB does, once (the SDK does not retry it), and our code makes it no 503", async () => {
    // Prepare: what the SDK sends, signed as the Lambda
    const denialsBefore = proxy.denials.length;

    // Act
    const error = await clientOf('me').send(new GetCommand({ TableName: TABLES.sessions, Key: { pk: 'SESSION#x' } })).catch((caught: unknown) => caught);

    // Assess
    const message =
      'User: arn:aws:sts::000000000000:assumed-role/vpn-auth-iamcheck-MeRole/vpn-auth-iamcheck-me is not authorized to perform: dynamodb:GetItem ' +
      'on resource: arn:aws:dynamodb:us-east-1:000000000000:table/vpn-auth-iamcheck-sessions because no identity-based policy allows the dynamodb:GetItem action';
    expect(error).toMatchObject({ name: 'AccessDeniedException', message, $metadata: { httpStatusCode: 400, attempts: 1 } });
    expect(isStoreUnavailable(error)).toBe(false);
    expect(proxy.denials.slice(denialsBefore)).toEqual([
      { functionName: 'vpn-auth-iamcheck-me', fn: 'me', action: 'dynamodb:GetItem', resource: 'SessionsTable', message },
    ]);
  });

  it('answers the denial on the wire as DynamoDB: 400, the coral type and Message, JSON 1.0, a request id and CRC32', async () => {
    // Prepare: a raw request (what any SDK would send), the signature's value irrelevant to the check
    const { accessKeyId } = placeholderCredentials('vpn-auth-iamcheck-me');

    // Act
    const reply = await fetch(proxy.endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDB_20120810.PutItem',
        authorization: `AWS4-HMAC-SHA256 Credential=${accessKeyId}/20260101/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=${'0'.repeat(64)}`,
      },
      body: JSON.stringify({ TableName: TABLES.users, Item: { pk: { S: 'USER#x' } } }),
    });

    // Assess
    const text = await reply.text();
    expect(reply.status).toBe(400);
    expect(reply.headers.get('content-type')).toBe('application/x-amz-json-1.0');
    expect(reply.headers.get('x-amzn-requestid')).toMatch(/^[A-Z0-9]{52}$/);
    expect(reply.headers.get('x-amz-crc32')).toBe(String((await import('node:zlib')).crc32(text)));
    expect(JSON.parse(text)).toEqual({
      __type: 'com.amazon.coral.service#AccessDeniedException',
      Message:
        'User: arn:aws:sts::000000000000:assumed-role/vpn-auth-iamcheck-MeRole/vpn-auth-iamcheck-me is not authorized to perform: dynamodb:PutItem ' +
        'on resource: arn:aws:dynamodb:eu-west-1:000000000000:table/vpn-auth-iamcheck-users because no identity-based policy allows the dynamodb:PutItem action',
    });
  });

  it('passes an allowed call through to dynalite and records the grant it used', async () => {
    // Act
    const { Item } = await clientOf('me').send(new GetCommand({ TableName: TABLES.users, Key: userKey, ConsistentRead: true }));

    // Assess
    expect(Item?.email).toBe('iam@example.com');
    expect(proxy.used.has('me UsersTable dynamodb:GetItem')).toBe(true);
    expect(proxy.used.has('me UsersTable dynamodb:BatchGetItem')).toBe(false);
  });

  it('checks a batch across two tables per table: one table outside the role refuses the whole batch', async () => {
    // Prepare
    const batch = new BatchGetCommand({ RequestItems: { [TABLES.users]: { Keys: [userKey] }, [TABLES.sessions]: { Keys: [{ pk: 'SESSION#x' }] } } });

    // Act
    const refused = await clientOf('me').send(batch).catch((caught: unknown) => caught);
    const allowed = await clientOf('listSessions').send(batch);

    // Assess: me may read users only; the denial names the table it may not read
    expect(refused).toMatchObject({ name: 'AccessDeniedException' });
    expect((refused as Error).message).toContain('perform: dynamodb:BatchGetItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/vpn-auth-iamcheck-sessions because');
    expect(proxy.used.has('me UsersTable dynamodb:BatchGetItem')).toBe(false);
    expect(allowed.Responses?.[TABLES.users]).toEqual([{ ...userKey, email: 'iam@example.com' }]);
    expect(['listSessions UsersTable dynamodb:BatchGetItem', 'listSessions SessionsTable dynamodb:BatchGetItem'].every((id) => proxy.used.has(id))).toBe(true);
  });

  it("needs the index's own grant for a Query of an index; its table's grant does not cover it, nor it the table", async () => {
    // Prepare
    const ofIndex = new QueryCommand({ TableName: TABLES.sessions, IndexName: 'by-user', KeyConditionExpression: 'user_id = :u', ExpressionAttributeValues: { ':u': 'usr_iam' } });
    const ofTable = new QueryCommand({ TableName: TABLES.sessions, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': 'SESSION#x' } });

    // Act
    const tableGrantOnIndex = await clientOf('listSessions').send(ofIndex).catch((caught: unknown) => caught);
    const indexGrantOnIndex = await clientOf('login').send(ofIndex);
    const indexGrantOnTable = await clientOf('login').send(ofTable).catch((caught: unknown) => caught);

    // Assess
    expect((tableGrantOnIndex as Error).message).toContain('dynamodb:Query on resource: arn:aws:dynamodb:us-east-1:000000000000:table/vpn-auth-iamcheck-sessions/index/by-user because');
    expect(indexGrantOnIndex.Items).toEqual([]);
    expect(proxy.used.has('login SessionsTable/index/by-user dynamodb:Query')).toBe(true);
    expect((indexGrantOnTable as Error).name).toBe('AccessDeniedException');
  });

  it("refuses another stage's tables and a function without a role; lets every client that is not a Lambda through", async () => {
    // Act
    const otherStage = await clientOf('me', 'elsewhere').send(new GetCommand({ TableName: TABLES.users, Key: userKey })).catch((caught: unknown) => caught);
    const noRole = await clientOf('mystery').send(new GetCommand({ TableName: TABLES.users, Key: userKey })).catch((caught: unknown) => caught);
    const notALambda = await clientOf().send(new GetCommand({ TableName: TABLES.sessions, Key: { pk: 'SESSION#x' } }));

    // Assess
    expect((otherStage as Error).message).toContain('assumed-role/vpn-auth-elsewhere-MeRole/vpn-auth-elsewhere-me is not authorized to perform: dynamodb:GetItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/vpn-auth-iamcheck-users');
    expect(noRole).toMatchObject({ name: 'AccessDeniedException' });
    expect(proxy.denials.at(-1)).toMatchObject({ functionName: 'vpn-auth-iamcheck-mystery', fn: 'mystery', resource: 'UsersTable' });
    expect(notALambda.Item).toBeUndefined();
  });
});
