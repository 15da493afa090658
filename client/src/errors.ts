import type { components } from './generated/openapi.js';

/** The server's error codes, as openapi.yaml lists them. */
export type ServerErrorCode = components['schemas']['Error']['error']['code'];

/**
 * The codes an AuthError can carry: the server's, and the client's own:
 * `not_signed_in` (no session to act with), `network_error` (no answer: status 0),
 * `unexpected_response` (an answer that is not the API's JSON), `storage_error` (the storage adapter
 * failed: status 0), `node_only` (fileStorage in a browser), and for sso.complete(): `access_denied`
 * (the redirect URI's `error`, OAuth style: the IdP or the API refused the sign-in) and
 * `invalid_state` (a callback whose state is not the flow's this storage keeps: status 0).
 */
export type AuthErrorCode =
  | ServerErrorCode
  | 'not_signed_in'
  | 'network_error'
  | 'unexpected_response'
  | 'storage_error'
  | 'node_only'
  | 'access_denied'
  | 'invalid_state';

/** Every failure of the client: the HTTP status (0 without an answer), the code, the server's message. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  /** Seconds to wait before trying again, when the server sent Retry-After (429, 503). */
  readonly retryAfter?: number;

  constructor(
    readonly status: number,
    readonly code: AuthErrorCode,
    message: string,
    retryAfter?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    if (retryAfter !== undefined) this.retryAfter = retryAfter;
  }
}

export const notSignedIn = () => new AuthError(401, 'not_signed_in', 'Not signed in.');

/** A storage adapter's failure (quota, disk, permission, a lock that stayed taken), as an AuthError. */
export const storageError = (cause: unknown): AuthError =>
  cause instanceof AuthError
    ? cause
    : new AuthError(0, 'storage_error', `The session storage failed: ${cause instanceof Error ? cause.message : String(cause)}`, undefined, { cause });
