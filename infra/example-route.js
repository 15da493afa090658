'use strict';
// The sample route of "another API" behind the shared authorizer: in every stage but production
// (a function whose configuration resolves to null is not deployed: serverless.yml falls back to null).
const { isProductionStage } = require('./tables.js');

module.exports = async ({ resolveVariable }) => {
  const stage = await resolveVariable('sls:stage');
  if (isProductionStage(stage)) return null;
  return {
    handler: 'functions/examples/protected.handler',
    role: 'ExampleProtectedRole',
    events: [{ httpApi: { method: 'GET', path: '/v1/example/protected', authorizer: { name: 'vpnAuth' } } }],
  };
};
