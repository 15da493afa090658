/**
 * Every error the API can answer, in one table: stable snake_case codes that clients may
 * branch on, the HTTP status, and the message sent. The cause of an error is logged, never sent.
 */
export const ERRORS = {
  invalid_request: { status: 400, message: 'The request is malformed.' },
  weak_password: { status: 400, message: 'The new password does not meet the password policy.' },
  invalid_credentials: { status: 401, message: 'Invalid email or password.' },
  invalid_token: { status: 401, message: 'The access token is missing, invalid or revoked.' },
  token_expired: { status: 401, message: 'The access token has expired.' },
  invalid_refresh_token: { status: 401, message: 'The refresh token is invalid, expired or revoked.' },
  refresh_token_reused: { status: 401, message: 'The refresh token was already used; the session has been ended. Sign in again.' },
  https_required: { status: 403, message: 'HTTPS is required.' },
  not_found: { status: 404, message: 'No such endpoint.' },
  session_not_found: { status: 404, message: 'No such session.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, message: 'The request body must be sent as application/json.' },
  too_many_attempts: { status: 429, message: 'Too many failed sign-in attempts. Try again later.' },
  internal_error: { status: 500, message: 'An unexpected error occurred.' },
  service_unavailable: { status: 503, message: 'The service is temporarily unavailable. Try again shortly.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with its own status and JSON form; services throw it, one middleware renders it. */
export class ApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].message,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = ERRORS[code].status;
  }

  toBody() {
    return { success: false as const, error: { code: this.code, message: this.message } };
  }
}

/** A refused access token; RFC 6750 asks for a WWW-Authenticate challenge with every 401 of a protected resource. */
export function bearerError(code: 'invalid_token' | 'token_expired', tokenPresented: boolean): ApiError {
  const message = ERRORS[code].message;
  const challenge = tokenPresented
    ? `Bearer realm="vpn-enterprise", error="invalid_token", error_description="${message}"`
    : 'Bearer realm="vpn-enterprise"';
  return new ApiError(code, message, { 'WWW-Authenticate': challenge });
}

/** The persistence layer could not answer (throttled, unreachable); the client may retry. */
export function unavailable(retryAfterSeconds = 1): ApiError {
  return new ApiError('service_unavailable', undefined, { 'Retry-After': String(retryAfterSeconds) });
}
