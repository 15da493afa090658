import { ApiError } from '../lib/platform/errors.js';
import { sessionBearerToken, bodyText, httpHandler, ok, requestInfo } from '../lib/http/http.js';
import { app } from '../lib/app.js';
import { optionalString, parseJsonObject } from '../lib/http/validation.js';

const { auth, config } = app();

/** POST /v1/auth/logout (Bearer) {scope?: "local" | "global"} -> ends this session, or all of the user's. */
export const handler = httpHandler(async (event, context) => {
  const token = sessionBearerToken(event);
  const body = parseJsonObject(bodyText(event), { allowEmpty: true });
  const scope = optionalString(body, 'scope', 16) ?? 'local';
  if (scope !== 'local' && scope !== 'global') throw new ApiError('invalid_request', 'The field "scope" must be "local" or "global".');
  await auth.logout(token, scope, requestInfo(event, context));
  return ok({});
}, config);
