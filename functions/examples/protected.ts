import { httpHandler, ok } from '../../lib/http/http.js';

/**
 * A sample route of "another API" behind the shared authorizer: it trusts what the authorizer
 * put in the request context (user id, session id, current role, how the session was signed in) and reads no token itself.
 */
export const handler = httpHandler(async (event) => {
  const context = (event.requestContext as unknown as { authorizer?: { lambda?: Record<string, string> } }).authorizer?.lambda ?? {};
  return ok({ caller: { sub: context.sub, sid: context.sid, role: context.role, amr: context.amr } });
});
