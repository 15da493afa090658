import { app } from '../lib/app.js';
import { bearerOrMfaToken, bodyText, httpHandler, ok, requestInfo } from '../lib/http/http.js';
import { mfaService } from '../lib/mfa/mfa-service.js';
import { parseJsonObject } from '../lib/http/validation.js';

const { config } = app();
const service = mfaService(app());

/** POST /v1/auth/mfa/totp/setup (Bearer, or {mfa_token} of a sign-in that must enrol) -> a new TOTP secret, pending until activated. */
export const handler = httpHandler(async (event, context) => {
  const body = parseJsonObject(bodyText(event), { allowEmpty: true });
  return ok(await service.setup(bearerOrMfaToken(event, body), requestInfo(event, context)));
}, config);
