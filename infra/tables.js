'use strict';
// The one definition of the DynamoDB tables. serverless.yml deploys it
// (`${file(./infra/tables.js)}`) and the local stack creates the same tables
// from it, so names, keys and TTL attributes cannot drift apart.
// CommonJS on purpose: the Serverless Framework `require`s this file.

const SERVICE = 'vpn-auth';

/** `prod` and `production` are production stages: data retained, HTTPS required, no demo user, no example route. */
function isProductionStage(stage) {
  return stage === 'prod' || stage === 'production';
}

/** Table names for a stage; the Lambdas receive them as USERS_TABLE / SESSIONS_TABLE. */
function tableNames(stage) {
  return {
    users: `${SERVICE}-${stage}-users`,
    sessions: `${SERVICE}-${stage}-sessions`,
    attempts: `${SERVICE}-${stage}-attempts`,
  };
}

/** The attribute DynamoDB TTL deletes by (epoch seconds); reads compare it with now too. */
const TTL_ATTRIBUTE = 'expires_at';

/**
 * The sessions of a user, newest first: a global secondary index on the sessions table. It
 * projects what listing and the session cap read, never the refresh hashes. Index reads are
 * eventually consistent (DynamoDB offers nothing else on a GSI).
 */
const SESSIONS_BY_USER_INDEX = 'by-user';
// `amr` and `idp`: how a session was signed in, which the list shows (a password, a code, a company IdP).
const SESSIONS_BY_USER_ATTRIBUTES = ['id', 'last_used_at', 'rotated_at', 'ip', 'user_agent', 'user_epoch', TTL_ATTRIBUTE, 'revoked_at', 'amr', 'idp'];

/** CloudFormation resources for a stage: `Type` + `Properties` for each table. */
function tableResources(stage) {
  const names = tableNames(stage);
  const production = isProductionStage(stage);
  // In production the data outlives the stack: no deletion by accident or by `serverless remove`.
  const retain = production ? { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' } : {};
  const keySchema = {
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    BillingMode: 'PAY_PER_REQUEST',
    SSESpecification: { SSEEnabled: true },
    PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    DeletionProtectionEnabled: production,
  };
  return {
    UsersTable: {
      Type: 'AWS::DynamoDB::Table',
      ...retain,
      Properties: { TableName: names.users, ...keySchema },
    },
    SessionsTable: {
      Type: 'AWS::DynamoDB::Table',
      ...retain,
      Properties: {
        TableName: names.sessions,
        ...keySchema,
        AttributeDefinitions: [
          ...keySchema.AttributeDefinitions,
          { AttributeName: 'user_id', AttributeType: 'S' },
          { AttributeName: 'created_at', AttributeType: 'S' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: SESSIONS_BY_USER_INDEX,
            KeySchema: [
              { AttributeName: 'user_id', KeyType: 'HASH' },
              { AttributeName: 'created_at', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: SESSIONS_BY_USER_ATTRIBUTES },
          },
        ],
        TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      },
    },
    AttemptsTable: {
      Type: 'AWS::DynamoDB::Table',
      ...retain,
      Properties: {
        TableName: names.attempts,
        ...keySchema,
        TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      },
    },
  };
}

module.exports = { SERVICE, isProductionStage, tableNames, tableResources, TTL_ATTRIBUTE, SESSIONS_BY_USER_INDEX };
