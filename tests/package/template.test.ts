import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ACCESS, KEY_READERS, MFA_KEY_READERS, MFA_RING_READERS } from '../../infra/iam.js';
import { SETTINGS } from '../../infra/settings.js';
import { METRIC, METRICS_NAMESPACE } from '../../lib/platform/metrics.js';
import { stageParam } from '../../scripts/stage-params.js';
import { PROJECT_ROOT, SERVERLESS_BIN } from '../../scripts/local-stack.js';

type Template = { Resources: Record<string, { Type: string; DeletionPolicy?: string; Properties: Record<string, any> }> };

/** `serverless package --stage <stage>`, offline, into a folder of its own; the CloudFormation it would deploy. */
async function packaged(stage: string, params: string[] = []): Promise<Template> {
  const out = mkdtempSync(join(tmpdir(), `vpn-auth-package-${stage}-`));
  await promisify(execFile)(process.execPath, [SERVERLESS_BIN, 'package', '--stage', stage, '--package', out, ...params.map((param) => `--param=${param}`)], {
    cwd: PROJECT_ROOT,
    // A deployer's shell may well hold a key or a local endpoint: neither may reach the template.
    env: {
      ...process.env,
      ESBUILD_WORK_FOLDER: `.esbuild-package-${stage}`,
      JWT_SECRET: DEPLOYER_SECRET,
      DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000',
      // Whatever the shell says must not reach the template.
      ...Object.fromEntries(Object.keys(SETTINGS).map((variable) => [variable, '3'])),
      CORS_ORIGINS: 'https://shell.example.com',
      LOG_LEVEL: 'DEBUG',
    },
    timeout: 120_000,
  });
  return JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
}

const DEPLOYER_SECRET = 'a-signing-key-in-the-deployers-shell-0123456789';
const OPERATOR = 'arn:aws:iam::123456789012:role/SecurityAdmin';

const byType = (template: Template, type: string) => Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);

