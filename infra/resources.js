'use strict';
// Everything serverless.yml deploys besides the functions: tables (infra/tables.js, also what
// the local stack creates), one least-privilege role per function (infra/iam.js), and the KMS key
// the signing-key parameter is encrypted with (infra/signing-keys.js).
const { tableNames, tableResources } = require('./tables.js');
const { KEY_READERS, roleName, roleResources } = require('./iam.js');
const { parseOperators, signingKeyParameter, signingKeyResources } = require('./signing-keys.js');

module.exports = async ({ resolveVariable }) => {
  const stage = await resolveVariable('sls:stage');
  const service = await resolveVariable('self:service');
  const operators = parseOperators(await resolveVariable("param:signingKeyOperators, ''"));
  return {
    names: tableNames(stage),
    signingKeyParameter: signingKeyParameter(stage),
    resources: {
      ...tableResources(stage),
      ...roleResources(service, stage),
      ...signingKeyResources(stage, KEY_READERS.map(roleName), operators),
    },
  };
};
