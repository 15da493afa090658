'use strict';
const { mfaKeyParameter, signingKeyParameter } = require('./signing-keys.js');
const { isProductionStage, SESSIONS_BY_USER_INDEX } = require('./tables.js');
// Least privilege: one IAM role per function, allowed exactly the DynamoDB actions on the tables
// its code uses (no dynamodb:*, no Resource "*"), reading the signing-key parameter only where it
// verifies or signs tokens, and writing only its own log group.
// tests/package/template.test.ts reads the packaged template, so a change cannot widen these quietly.
// The local stack holds each function to its role (scripts/local-iam/, docs/local-stack.md): a call
// outside it fails the e2e run, and so does a grant no e2e path uses, unless a comment directly above
// it, `// needs <action>: <path>`, names the path that does.

/** The sessions table's by-user index, as a key of ACCESS: `<table logical id>/index/<name>`. */
const SESSIONS_BY_USER = `SessionsTable/index/${SESSIONS_BY_USER_INDEX}`;

/**
 * function name -> table (or `<table>/index/<name>`) logical id -> actions. `me` and the authorizer
 * read, and write one thing only: an API key's `last_used_at`, at most once an hour per key.
 */
const ACCESS = {
  login: {
    // GetItem: the email domain's SSO connection (`--enforce` refuses passwords), cached 30 s.
    UsersTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem', 'dynamodb:GetItem'],
    // UpdateItem and the index: MAX_SESSIONS_PER_USER ends the least recently used sessions.
    SessionsTable: ['dynamodb:BatchWriteItem', 'dynamodb:UpdateItem'],
    [SESSIONS_BY_USER]: ['dynamodb:Query'],
    // GetItem: a counter whose last slots are held by attempts in flight is read again while waiting.
    // DeleteItem: a session the cap ends takes its device token with it.
    AttemptsTable: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem', 'dynamodb:DeleteItem'],
  },
  listSessions: {
    UsersTable: ['dynamodb:BatchGetItem'],
    SessionsTable: ['dynamodb:BatchGetItem'],
    [SESSIONS_BY_USER]: ['dynamodb:Query'],
  },
  endSession: {
    UsersTable: ['dynamodb:BatchGetItem'],
    SessionsTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
    // The device token handed out with the session ends with it.
    AttemptsTable: ['dynamodb:DeleteItem'],
  },
  changePassword: {
    // GetItem: the email domain's SSO connection (`--enforce` refuses password changes).
    UsersTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem', 'dynamodb:GetItem'],
    // UpdateItem: the session's own count of wrong current passwords.
    SessionsTable: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:UpdateItem'],
    // The new session's device token.
    AttemptsTable: ['dynamodb:BatchWriteItem'],
  },
  refresh: {
    UsersTable: ['dynamodb:BatchGetItem'],
    // needs dynamodb:GetItem: a refresh that lost the rotation race re-reads the session (the e2e
    // races usually lose one, not surely)
    SessionsTable: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem'],
    // A session ended for a reused refresh token takes its device token with it.
    AttemptsTable: ['dynamodb:DeleteItem'],
  },
  logout: {
    UsersTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
    SessionsTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
    // The device token handed out with the session ends with it.
    AttemptsTable: ['dynamodb:DeleteItem'],
  },
  me: {
    UsersTable: ['dynamodb:BatchGetItem'],
    SessionsTable: ['dynamodb:BatchGetItem'],
    // An API key's slot (read with its user); UpdateItem: its last_used_at, at most once an hour.
    AttemptsTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
  },
  authorizer: {
    UsersTable: ['dynamodb:BatchGetItem'],
    SessionsTable: ['dynamodb:BatchGetItem'],
    // An API key's slot (read with its user); UpdateItem: its last_used_at, at most once an hour.
    AttemptsTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
  },
  // API keys (their items are in the attempts table); each checks the caller's session first.
  createApiKey: {
    UsersTable: ['dynamodb:BatchGetItem'],
    SessionsTable: ['dynamodb:BatchGetItem'],
    // BatchGetItem: every slot of the user; PutItem: the new key, on a slot still free.
    AttemptsTable: ['dynamodb:BatchGetItem', 'dynamodb:PutItem'],
  },
  listApiKeys: {
    UsersTable: ['dynamodb:BatchGetItem'],
    SessionsTable: ['dynamodb:BatchGetItem'],
    AttemptsTable: ['dynamodb:BatchGetItem'],
  },
  revokeApiKey: {
    UsersTable: ['dynamodb:BatchGetItem'],
    SessionsTable: ['dynamodb:BatchGetItem'],
    // GetItem: whether a slot that has moved on held the id (200 for an ended key, else 404).
    AttemptsTable: ['dynamodb:UpdateItem', 'dynamodb:GetItem'],
  },
  // Second factors (the MFA state is on the user item; mfa_tokens are in the attempts table).
  mfaSetup: {
    UsersTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
    // UpdateItem: the session's own count of wrong current passwords.
    SessionsTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
    AttemptsTable: ['dynamodb:GetItem'],
  },
  mfaActivate: {
    UsersTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem'],
    SessionsTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem'],
    // BatchWriteItem: the new session's device token and, after a federated sign-in, its IdP session (SSOSID#).
    AttemptsTable: ['dynamodb:UpdateItem', 'dynamodb:BatchWriteItem'],
  },
  mfaVerify: {
    UsersTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem'],
    // needs dynamodb:UpdateItem: MAX_SESSIONS_PER_USER ending the least recently used sessions at a
    // second-factor sign-in; a session written for a verify that lost its mfa_token's spend, ended at once
    SessionsTable: ['dynamodb:BatchWriteItem', 'dynamodb:UpdateItem'],
    // needs dynamodb:Query: MAX_SESSIONS_PER_USER's cap at a second-factor sign-in reads the user's sessions
    [SESSIONS_BY_USER]: ['dynamodb:Query'],
    // GetItem: the device token the sign-in presented, whose counter the code is held to too;
    // DeleteItem: that token, replaced by the new one once the sign-in has succeeded.
    // BatchWriteItem: the new device token and, after a federated sign-in, its IdP session (SSOSID#).
    AttemptsTable: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem', 'dynamodb:DeleteItem'],
  },
  mfaRecoveryCodes: {
    UsersTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
    SessionsTable: ['dynamodb:BatchGetItem'],
  },
  mfaTurnOff: {
    UsersTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
    SessionsTable: ['dynamodb:BatchGetItem'],
  },
  // Single sign-on (docs/sso.md). Connections and identity links are in the users table; flows,
  // one-time codes, IdP sessions and spent logout-token ids in the attempts table.
  ssoAuthorize: {
    // GetItem: the domain's connection.
    UsersTable: ['dynamodb:GetItem'],
    // PutItem: the flow, kept for the callback.
    AttemptsTable: ['dynamodb:PutItem'],
  },
  ssoCallback: {
    // GetItem: the connection, the (issuer, sub) link, a user by email; BatchGetItem: the user;
    // PutItem: a just-in-time user (its email item, then itself) and the link; UpdateItem: the
    // role from the groups claim.
    // needs dynamodb:DeleteItem: a just-in-time user whose own item cannot be written gives its email back
    UsersTable: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
    // UpdateItem: the flow taken (single use); PutItem: the one-time code.
    AttemptsTable: ['dynamodb:UpdateItem', 'dynamodb:PutItem'],
  },
  ssoToken: {
    UsersTable: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'],
    // needs dynamodb:UpdateItem: MAX_SESSIONS_PER_USER ending the least recently used sessions at a federated sign-in
    SessionsTable: ['dynamodb:BatchWriteItem', 'dynamodb:UpdateItem'],
    // needs dynamodb:Query: MAX_SESSIONS_PER_USER's cap at a federated sign-in reads the user's sessions
    [SESSIONS_BY_USER]: ['dynamodb:Query'],
    // UpdateItem: the one-time code spent; BatchWriteItem: the device token, the IdP session's
    // item, or the mfa_token of a second factor owed.
    // needs dynamodb:DeleteItem: a session the cap ends takes its device token with it
    AttemptsTable: ['dynamodb:UpdateItem', 'dynamodb:BatchWriteItem', 'dynamodb:DeleteItem'],
  },
  ssoBackchannelLogout: {
    // GetItem: the connection by (issuer, client id), the (issuer, sub) link; UpdateItem: the logout's
    // time on the user item (a pending federated grant or mfa_token made before it opens no session).
    UsersTable: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
    // BatchGetItem: the user's sessions, whole; UpdateItem: each one ended.
    SessionsTable: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
    [SESSIONS_BY_USER]: ['dynamodb:Query'],
    // PutItem: the token's jti, spent; GetItem: the IdP session (a token with a sid and no sub);
    // DeleteItem: an ended session's device token; the jti given back when a session could not be ended.
    AttemptsTable: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'],
  },
  notFound: {},
  exampleProtected: {},
};