/** Whether a key-policy statement grants `action`, by name or by wildcard. */
const uses = (statement: any, action: string) => [statement.Action].flat().some((granted: string) => granted === action || granted === 'kms:*' || (granted.endsWith('*') && action.startsWith(granted.slice(0, -1))));
/** What makes a ciphertext under a key (a grant can allow any of it): whoever may do one of these could seal a ring of their own. */
const SEALING = ['kms:Encrypt', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:GenerateDataKeyPair', 'kms:ReEncryptTo', 'kms:CreateGrant'];

describe('the packaged CloudFormation template', () => {
  let prod: Template;
  let dev: Template;
  let reserved: Template;
  beforeAll(async () => {
    // One after the other: two packagings of one service at once trip over each other.
    prod = await packaged('prod');
    dev = await packaged('dev');
    reserved = await packaged('prod', ['loginReservedConcurrency=50', 'reservedConcurrency=200', `signingKeyOperators=${OPERATOR}`, 'loginMaxFailures=7', 'corsOrigins=https://app.example.com', 'alarmEmail=oncall@example.com']);
  }, 180_000);

  it('keeps every table on demand, encrypted, point-in-time recoverable, with TTL on expires_at where records expire', () => {
    const tables = byType(prod, 'AWS::DynamoDB::Table');
    expect(tables.map(([id]) => id).sort()).toEqual(['AttemptsTable', 'SessionsTable', 'UsersTable']);
    for (const [id, table] of tables) {
      expect(table.Properties, id).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        SSESpecification: { SSEEnabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      });
    }
    for (const id of ['SessionsTable', 'AttemptsTable']) {
      expect(prod.Resources[id]!.Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expires_at', Enabled: true });
    }
  });

  it("indexes sessions by user, newest last, projecting what a list shows and never a refresh hash", () => {
    const sessions = prod.Resources.SessionsTable!.Properties;
    expect(sessions.GlobalSecondaryIndexes).toHaveLength(1);
    const [index] = sessions.GlobalSecondaryIndexes;
    expect(index.IndexName).toBe('by-user');
    expect(index.KeySchema).toEqual([
      { AttributeName: 'user_id', KeyType: 'HASH' },
      { AttributeName: 'created_at', KeyType: 'RANGE' },
    ]);
    expect(index.Projection.ProjectionType).toBe('INCLUDE');
    expect(index.Projection.NonKeyAttributes).toEqual(expect.arrayContaining(['id', 'last_used_at', 'ip', 'user_agent', 'revoked_at', 'expires_at', 'user_epoch']));
    expect(index.Projection.NonKeyAttributes).not.toContain('refresh_hash');
    expect(index.Projection.NonKeyAttributes).not.toContain('previous_hash');
    expect(sessions.AttributeDefinitions).toEqual(expect.arrayContaining([{ AttributeName: 'user_id', AttributeType: 'S' }, { AttributeName: 'created_at', AttributeType: 'S' }]));
  });

  it('protects the tables from deletion in prod only', () => {
    for (const [id, table] of byType(prod, 'AWS::DynamoDB::Table')) {
      expect({ id, policy: table.DeletionPolicy, protection: table.Properties.DeletionProtectionEnabled }).toEqual({ id, policy: 'Retain', protection: true });
    }
    for (const [id, table] of byType(dev, 'AWS::DynamoDB::Table')) {
      expect({ id, policy: table.DeletionPolicy, protection: table.Properties.DeletionProtectionEnabled }).toEqual({ id, policy: undefined, protection: false });
    }
  });

  it('gives each function its own role with only the DynamoDB actions it uses, never a wildcard', () => {
    // Every function but the example route, which prod does not get.
    const functions = byType(prod, 'AWS::Lambda::Function');
    expect(functions.length).toBe(Object.keys(ACCESS).length - 1);
    expect(byType(prod, 'AWS::IAM::Role').length).toBe(Object.keys(ACCESS).length - 1);
    expect(byType(dev, 'AWS::Lambda::Function').length).toBe(Object.keys(ACCESS).length);
    for (const [id, fn] of functions) {
      const roleId = fn.Properties.Role['Fn::GetAtt'][0] as string;
      const statements = prod.Resources[roleId]!.Properties.Policies.flatMap((policy: any) => policy.PolicyDocument.Statement);
      for (const statement of statements) {
        expect(statement.Resource, `${id}: no Resource "*"`).not.toBe('*');
        for (const action of [statement.Action].flat()) expect(action, id).not.toMatch(/\*/);
      }
      const dynamo = statements.filter((statement: any) => [statement.Action].flat().some((action: string) => action.startsWith('dynamodb:')));
      // A table's ARN, or one index of it (`<table>/index/<name>`), as infra/iam.js names them.
      const resourceName = (resource: any): string =>
        resource['Fn::GetAtt'] ? resource['Fn::GetAtt'][0] : `${resource['Fn::Join'][1][0]['Fn::GetAtt'][0]}${resource['Fn::Join'][1][1]}`;
      const granted = Object.fromEntries(dynamo.map((statement: any) => [resourceName(statement.Resource), [statement.Action].flat().sort()]));
      const name = id.replace(/LambdaFunction$/, '');
      const expected = Object.entries(ACCESS).find(([fnName]) => fnName.toLowerCase() === name.toLowerCase())![1];
      expect(granted, id).toEqual(Object.fromEntries(Object.entries(expected).map(([table, actions]) => [table, [...actions].sort()])));
    }
  });

  it('lets the functions that hold a code to a pair read its lock, and grants no read or write their paths do not make', () => {
    // The grants' DynamoDB actions by resource, as infra/iam.js names them (`<table>/index/<name>` for an index).
    const dynamoOf = (fn: string): Record<string, string[]> => {
      const statements = prod.Resources[`${fn}Role`]!.Properties.Policies.flatMap((policy: any) => policy.PolicyDocument.Statement);
      const resourceName = (resource: any): string =>
        resource['Fn::GetAtt'] ? resource['Fn::GetAtt'][0] : `${resource['Fn::Join'][1][0]['Fn::GetAtt'][0]}${resource['Fn::Join'][1][1]}`;
      return Object.fromEntries(
        statements.filter((statement: any) => [statement.Action].flat().some((action: string) => action.startsWith('dynamodb:'))).map((statement: any) => [resourceName(statement.Resource), [statement.Action].flat().sort()]),
      );
    };
    // A second factor reads the device token its sign-in presented (GetItem) and replaces it once the sign-in
    // succeeded (DeleteItem): without them, AWS answers AccessDenied and the request a 500.
    expect(dynamoOf('MfaVerify').AttemptsTable).toEqual(['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem']);
    // Turning TOTP off is held to the account's own count of wrong codes, on the user item: no attempts table at all.
    expect(dynamoOf('MfaTurnOff')).not.toHaveProperty('AttemptsTable');
    // A password change applies no session cap: it neither reads the index; it counts wrong current passwords on its session.
    expect(dynamoOf('ChangePassword')).not.toHaveProperty(['SessionsTable/index/by-user']);
    expect(dynamoOf('ChangePassword').SessionsTable).toEqual(['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:UpdateItem']);
    expect(dynamoOf('ChangePassword').AttemptsTable).toEqual(['dynamodb:BatchWriteItem']);
    // Single sign-on: authorize reads a connection and writes a flow, nothing else; no SSO function
    // but the token exchange writes a session, and only back-channel logout ends one.
    expect(dynamoOf('SsoAuthorize')).toEqual({ UsersTable: ['dynamodb:GetItem'], AttemptsTable: ['dynamodb:PutItem'] });
    expect(dynamoOf('SsoCallback')).not.toHaveProperty('SessionsTable');
    expect(dynamoOf('SsoToken').SessionsTable).toEqual(['dynamodb:BatchWriteItem', 'dynamodb:UpdateItem']);
    expect(dynamoOf('SsoBackchannelLogout').UsersTable).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(dynamoOf('SsoBackchannelLogout').SessionsTable).toEqual(['dynamodb:BatchGetItem', 'dynamodb:UpdateItem']);
  });

  it('lets /auth/me and the authorizer only read, but for an API key\'s last_used_at (at most one UpdateItem per key per hour)', () => {
    for (const fn of ['me', 'authorizer'] as const) {
      for (const [table, actions] of Object.entries(ACCESS[fn])) {
        // The attempts table holds the API keys: a key's slot is read with its user, and its use recorded once an hour.
        const allowed = table === 'AttemptsTable' ? /^dynamodb:(BatchGetItem|UpdateItem)$/ : /^dynamodb:(BatchGetItem|GetItem|Query)$/;
        for (const action of actions) expect(action, `${fn} ${table}`).toMatch(allowed);
      }
    }
  });

  it('gives the API-key functions the attempts table (where keys live) and no write to users or sessions', () => {
    expect([...ACCESS.createApiKey!.AttemptsTable!].sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:PutItem']);
    expect(ACCESS.listApiKeys!.AttemptsTable).toEqual(['dynamodb:BatchGetItem']);
    expect([...ACCESS.revokeApiKey!.AttemptsTable!].sort()).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    for (const fn of ['createApiKey', 'listApiKeys', 'revokeApiKey'] as const) {
      expect(ACCESS[fn]!.UsersTable, fn).toEqual(['dynamodb:BatchGetItem']);
      expect(ACCESS[fn]!.SessionsTable, fn).toEqual(['dynamodb:BatchGetItem']);
    }
    // Their routes, each to its own function
    const routes = byType(prod, 'AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties.RouteKey);
    expect(routes).toEqual(expect.arrayContaining(['POST /v1/auth/api-keys', 'GET /v1/auth/api-keys', 'DELETE /v1/auth/api-keys/{id}']));
    // An Errors alarm each, as every function has
    for (const fn of ['CreateApiKey', 'ListApiKeys', 'RevokeApiKey']) expect(prod.Resources[`${fn}ErrorsAlarm`], fn).toBeDefined();
    // MAX_API_KEYS_PER_USER from the stage's params
    for (const [id, fn] of byType(prod, 'AWS::Lambda::Function')) expect(fn.Properties.Environment.Variables.MAX_API_KEYS_PER_USER, id).toBe('10');
  });

  it('runs every function on nodejs22.x, arm64, with source maps, a deliberate memory size and timeout', () => {
    for (const [id, fn] of byType(prod, 'AWS::Lambda::Function')) {
      expect(fn.Properties, id).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], Timeout: 10 });
      expect(fn.Properties.Environment.Variables.NODE_OPTIONS, id).toBe('--enable-source-maps');
      expect(fn.Properties.MemorySize, id).toBe({ LoginLambdaFunction: 1769, ChangePasswordLambdaFunction: 1769, NotFoundLambdaFunction: 256 }[id] ?? 1024);
    }
  });

  it('keeps logs a year in prod and two weeks elsewhere', () => {
    for (const [id, group] of byType(prod, 'AWS::Logs::LogGroup')) expect(group.Properties.RetentionInDays, id).toBe(365);
    for (const [id, group] of byType(dev, 'AWS::Logs::LogGroup')) expect(group.Properties.RetentionInDays, id).toBe(14);
  });

  it('throttles the API stage from stage parameters and writes JSON access logs', () => {
    const [, stage] = byType(prod, 'AWS::ApiGatewayV2::Stage')[0]!;
    expect(stage.Properties.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 });
    expect(JSON.parse(stage.Properties.AccessLogSettings.Format)).toMatchObject({ requestId: '$context.requestId', status: '$context.status' });
    const [, devStage] = byType(dev, 'AWS::ApiGatewayV2::Stage')[0]!;
    expect(devStage.Properties.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 });
  });

  it('carries no signing key: the functions read it from the SSM parameter of their stage, sealed under the stage\'s KMS key', () => {
    for (const [template, stage] of [[prod, 'prod'], [dev, 'dev']] as const) {
      expect(JSON.stringify(template)).not.toContain(DEPLOYER_SECRET);
      for (const [id, fn] of byType(template, 'AWS::Lambda::Function')) {
        const variables = fn.Properties.Environment.Variables;
        expect(Object.keys(variables), id).not.toContain('JWT_SECRET');
        expect(Object.keys(variables), id).not.toContain('DYNAMODB_ENDPOINT');
        expect(variables.JWT_SECRET_PARAMETER, id).toBe(`/vpn-auth/${stage}/jwt-signing-keys`);
        // The key each ring must be sealed under: the stage's own, as its alias names it.
        expect(variables.JWT_SECRET_KMS_KEY, id).toBe(template.Resources.SigningKeysKeyAlias!.Properties.AliasName);
        expect(variables.MFA_KEY_KMS_KEY, id).toBe(template.Resources.MfaKeysKeyAlias!.Properties.AliasName);
      }
    }
  });

  it('lets only the functions that sign or verify tokens read the signing keys, and only the MFA functions the MFA keys', () => {
    for (const [id, fn] of byType(prod, 'AWS::Lambda::Function')) {
      const name = id.replace(/LambdaFunction$/, '');
      const roleId = fn.Properties.Role['Fn::GetAtt'][0] as string;
      const statements = prod.Resources[roleId]!.Properties.Policies.flatMap((policy: any) => policy.PolicyDocument.Statement);
      const ssm = statements.filter((statement: any) => [statement.Action].flat().some((action: string) => action.startsWith('ssm:') || action.startsWith('kms:')));
      const reads = (readers: string[]) => readers.some((reader) => reader.toLowerCase() === name.toLowerCase());
      const parameter = (path: string) => ({ Effect: 'Allow', Action: ['ssm:GetParameter'], Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${path}` } });
      expect(ssm, id).toEqual([
        ...(reads(KEY_READERS) ? [parameter('/vpn-auth/prod/jwt-signing-keys')] : []),
        ...(reads(MFA_RING_READERS) ? [parameter('/vpn-auth/prod/mfa-keys')] : []),
      ]);
      expect(fn.Properties.Environment.Variables.MFA_KEY_PARAMETER, id).toBe('/vpn-auth/prod/mfa-keys');
    }
    expect([...MFA_KEY_READERS].sort()).toEqual(['mfaActivate', 'mfaRecoveryCodes', 'mfaSetup', 'mfaTurnOff', 'mfaVerify']);
    // The SSO callback opens the connections' client secrets, sealed under the MFA ring: it reads that ring, not the signing keys.
    expect([...MFA_RING_READERS].sort()).toEqual(['mfaActivate', 'mfaRecoveryCodes', 'mfaSetup', 'mfaTurnOff', 'mfaVerify', 'ssoCallback']);
    expect([...KEY_READERS].sort()).toEqual(['authorizer', 'changePassword', 'createApiKey', 'endSession', 'listApiKeys', 'listSessions', 'login', 'logout', 'me', 'mfaActivate', 'mfaRecoveryCodes', 'mfaSetup', 'mfaTurnOff', 'mfaVerify', 'refresh', 'revokeApiKey', 'ssoToken']);
  });

  it('reserves login 100 and the password change 20 of the account\'s concurrency in prod by default, nothing elsewhere unless params ask', () => {
    const concurrency = (template: Template) => Object.fromEntries(byType(template, 'AWS::Lambda::Function').map(([id, fn]) => [id, fn.Properties.ReservedConcurrentExecutions]));
    expect(concurrency(prod)).toEqual({
      LoginLambdaFunction: 100,
      RefreshLambdaFunction: undefined,
      LogoutLambdaFunction: undefined,
      MeLambdaFunction: undefined,
      ListSessionsLambdaFunction: undefined,
      EndSessionLambdaFunction: undefined,
      ChangePasswordLambdaFunction: 20,
      MfaSetupLambdaFunction: undefined,
      MfaActivateLambdaFunction: undefined,
      MfaVerifyLambdaFunction: undefined,
      MfaRecoveryCodesLambdaFunction: undefined,
      MfaTurnOffLambdaFunction: undefined,
      CreateApiKeyLambdaFunction: undefined,
      ListApiKeysLambdaFunction: undefined,
      RevokeApiKeyLambdaFunction: undefined,
      SsoAuthorizeLambdaFunction: undefined,
      SsoCallbackLambdaFunction: undefined,
      SsoTokenLambdaFunction: undefined,
      SsoBackchannelLogoutLambdaFunction: undefined,
      AuthorizerLambdaFunction: undefined,
      NotFoundLambdaFunction: undefined,
    });
    for (const [id, reservation] of Object.entries(concurrency(dev))) expect(reservation, id).toBeUndefined();
    expect(concurrency(reserved)).toEqual({
      LoginLambdaFunction: 50,
      RefreshLambdaFunction: 200,
      LogoutLambdaFunction: 200,
      MeLambdaFunction: 200,
      ListSessionsLambdaFunction: 200,
      EndSessionLambdaFunction: 200,
      ChangePasswordLambdaFunction: 20,
      MfaSetupLambdaFunction: 200,
      MfaActivateLambdaFunction: 200,
      MfaVerifyLambdaFunction: 200,
      MfaRecoveryCodesLambdaFunction: 200,
      MfaTurnOffLambdaFunction: 200,
      CreateApiKeyLambdaFunction: 200,
      ListApiKeysLambdaFunction: 200,
      RevokeApiKeyLambdaFunction: 200,
      SsoAuthorizeLambdaFunction: 200,
      SsoCallbackLambdaFunction: 200,
      SsoTokenLambdaFunction: 200,
      SsoBackchannelLogoutLambdaFunction: 200,
      AuthorizerLambdaFunction: 200,
      NotFoundLambdaFunction: undefined,
    });
  });

  it('takes the bcrypt cost from the stage params, never from the deploying shell', () => {
    for (const template of [prod, dev]) {
      for (const [id, fn] of byType(template, 'AWS::Lambda::Function')) expect(fn.Properties.Environment.Variables.BCRYPT_COST, id).toBe('12');
    }
  });

  it.each([
    ['signing keys', 'SigningKeysKey', 'signing-keys', 'jwt-signing-keys', 'signing', 'TokenFunctions', ['AuthorizerRole', 'ChangePasswordRole', 'CreateApiKeyRole', 'EndSessionRole', 'ListApiKeysRole', 'ListSessionsRole', 'LoginRole', 'LogoutRole', 'MeRole', 'MfaActivateRole', 'MfaRecoveryCodesRole', 'MfaSetupRole', 'MfaTurnOffRole', 'MfaVerifyRole', 'RefreshRole', 'RevokeApiKeyRole', 'SsoTokenRole']],
    ['MFA keys', 'MfaKeysKey', 'mfa-keys', 'mfa-keys', 'mfa', 'MfaFunctions', ['MfaActivateRole', 'MfaRecoveryCodesRole', 'MfaSetupRole', 'MfaTurnOffRole', 'MfaVerifyRole', 'SsoCallbackRole']],
  ] as const)('seals the %s under a KMS key of their own (rotated yearly, retained): its readers only decrypt, through SSM for the parameter and directly for the ring\'s own context; nobody else uses it', (_label, keyId, aliasName, parameterName, ring, readersSid, readers) => {
    for (const [template, stage] of [[prod, 'prod'], [dev, 'dev']] as const) {
      expect(byType(template, 'AWS::KMS::Key').map(([id]) => id).sort()).toEqual(['MfaKeysKey', 'SigningKeysKey']);
      const key = template.Resources[keyId]!;
      expect(key).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain', Properties: { EnableKeyRotation: true } });
      const alias = template.Resources[`${keyId}Alias`]!;
      expect(alias.Properties).toEqual({ AliasName: `alias/vpn-auth-${stage}-${aliasName}`, TargetKeyId: { Ref: keyId } });
      const statements = key.Properties.KeyPolicy.Statement as any[];
      const parameterArn = { 'Fn::Sub': `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/vpn-auth/${stage}/${parameterName}` };
      const root = { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${AWS::AccountId}:root' };
      expect(statements.map((statement) => statement.Sid)).toEqual(['AdministratorsManage', `${readersSid}DecryptThroughSsm`, `${readersSid}OpenTheRing`]);
      // Nothing lets anyone seal a ring until the stage names its operators: not the account, not the functions.
      for (const action of SEALING) expect(statements.filter((statement) => uses(statement, action)).map((statement) => statement.Sid), action).toEqual([]);
      // Decrypt: the readers' roles only, through SSM for that parameter, or directly for the ring's context.
      const decrypting = statements.filter((statement) => uses(statement, 'kms:Decrypt') || uses(statement, 'kms:CreateGrant') || uses(statement, 'kms:ReEncryptFrom'));
      expect(decrypting.map((statement) => statement.Sid)).toEqual([`${readersSid}DecryptThroughSsm`, `${readersSid}OpenTheRing`]);
      for (const statement of decrypting) {
        expect(statement.Principal.AWS.map((principal: any) => principal['Fn::GetAtt'][0]).sort(), statement.Sid).toEqual(readers);
        expect(statement.Action, statement.Sid).toBe('kms:Decrypt');
      }
      expect(decrypting[0].Condition).toEqual({ StringEquals: { 'kms:ViaService': { 'Fn::Sub': 'ssm.${AWS::Region}.amazonaws.com' }, 'kms:EncryptionContext:PARAMETER_ARN': parameterArn } });
      expect(decrypting[1].Condition).toEqual({ StringEquals: { 'kms:EncryptionContext:stage': stage, 'kms:EncryptionContext:ring': ring } });
      // The account's administrators manage the key without using it.
      const admin = statements.find((statement) => statement.Sid === 'AdministratorsManage');
      expect(admin.Principal).toEqual({ AWS: root });
      for (const action of ['kms:Decrypt', 'kms:ReEncryptFrom', ...SEALING]) expect(uses(admin, action), action).toBe(false);
    }
    // With operators named (`signingKeyOperators`): they alone seal the ring and write the parameter, and may read both.
    const statements = reserved.Resources[keyId]!.Properties.KeyPolicy.Statement as any[];
    for (const action of SEALING) {
      for (const statement of statements.filter((candidate) => uses(candidate, action))) expect(statement.Principal, `${statement.Sid} ${action}`).toEqual({ AWS: [OPERATOR] });
    }
    expect(statements.filter((statement) => uses(statement, 'kms:Encrypt')).map((statement) => statement.Sid)).toEqual(['OperatorsUseThroughSsm', 'OperatorsSealTheRing']);
    expect(statements.find((statement) => statement.Sid === 'OperatorsUseThroughSsm')).toMatchObject({
      Action: ['kms:Encrypt', 'kms:GenerateDataKey', 'kms:Decrypt'],
      Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Sub': 'ssm.${AWS::Region}.amazonaws.com' }, 'kms:EncryptionContext:PARAMETER_ARN': { 'Fn::Sub': `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/vpn-auth/prod/${parameterName}` } } },
    });
    expect(statements.find((statement) => statement.Sid === 'OperatorsSealTheRing')).toEqual({
      Sid: 'OperatorsSealTheRing',
      Effect: 'Allow',
      Principal: { AWS: [OPERATOR] },
      Action: ['kms:Encrypt', 'kms:Decrypt'],
      Resource: '*',
      Condition: { StringEquals: { 'kms:EncryptionContext:stage': 'prod', 'kms:EncryptionContext:ring': ring } },
    });
  });

  it("gives every function its stage's settings from the params in serverless.yml, never from the deploying shell", () => {
    // The deploying shell exports other values for all of them (see `packaged`).
    for (const [template, stage] of [[prod, 'prod'], [dev, 'dev']] as const) {
      for (const [id, fn] of byType(template, 'AWS::Lambda::Function')) {
        const variables = fn.Properties.Environment.Variables;
        for (const [variable, param] of Object.entries(SETTINGS)) {
          expect(variables[variable], `${id} ${variable}`).toBe(String(stageParam(stage, param)));
        }
        expect(variables.POWERTOOLS_SERVICE_NAME, id).toBe('vpn-auth');
        expect(Object.keys(variables), id).not.toContain('CORS_ORIGINS');
        expect(Object.keys(variables), id).not.toContain('LOG_LEVEL');
      }
    }
    expect(stageParam('prod', 'requireHttps')).toBe(true);
    expect(stageParam('dev', 'requireHttps')).toBe(false);
    expect(stageParam('production', 'loginReservedConcurrency')).toBe(100);
  });

  it('lets --param override a setting at deploy time', () => {
    for (const [id, fn] of byType(reserved, 'AWS::Lambda::Function')) expect(fn.Properties.Environment.Variables.LOGIN_MAX_FAILURES, id).toBe('7');
  });

  it('takes CORS from the corsOrigins param alone: none by default, the listed origins when set, never credentials', () => {
    const cors = (template: Template) => byType(template, 'AWS::ApiGatewayV2::Api')[0]![1].Properties.CorsConfiguration;
    expect(cors(prod)).toBeUndefined();
    expect(cors(dev)).toBeUndefined();
    expect(cors(reserved)).toEqual({
      AllowOrigins: ['https://app.example.com'],
      AllowHeaders: ['Content-Type', 'Authorization'],
      AllowMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
      ExposeHeaders: ['Retry-After'],
      MaxAge: 600,
    });
  });

  it('routes any other path or method to the not-found function ($default), and deploys no example route to prod', () => {
    const routes = (template: Template) => byType(template, 'AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties.RouteKey as string).sort();
    expect(routes(prod)).toEqual([
      '$default',
      'DELETE /v1/auth/api-keys/{id}',
      'DELETE /v1/auth/mfa/totp',
      'DELETE /v1/auth/sessions/{id}',
      'GET /v1/auth/api-keys',
      'GET /v1/auth/me',
      'GET /v1/auth/sessions',
      'GET /v1/auth/sso/authorize',
      'GET /v1/auth/sso/callback',
      'POST /v1/auth/api-keys',
      'POST /v1/auth/login',
      'POST /v1/auth/logout',
      'POST /v1/auth/mfa/recovery-codes',
      'POST /v1/auth/mfa/totp/activate',
      'POST /v1/auth/mfa/totp/setup',
      'POST /v1/auth/mfa/verify',
      'POST /v1/auth/password',
      'POST /v1/auth/refresh',
      'POST /v1/auth/sso/backchannel-logout',
      'POST /v1/auth/sso/token',
    ]);
    expect(routes(dev)).toContain('GET /v1/example/protected');
    expect(routes(dev)).toContain('$default');
  });

  it('alarms in prod, to an SNS topic, on refresh-token reuse, failed sign-ins, lockouts, 503s, 5xx, every function\'s errors, DynamoDB throttling and the authorizer\'s p99', () => {
    const alarms = Object.fromEntries(byType(prod, 'AWS::CloudWatch::Alarm'));
    const watched = (id: string) => {
      const { Namespace, MetricName, Metrics } = alarms[id]!.Properties;
      return Namespace ? `${Namespace}/${MetricName}` : Metrics.filter((metric: any) => metric.MetricStat).map((metric: any) => `${metric.MetricStat.Metric.Namespace}/${metric.MetricStat.Metric.MetricName}`).join('+');
    };
    expect(watched('RefreshTokenReusedAlarm')).toBe('VpnEnterprise/Auth/RefreshTokenReused');
    expect(alarms.RefreshTokenReusedAlarm!.Properties.Threshold).toBe(1);
    expect(watched('SignInFailuresAlarm')).toBe('VpnEnterprise/Auth/SignInFailed');
    expect(watched('LockoutsAlarm')).toBe('VpnEnterprise/Auth/SignInLockedOut');
    expect(watched('ServiceUnavailableAlarm')).toBe('VpnEnterprise/Auth/ServiceUnavailable');
    expect(watched('ApiServerErrorsAlarm')).toBe('AWS/ApiGateway/5xx');
    expect(alarms.AuthorizerLatencyAlarm!.Properties).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Duration', ExtendedStatistic: 'p99', Dimensions: [{ Name: 'FunctionName', Value: 'vpn-auth-prod-authorizer' }] });
    expect(watched('SecondFactorFailuresAlarm')).toBe('VpnEnterprise/Auth/SecondFactorFailed');
    expect(alarms.SecondFactorFailuresAlarm!.Properties.Threshold).toBe(20);
    // Any lock of an account's second factor: someone holding its password has been guessing codes
    expect(watched('SecondFactorLockedAlarm')).toBe('VpnEnterprise/Auth/SecondFactorLocked');
    expect(alarms.SecondFactorLockedAlarm!.Properties.Threshold).toBe(1);
    expect(alarms.SecondFactorLockedAlarm!.Properties.ComparisonOperator).toBe('GreaterThanOrEqualToThreshold');
    // Every deployed function's errors
    const functions = byType(prod, 'AWS::Lambda::Function').map(([id]) => id.replace(/LambdaFunction$/, ''));
    expect(functions).toHaveLength(21);
    for (const fn of functions) expect(watched(`${fn}ErrorsAlarm`), fn).toBe('AWS/Lambda/Errors');
    for (const table of ['UsersTable', 'SessionsTable', 'AttemptsTable']) expect(watched(`${table}ThrottlingAlarm`)).toBe('AWS/DynamoDB/ReadThrottleEvents+AWS/DynamoDB/WriteThrottleEvents');
    // Every alarm notifies the topic, when it fires and when it recovers; no data is not an alarm. A
    // metric-math alarm has its statistic and period in its metrics only (CloudFormation refuses both).
    for (const [id, alarm] of Object.entries(alarms)) {
      expect(alarm.Properties, id).toMatchObject({ AlarmActions: [{ Ref: 'AlarmsTopic' }], OKActions: [{ Ref: 'AlarmsTopic' }], TreatMissingData: 'notBreaching' });
      const { Metrics, MetricName, Statistic, ExtendedStatistic, Period } = alarm.Properties;
      if (Metrics) expect({ id, MetricName, Statistic, ExtendedStatistic, Period }).toEqual({ id, MetricName: undefined, Statistic: undefined, ExtendedStatistic: undefined, Period: undefined });
      else expect([Statistic, ExtendedStatistic].filter(Boolean), id).toHaveLength(1);
    }
    // The service's metrics of this stage only: a dev stage in the account never feeds prod's alarms.
    expect(alarms.RefreshTokenReusedAlarm!.Properties.Dimensions).toEqual([{ Name: 'service', Value: 'vpn-auth' }, { Name: 'stage', Value: 'prod' }]);
    // The topic is not under the AWS-managed aws/sns key, which CloudWatch cannot publish through.
    expect(prod.Resources.AlarmsTopic!.Properties.KmsMasterKeyId).toBeUndefined();
    expect(prod.Resources.AlarmsTopic!.Type).toBe('AWS::SNS::Topic');
    // The custom metrics alarmed on are the ones the code emits (lib/platform/metrics.ts).
    for (const id of ['RefreshTokenReusedAlarm', 'SignInFailuresAlarm', 'LockoutsAlarm', 'ServiceUnavailableAlarm']) {
      expect(Object.values(METRIC)).toContain(alarms[id]!.Properties.MetricName);
      expect(alarms[id]!.Properties.Namespace).toBe(METRICS_NAMESPACE);
    }
    expect(byType(dev, 'AWS::CloudWatch::Alarm')).toEqual([]);
    expect(byType(dev, 'AWS::SNS::Topic')).toEqual([]);
  });

  it('subscribes the alarmEmail param to the alarms, and builds the on-call dashboard in prod', () => {
    expect(byType(prod, 'AWS::SNS::Subscription')).toEqual([]);
    const [, subscription] = byType(reserved, 'AWS::SNS::Subscription')[0]!;
    expect(subscription.Properties).toEqual({ TopicArn: { Ref: 'AlarmsTopic' }, Protocol: 'email', Endpoint: 'oncall@example.com' });
    const [, dashboard] = byType(prod, 'AWS::CloudWatch::Dashboard')[0]!;
    const body = JSON.parse(dashboard.Properties.DashboardBody['Fn::Sub']);
    const titles = body.widgets.map((widget: any) => widget.properties.title);
    expect(titles).toEqual(expect.arrayContaining(['Alarms', 'API 5xx and 503s', 'Function errors', 'Sign-ins: succeeded, failed by reason', 'Lockouts by limit', 'Authorizer duration p50 / p99 (ms)', 'DynamoDB throttle events']));
    expect(byType(dev, 'AWS::CloudWatch::Dashboard')).toEqual([]);
  });
});
