import { app } from '../lib/app.js';
import { bodyText, httpHandler, ok, requestInfo } from '../lib/http/http.js';
import { loginService } from '../lib/auth/login-service.js';
import { MAX_PASSWORD_INPUT_LENGTH, optionalAnyString, parseJsonObject, requiredEmail, requiredString } from '../lib/http/validation.js';

const { config } = app();
const service = loginService(app());

/** POST /v1/auth/login {email, password, device_token?} -> access token + refresh token + device token. */
export const handler = httpHandler(async (event, context) => {
  const body = parseJsonObject(bodyText(event));
  const email = requiredEmail(body, 'email');
  const password = requiredString(body, 'password', MAX_PASSWORD_INPUT_LENGTH);
  const deviceToken = optionalAnyString(body, 'device_token');
  return ok(await service.login(email, password, requestInfo(event, context), deviceToken));
}, config);
