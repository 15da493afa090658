import { app } from '../lib/app.js';
import { sessionBearerToken, httpHandler, ok, requestInfo } from '../lib/http/http.js';

const { auth, config } = app();

/** DELETE /v1/auth/sessions/{id} (Bearer) -> that session of the caller's ends at once. */
export const handler = httpHandler(async (event, context) => {
  const token = sessionBearerToken(event);
  await auth.endSession(token, event.pathParameters?.id ?? '', requestInfo(event, context));
  return ok({});
  // A DELETE carries nothing in its body: whatever is sent there is ignored, as by API Gateway (no 415).
}, config, { readsBody: false });
