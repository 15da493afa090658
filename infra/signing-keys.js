'use strict';
// The SSM SecureString parameter that holds a stage's JWT signing keys: read by the Lambdas
// (JWT_SECRET_PARAMETER), granted in infra/iam.js, written by `npm run keys -- ... --aws`.
const { SERVICE } = require('./tables.js');

/** `/vpn-auth/<stage>/jwt-signing-keys` */
function signingKeyParameter(stage) {
  return `/${SERVICE}/${stage}/jwt-signing-keys`;
}

module.exports = { signingKeyParameter };
