import { app } from '../lib/app.js';
import { apiKeyService } from '../lib/auth/api-key-service.js';
import { httpHandler, ok, requestInfo, sessionBearerToken } from '../lib/http/http.js';

const { config } = app();
const service = apiKeyService(app());

/** DELETE /v1/auth/api-keys/{id} (a session's Bearer) -> that key of the caller's is refused from its next use. */
export const handler = httpHandler(async (event, context) => {
  const token = sessionBearerToken(event);
  await service.revoke(token, event.pathParameters?.id ?? '', requestInfo(event, context));
  return ok({});
  // A DELETE carries nothing in its body: whatever is sent there is ignored, as by API Gateway (no 415).
}, config, { readsBody: false });
