'use strict';
// Everything serverless.yml deploys besides the functions: tables (infra/tables.js, also what
// the local stack creates) and one least-privilege role per function (infra/iam.js).
const { tableNames, tableResources } = require('./tables.js');
const { roleResources } = require('./iam.js');
const { signingKeyParameter } = require('./signing-keys.js');

module.exports = async ({ resolveVariable }) => {
  const stage = await resolveVariable('sls:stage');
  const service = await resolveVariable('self:service');
  return { names: tableNames(stage), signingKeyParameter: signingKeyParameter(stage), resources: { ...tableResources(stage), ...roleResources(service, stage) } };
};
