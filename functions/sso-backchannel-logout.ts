import { app } from '../lib/app.js';
import { formBody, httpHandler, ok, requestInfo } from '../lib/http/http.js';
import { ssoService } from '../lib/auth/sso-service.js';
import { ApiError } from '../lib/platform/errors.js';

const { config } = app();
const service = ssoService(app());

/** POST /v1/auth/sso/backchannel-logout, form-encoded `logout_token` (the one endpoint that takes no JSON) -> 200, or 400. */
export const handler = httpHandler(async (event, context) => {
  const token = formBody(event).get('logout_token');
  if (!token) throw new ApiError('invalid_request', 'The form field "logout_token" is required.');
  await service.backchannelLogout(token, requestInfo(event, context));
  return ok({});
}, config, { readsBody: false });
