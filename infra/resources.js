'use strict';
// Everything serverless.yml deploys besides the functions: tables (infra/tables.js, also what
// the local stack creates), one least-privilege role per function (infra/iam.js), and the KMS key
// the signing-key and MFA-key parameters are encrypted with (infra/signing-keys.js); in production, alarms and a
// dashboard (infra/alarms.js).
const { tableNames, tableResources } = require('./tables.js');
const { KEY_READERS, MFA_RING_READERS, roleName, roleResources } = require('./iam.js');
const { mfaKeyAlias, mfaKeyParameter, mfaKeyResources, parseOperators, signingKeyAlias, signingKeyParameter, signingKeyResources } = require('./signing-keys.js');
const { DEFAULT_THRESHOLDS, alarmResources } = require('./alarms.js');
const { isProductionStage } = require('./tables.js');

module.exports = async ({ resolveVariable }) => {
  const stage = await resolveVariable('sls:stage');
  const service = await resolveVariable('self:service');
  const operators = parseOperators(await resolveVariable("param:signingKeyOperators, ''"));
  // Alarms, their topic and the dashboard: production stages only.
  let alarms = {};
  if (isProductionStage(stage)) {
    const thresholds = {};
    for (const name of Object.keys(DEFAULT_THRESHOLDS)) {
      const value = await resolveVariable(`param:${name}, ''`);
      if (value !== '' && value !== undefined && value !== null) thresholds[name] = Number(value);
    }
    alarms = alarmResources(stage, thresholds, String((await resolveVariable("param:alarmEmail, ''")) ?? '').trim() || undefined);
  }
  return {
    names: tableNames(stage),
    signingKeyParameter: signingKeyParameter(stage),
    mfaKeyParameter: mfaKeyParameter(stage),
    signingKeyAlias: signingKeyAlias(stage),
    mfaKeyAlias: mfaKeyAlias(stage),
    resources: {
      ...tableResources(stage),
      ...roleResources(service, stage),
      ...signingKeyResources(stage, KEY_READERS.map(roleName), operators),
      ...mfaKeyResources(stage, MFA_RING_READERS.map(roleName), operators),
      ...alarms,
    },
  };
};
