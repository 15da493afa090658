import { app } from '../lib/app.js';
import { apiKeyService } from '../lib/auth/api-key-service.js';
import { httpHandler, ok, requestInfo, sessionBearerToken } from '../lib/http/http.js';

const { config } = app();
const service = apiKeyService(app());

/** GET /v1/auth/api-keys (a session's Bearer) -> the caller's live API keys, newest first (never a key itself). */
export const handler = httpHandler(async (event, context) => {
  return ok({ api_keys: await service.list(sessionBearerToken(event), requestInfo(event, context)) });
}, config);
