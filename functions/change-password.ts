import { app } from '../lib/app.js';
import { passwordService } from '../lib/auth/password-service.js';
import { sessionBearerToken, bodyText, httpHandler, ok, requestInfo } from '../lib/http/http.js';
import { MAX_PASSWORD_INPUT_LENGTH, parseJsonObject, requiredString } from '../lib/http/validation.js';

const { config } = app();
const service = passwordService(app());

/** POST /v1/auth/password (Bearer) {current_password, new_password} -> a new session (the login answer); every other session ends. */
export const handler = httpHandler(async (event, context) => {
  const token = sessionBearerToken(event);
  const body = parseJsonObject(bodyText(event));
  const currentPassword = requiredString(body, 'current_password', MAX_PASSWORD_INPUT_LENGTH);
  const newPassword = requiredString(body, 'new_password', MAX_PASSWORD_INPUT_LENGTH);
  return ok(await service.changePassword(token, currentPassword, newPassword, requestInfo(event, context)));
}, config);
