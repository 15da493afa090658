import { app } from '../lib/app.js';
import { httpHandler, redirect, requestInfo } from '../lib/http/http.js';
import { queryOf, ssoAuthorizeRequestOf } from '../lib/http/validation.js';
import { ssoService } from '../lib/auth/sso-service.js';

const { config } = app();
const service = ssoService(app());

/** GET /v1/auth/sso/authorize?email|domain&redirect_uri&state&code_challenge&code_challenge_method=S256 -> 302 to the company's IdP. */
export const handler = httpHandler(async (event, context) => {
  const request = ssoAuthorizeRequestOf(queryOf(event));
  return redirect(await service.authorize(request, requestInfo(event, context)));
}, config, { readsBody: false });
