import { app } from '../lib/app.js';
import { apiKeyService } from '../lib/auth/api-key-service.js';
import { bearerToken, httpHandler, ok, requestInfo } from '../lib/http/http.js';

const { config } = app();
const service = apiKeyService(app());

/** GET /v1/auth/me (Bearer: an access token or an API key) -> the signed-in user as stored now. */
export const handler = httpHandler(async (event, context) => {
  return ok({ user: await service.me(bearerToken(event), requestInfo(event, context)) });
}, config, { storeDeadline: 'fast' });
