import { app } from '../lib/app.js';
import { bearerOrMfaToken, bodyText, httpHandler, ok, requestInfo } from '../lib/http/http.js';
import { mfaService } from '../lib/mfa/mfa-service.js';
import { parseJsonObject, requiredTotpCode } from '../lib/http/validation.js';

const { config } = app();
const service = mfaService(app());

/** POST /v1/auth/mfa/totp/activate {code} (Bearer, or + mfa_token) -> recovery codes (+ the login answer with mfa_token); every other session ends. */
export const handler = httpHandler(async (event, context) => {
  const { auth, body } = bearerOrMfaToken(event, () => parseJsonObject(bodyText(event)));
  return ok(await service.activate(auth, requiredTotpCode(body), requestInfo(event, context)));
}, config);
