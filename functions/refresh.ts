import { app } from '../lib/app.js';
import { bodyText, httpHandler, ok, requestInfo } from '../lib/http/http.js';
import { MAX_REFRESH_TOKEN_INPUT_LENGTH, parseJsonObject, requiredString } from '../lib/http/validation.js';

const { auth, config } = app();

/** POST /v1/auth/refresh {refresh_token} -> a new pair for the same session; the old refresh token is spent. */
export const handler = httpHandler(async (event, context) => {
  const body = parseJsonObject(bodyText(event));
  const refreshToken = requiredString(body, 'refresh_token', MAX_REFRESH_TOKEN_INPUT_LENGTH);
  return ok(await auth.refresh(refreshToken, requestInfo(event, context)));
}, config, { storeDeadline: 'fast' });
