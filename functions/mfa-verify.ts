import { app } from '../lib/app.js';
import { bodyText, httpHandler, ok, requestInfo } from '../lib/http/http.js';
import { mfaService } from '../lib/mfa/mfa-service.js';
import { MAX_MFA_TOKEN_INPUT_LENGTH, parseJsonObject, requiredString, secondFactorOf } from '../lib/http/validation.js';

const { config } = app();
const service = mfaService(app());

/** POST /v1/auth/mfa/verify {mfa_token, code | recovery_code} -> the login answer, signed in with pwd + otp. */
export const handler = httpHandler(async (event, context) => {
  const body = parseJsonObject(bodyText(event));
  const mfaToken = requiredString(body, 'mfa_token', MAX_MFA_TOKEN_INPUT_LENGTH);
  return ok(await service.verify(mfaToken, secondFactorOf(body), requestInfo(event, context)));
}, config);
