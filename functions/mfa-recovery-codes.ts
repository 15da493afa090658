import { app } from '../lib/app.js';
import { sessionBearerToken, bodyText, httpHandler, ok, requestInfo } from '../lib/http/http.js';
import { mfaService } from '../lib/mfa/mfa-service.js';
import { parseJsonObject, requiredTotpCode } from '../lib/http/validation.js';

const { config } = app();
const service = mfaService(app());

/** POST /v1/auth/mfa/recovery-codes (Bearer, a session signed in with otp) {code} -> 10 new recovery codes; the old ones die. */
export const handler = httpHandler(async (event, context) => {
  const token = sessionBearerToken(event);
  const code = requiredTotpCode(parseJsonObject(bodyText(event)));
  return ok(await service.replaceRecoveryCodes(token, code, requestInfo(event, context)));
}, config);