/** The functions that seal or open TOTP secrets or make recovery codes, and so read the stage's MFA-key parameter. */
const MFA_KEY_READERS = ['mfaSetup', 'mfaActivate', 'mfaVerify', 'mfaRecoveryCodes', 'mfaTurnOff'];

/** The function that opens the SSO connections' client secrets (sealed under the MFA ring: lib/auth/identity-providers.ts). */
const SSO_SECRET_READERS = ['ssoCallback'];

/** Functions that sign or verify tokens, and so read the stage's signing-key parameter. */
const KEY_READERS = ['login', 'refresh', 'logout', 'me', 'authorizer', 'listSessions', 'endSession', 'changePassword', 'createApiKey', 'listApiKeys', 'revokeApiKey', 'ssoToken', ...MFA_KEY_READERS];

/** Every function that reads the MFA-key parameter. */
const MFA_RING_READERS = [...MFA_KEY_READERS, ...SSO_SECRET_READERS];

/** The ARN of a table, or of one index of it (`<table>/index/<name>`). */
function tableArn(name) {
  const [table, index] = name.split('/index/');
  const arn = { 'Fn::GetAtt': [table, 'Arn'] };
  return index === undefined ? arn : { 'Fn::Join': ['', [arn, `/index/${index}`]] };
}

