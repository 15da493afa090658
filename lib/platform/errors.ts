/**
 * Every error the API can answer, in one table: stable snake_case codes that clients may
 * branch on, the HTTP status, and the message sent. The cause of an error is logged, never sent.
 */
export const ERRORS = {
  invalid_request: { status: 400, message: 'The request is malformed.' },
  weak_password: { status: 400, message: 'The new password does not meet the password policy.' },
  invalid_redirect_uri: { status: 400, message: 'The redirect_uri is not one this API may send a sign-in to.' },
  invalid_grant: { status: 400, message: 'The code is invalid, expired or already used, or the code_verifier does not match it.' },
  sso_required: { status: 401, message: 'This email domain signs in with its company identity provider (GET /v1/auth/sso/authorize).' },
  invalid_credentials: { status: 401, message: 'Invalid email or password.' },
  invalid_token: { status: 401, message: 'The access token is missing, invalid or revoked.' },
  token_expired: { status: 401, message: 'The access token has expired.' },
  invalid_refresh_token: { status: 401, message: 'The refresh token is invalid, expired or revoked.' },
  refresh_token_reused: { status: 401, message: 'The refresh token was already used; the session has been ended. Sign in again.' },
  mfa_required: { status: 401, message: 'The password is right; a code from the authenticator app (or a recovery code) is required to finish signing in.' },
  mfa_enrollment_required: { status: 401, message: 'Two-factor sign-in is required for this account: set up an authenticator app to finish signing in.' },
  invalid_mfa_code: { status: 401, message: 'The code is wrong, expired or already used.' },
  invalid_mfa_token: { status: 401, message: 'The MFA token is invalid, expired or used up. Sign in again.' },
  https_required: { status: 403, message: 'HTTPS is required.' },
  mfa_required_by_policy: { status: 403, message: 'Two-factor sign-in is required for this account and cannot be turned off.' },
  otp_session_required: { status: 403, message: 'This needs a session signed in with a second factor. Sign in again with your authenticator code.' },
  session_required: { status: 403, message: 'This needs a session\'s access token; an API key cannot mint or manage credentials.' },
  not_found: { status: 404, message: 'No such endpoint.' },
  session_not_found: { status: 404, message: 'No such session.' },
  sso_not_configured: { status: 404, message: 'No single sign-on is configured for this email domain.' },
  api_key_not_found: { status: 404, message: 'No such API key.' },
  api_key_limit: { status: 409, message: 'This account has as many live API keys as it may have. Revoke one first.' },
  mfa_already_enabled: { status: 409, message: 'Two-factor sign-in is already on for this account.' },
  mfa_not_enabled: { status: 409, message: 'Two-factor sign-in is not on for this account.' },
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
    /** Fields of the body besides `success` and `error` (an `mfa_token` with its challenge). */
    readonly fields: Record<string, string | number> = {},
    /** Another status than the table's, for a code that two endpoints answer differently (sso_required: 401 at sign-in, 403 for a password change). */
    status?: number,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status ?? ERRORS[code].status;
  }

  toBody() {
    return { success: false as const, error: { code: this.code, message: this.message }, ...this.fields };
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
