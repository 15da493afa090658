import { app } from '../lib/app.js';
import { bearerOrMfaToken, bodyText, httpHandler, ok, requestInfo } from '../lib/http/http.js';
import { mfaService } from '../lib/mfa/mfa-service.js';
import { MAX_PASSWORD_INPUT_LENGTH, optionalString, parseJsonObject } from '../lib/http/validation.js';

const { config } = app();
const service = mfaService(app());

/**
 * POST /v1/auth/mfa/totp/setup (Bearer with {current_password}, or without it for a user without a
 * password fresh from single sign-on; or {mfa_token} of a sign-in that must enrol) -> a new TOTP
 * secret, pending until activated.
 */
export const handler = httpHandler(async (event, context) => {
  const { auth, body } = bearerOrMfaToken(event, () => parseJsonObject(bodyText(event), { allowEmpty: true }));
  const proven = 'accessToken' in auth ? { ...auth, currentPassword: optionalString(body, 'current_password', MAX_PASSWORD_INPUT_LENGTH) } : auth;
  return ok(await service.setup(proven, requestInfo(event, context)));
}, config);
