import { app } from '../lib/app.js';
import { sessionBearerToken, bodyText, httpHandler, ok, requestInfo } from '../lib/http/http.js';
import { mfaService } from '../lib/mfa/mfa-service.js';
import { parseJsonObject, requiredTotpCode } from '../lib/http/validation.js';

const { config } = app();
const service = mfaService(app());

/** DELETE /v1/auth/mfa/totp (Bearer) {code} -> TOTP and recovery codes removed (403 when the user's role requires them). */
export const handler = httpHandler(async (event, context) => {
  const token = sessionBearerToken(event);
  const code = requiredTotpCode(parseJsonObject(bodyText(event)));
  await service.turnOff(token, code, requestInfo(event, context));
  return ok({});
}, config);