const roleName = (fn) => `${fn.charAt(0).toUpperCase()}${fn.slice(1)}Role`;

function roleResources(service, stage) {
  const resources = {};
  for (const [fn, tables] of Object.entries(ACCESS)) {
    // The example route is not deployed to production (infra/example-route.js), nor is its role.
    if (fn === 'exampleProtected' && isProductionStage(stage)) continue;
    const statements = [
      {
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${service}-${stage}-${fn}:*` },
      },
      ...Object.entries(tables).map(([table, actions]) => ({ Effect: 'Allow', Action: actions, Resource: tableArn(table) })),
    ];
    // Each encrypted with a KMS key of its own (infra/signing-keys.js), whose key policy names
    // these roles for kms:Decrypt (through SSM for the parameter, and directly for the sealed ring's
    // encryption context). A key policy that names a role of its own account needs no IAM
    // statement, so none is added here: it would add nothing for these keys, and could only let
    // the roles use other keys of the account.
    for (const [readers, parameter] of [[KEY_READERS, signingKeyParameter(stage)], [MFA_RING_READERS, mfaKeyParameter(stage)]]) {
      if (!readers.includes(fn)) continue;
      statements.push({
        Effect: 'Allow',
        Action: ['ssm:GetParameter'],
        Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${parameter}` },
      });
    }
    resources[roleName(fn)] = {
      Type: 'AWS::IAM::Role',
      Properties: {
        AssumeRolePolicyDocument: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
        },
        Policies: [{ PolicyName: `${fn}-least-privilege`, PolicyDocument: { Version: '2012-10-17', Statement: statements } }],
      },
    };
  }
  return resources;
}

module.exports = { ACCESS, KEY_READERS, MFA_KEY_READERS, MFA_RING_READERS, SSO_SECRET_READERS, SESSIONS_BY_USER, roleName, roleResources, tableArn };
