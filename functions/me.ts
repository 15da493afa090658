import { app } from '../lib/app.js';
import { bearerToken, httpHandler, ok } from '../lib/http/http.js';

const { auth, config } = app();

/** GET /v1/auth/me (Bearer) -> the signed-in user as stored now. */
export const handler = httpHandler(async (event) => {
  return ok({ user: await auth.me(bearerToken(event)) });
}, config, { storeDeadline: 'fast' });
