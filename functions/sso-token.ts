import { app } from '../lib/app.js';
import { bodyText, httpHandler, ok, requestInfo } from '../lib/http/http.js';
import { parseJsonObject, ssoTokenRequestOf } from '../lib/http/validation.js';
import { ssoService } from '../lib/auth/sso-service.js';

const { config } = app();
const service = ssoService(app());

/** POST /v1/auth/sso/token {code, code_verifier} -> exactly the answer of POST /v1/auth/login. */
export const handler = httpHandler(async (event, context) => {
  const { code, verifier } = ssoTokenRequestOf(parseJsonObject(bodyText(event)));
  return ok(await service.token(code, verifier, requestInfo(event, context)));
}, config);
