import { app } from '../lib/app.js';
import { apiKeyService } from '../lib/auth/api-key-service.js';
import { bodyText, created, httpHandler, requestInfo, sessionBearerToken } from '../lib/http/http.js';
import { apiKeyRequestOf, parseJsonObject } from '../lib/http/validation.js';

const { config } = app();
const service = apiKeyService(app());

/** POST /v1/auth/api-keys (a session's Bearer) {name, expires_in_days?, role?} -> 201, the key shown this once. */
export const handler = httpHandler(async (event, context) => {
  const token = sessionBearerToken(event);
  const request = apiKeyRequestOf(parseJsonObject(bodyText(event)));
  return created(await service.create(token, request, requestInfo(event, context)));
}, config);
