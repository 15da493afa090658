'use strict';
// The SSM SecureString parameters that hold a stage's key rings, each with the customer-managed KMS
// key it is encrypted with: the JWT signing keys (JWT_SECRET_PARAMETER) and the MFA keys that seal
// TOTP secrets and recovery codes (MFA_KEY_PARAMETER; a ring of its own, so that retiring a signing
// key never locks anyone out of their second factor). Read by the Lambdas, granted in
// infra/iam.js, written by `npm run keys -- ... --aws [--ring mfa]`.
//
// Why a key of our own: a SecureString under the AWS-managed `aws/ssm` key can be decrypted by any
// principal of the account that may call ssm:GetParameter (a ReadOnlyAccess role, say), and with
// the HS256 keys anyone can mint an admin token.
//
// Why the ring is sealed by KMS itself, not only stored encrypted: SSM encrypts whatever it is
// given, under whatever key the writer names, and GetParameter does not say which key that was. A
// principal allowed only ssm:PutParameter could store a ring of its own choosing (under aws/ssm,
// say), and the Lambdas would sign with it within minutes. So the parameter's value is a KMS
// ciphertext of the ring (lib/auth/sealed-ring.ts), made with the stage's key and an encryption
// context naming the stage and the ring; the Lambdas decrypt it naming that key and that context,
// and KMS refuses anything else. Only the operators the stage names (`signingKeyOperators`) may
// encrypt under the key, directly or through SSM; the functions may only decrypt (through SSM, for
// the parameter; directly, for the ring's context). The account's administrators manage the key
// without using it.
const { SERVICE } = require('./tables.js');
const { RING_NAMES, ringEncryptionContext } = require('./rings.js');

/** `/vpn-auth/<stage>/jwt-signing-keys` */
function signingKeyParameter(stage) {
  return `/${SERVICE}/${stage}/jwt-signing-keys`;
}

/** `alias/vpn-auth-<stage>-signing-keys`: what the keys CLI names when it writes the parameter. */
function signingKeyAlias(stage) {
  return `alias/${SERVICE}-${stage}-signing-keys`;
}

/** `/vpn-auth/<stage>/mfa-keys` */
function mfaKeyParameter(stage) {
  return `/${SERVICE}/${stage}/mfa-keys`;
}

/** `alias/vpn-auth-<stage>-mfa-keys` */
function mfaKeyAlias(stage) {
  return `alias/${SERVICE}-${stage}-mfa-keys`;
}


// Managing, not using: no kms:CreateGrant (a grant would let its grantee decrypt). The policy itself
// can be changed by these administrators (kms:PutKeyPolicy: a key must stay manageable), which
// CloudTrail records.
const KEY_ADMINISTRATION = [
  'kms:CreateAlias', 'kms:DeleteAlias', 'kms:UpdateAlias', 'kms:DescribeKey', 'kms:EnableKey', 'kms:DisableKey',
  'kms:EnableKeyRotation', 'kms:DisableKeyRotation', 'kms:GetKeyPolicy', 'kms:GetKeyRotationStatus', 'kms:PutKeyPolicy',
  'kms:ListAliases', 'kms:ListGrants', 'kms:ListKeyPolicies', 'kms:ListResourceTags', 'kms:RevokeGrant', 'kms:RetireGrant',
  'kms:TagResource', 'kms:UntagResource', 'kms:UpdateKeyDescription', 'kms:ScheduleKeyDeletion', 'kms:CancelKeyDeletion',
  'kms:RotateKeyOnDemand',
];

/**
 * The signing keys' KMS key and its alias. `readers` are the logical ids of the roles that may
 * decrypt (the functions that verify or sign tokens); `operators` the ARNs of the principals that
 * may seal a ring under it and open it, to rotate it (none by default: then nobody can write one).
 */
function signingKeyResources(stage, readers, operators = []) {
  return parameterKeyResources({
    id: 'SigningKeysKey',
    parameter: signingKeyParameter(stage),
    alias: signingKeyAlias(stage),
    context: ringEncryptionContext(stage, 'signing'),
    description: `Encrypts ${signingKeyParameter(stage)} (JWT signing keys of ${SERVICE} ${stage})`,
    readersSid: 'TokenFunctions',
    readers,
    operators,
  });
}

