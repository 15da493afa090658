import { loadHttpPolicy } from '../lib/platform/config.js';
import { ApiError } from '../lib/platform/errors.js';
import { httpHandler } from '../lib/http/http.js';

/** Only the HTTP policy: this function needs no keys and no tables. */
const policy = loadHttpPolicy();

/** The HTTP API's $default route: any path or method no other route takes is 404 in our error shape. */
export const handler = httpHandler(
  async () => {
    throw new ApiError('not_found');
  },
  policy,
  { readsBody: false },
);
