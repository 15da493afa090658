import { app } from '../lib/app.js';
import { bearerToken, httpHandler, ok, requestInfo } from '../lib/http/http.js';
import { mfaService } from '../lib/mfa/mfa-service.js';

const { config } = app();
const service = mfaService(app());

/** POST /v1/auth/mfa/recovery-codes (Bearer, a session signed in with otp) -> 10 new recovery codes; the old ones die. */
export const handler = httpHandler(async (event, context) => {
  return ok(await service.replaceRecoveryCodes(bearerToken(event), requestInfo(event, context)));
  // Nothing is read from the body: whatever is sent there is ignored.
}, config, { readsBody: false });