/** The MFA keys' KMS key and its alias: decrypted only by the MFA functions (and the operators). */
function mfaKeyResources(stage, readers, operators = []) {
  return parameterKeyResources({
    id: 'MfaKeysKey',
    parameter: mfaKeyParameter(stage),
    alias: mfaKeyAlias(stage),
    context: ringEncryptionContext(stage, 'mfa'),
    description: `Encrypts ${mfaKeyParameter(stage)} (MFA keys of ${SERVICE} ${stage})`,
    readersSid: 'MfaFunctions',
    readers,
    operators,
  });
}

/**
 * A KMS key for one parameter's ring, and its alias: kept when the stack is removed (a deleted key
 * makes its ciphertext unreadable for good); yearly rotation on. Two uses, each held to its own
 * encryption context: SSM's, for the parameter (`PARAMETER_ARN`, through SSM only), and the ring's
 * own (`stage`, `ring`: the sealed ring inside the parameter). No statement lets the account at
 * large encrypt: a principal that could would be able to seal a ring of its own.
 */
function parameterKeyResources({ id, parameter, alias, context, description, readersSid, readers, operators }) {
  const root = { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${AWS::AccountId}:root' };
  const throughSsmForTheParameter = {
    StringEquals: {
      'kms:ViaService': { 'Fn::Sub': 'ssm.${AWS::Region}.amazonaws.com' },
      'kms:EncryptionContext:PARAMETER_ARN': { 'Fn::Sub': `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${parameter}` },
    },
  };
  const forTheRing = {
    StringEquals: Object.fromEntries(Object.entries(context).map(([name, value]) => [`kms:EncryptionContext:${name}`, value])),
  };
  return {
    [id]: {
      Type: 'AWS::KMS::Key',
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        Description: description,
        EnableKeyRotation: true,
        KeyPolicy: {
          Version: '2012-10-17',
          Statement: [
            { Sid: 'AdministratorsManage', Effect: 'Allow', Principal: { AWS: root }, Action: KEY_ADMINISTRATION, Resource: '*' },
            {
              Sid: `${readersSid}DecryptThroughSsm`,
              Effect: 'Allow',
              Principal: { AWS: readers.map((role) => ({ 'Fn::GetAtt': [role, 'Arn'] })) },
              Action: 'kms:Decrypt',
              Resource: '*',
              Condition: throughSsmForTheParameter,
            },
            {
              Sid: `${readersSid}OpenTheRing`,
              Effect: 'Allow',
              Principal: { AWS: readers.map((role) => ({ 'Fn::GetAtt': [role, 'Arn'] })) },
              Action: 'kms:Decrypt',
              Resource: '*',
              Condition: forTheRing,
            },
            ...(operators.length > 0
              ? [
                  // Write the parameter (SSM encrypts a standard parameter with Encrypt, an advanced one with GenerateDataKey) and read it.
                  { Sid: 'OperatorsUseThroughSsm', Effect: 'Allow', Principal: { AWS: operators }, Action: ['kms:Encrypt', 'kms:GenerateDataKey', 'kms:Decrypt'], Resource: '*', Condition: throughSsmForTheParameter },
                  // Seal the ring (keys init, rotate, retire, seal) and open it (list, rotate, retire, reseal).
                  { Sid: 'OperatorsSealTheRing', Effect: 'Allow', Principal: { AWS: operators }, Action: ['kms:Encrypt', 'kms:Decrypt'], Resource: '*', Condition: forTheRing },
                ]
              : []),
          ],
        },
      },
    },
    [`${id}Alias`]: {
      Type: 'AWS::KMS::Alias',
      Properties: { AliasName: alias, TargetKeyId: { Ref: id } },
    },
  };
}

/** The `signingKeyOperators` param: comma-separated IAM principal ARNs, empty by default. */
function parseOperators(raw) {
  const operators = String(raw ?? '').split(',').map((arn) => arn.trim()).filter(Boolean);
  for (const arn of operators) {
    if (!/^arn:aws[a-z-]*:iam::\d{12}:(role|user)\/[\w+=,.@/-]+$/.test(arn)) throw new Error(`signingKeyOperators: not an IAM role or user ARN: "${arn}"`);
  }
  return operators;
}

module.exports = { signingKeyParameter, signingKeyAlias, signingKeyResources, mfaKeyParameter, mfaKeyAlias, mfaKeyResources, RING_NAMES, ringEncryptionContext, parseOperators };
