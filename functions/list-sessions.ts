import { app } from '../lib/app.js';
import { sessionBearerToken, httpHandler, ok, requestInfo } from '../lib/http/http.js';

const { auth, config } = app();

/** GET /v1/auth/sessions (Bearer) -> the caller's live sessions, newest first, at most 100. */
export const handler = httpHandler(async (event, context) => {
  return ok({ sessions: await auth.listSessions(sessionBearerToken(event), requestInfo(event, context)) });
}, config);
