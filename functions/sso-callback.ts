import { app } from '../lib/app.js';
import { httpHandler, redirect, requestInfo } from '../lib/http/http.js';
import { ssoCallbackRequestOf } from '../lib/http/validation.js';
import { ssoService } from '../lib/auth/sso-service.js';

const { config } = app();
const service = ssoService(app());

/** GET /v1/auth/sso/callback?code&state[&iss] (or error) -> 302 to the client's redirect URI with a one-time code, or an error. */
export const handler = httpHandler(async (event, context) => {
  return redirect(await service.callback(ssoCallbackRequestOf(event), requestInfo(event, context)));
}, config, { readsBody: false });
