import { httpHandler, ok } from '../../lib/http/http.js';

/**
 * A sample route of "another API" behind the shared authorizer: it trusts what the authorizer
 * put in the request context (user id, current or effective role, how the caller authenticated:
 * a session, with its id and how it was signed in, or an API key, with its id) and reads no token itself.
 */
export const handler = httpHandler(async (event) => {
  const context = (event.requestContext as unknown as { authorizer?: { lambda?: Record<string, string> } }).authorizer?.lambda ?? {};
  const { userId, sub, sid, role, amr, authMethod, apiKeyId } = context;
  return ok({ caller: { userId, sub, sid, role, amr, authMethod, apiKeyId } });
});
