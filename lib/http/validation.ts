import { normalizeRecoveryCode } from '../mfa/recovery-codes.js';
import { ApiError } from '../platform/errors.js';
import { ROLES, type Role } from '../platform/config.js';

/** Request bodies are small objects; anything larger is rejected before parsing. */
export const MAX_BODY_BYTES = 64 * 1024;
export const MAX_EMAIL_LENGTH = 254;
const MAX_EMAIL_INPUT_LENGTH = 320;
/** Over 72 bytes a password is refused as invalid credentials; this bound only caps the work. */
export const MAX_PASSWORD_INPUT_LENGTH = 1024;
export const MAX_REFRESH_TOKEN_INPUT_LENGTH = 512;
export const MAX_MFA_TOKEN_INPUT_LENGTH = 512;

// Deliberately plain: one @, no spaces or control characters, a dot in the domain.
const EMAIL_PATTERN = /^[^\s@\x00-\x1f\x7f]+@[^\s@\x00-\x1f\x7f]+\.[^\s@\x00-\x1f\x7f]+$/;

export type JsonObject = Record<string, unknown>;

function invalid(message: string): ApiError {
  return new ApiError('invalid_request', message);
}

/** Parse a request body that must be a JSON object. Empty counts as `{}` only when allowed. */
export function parseJsonObject(raw: string | undefined, { allowEmpty = false } = {}): JsonObject {
  if (raw === undefined || raw.trim() === '') {
    if (allowEmpty) return {};
    throw invalid('The request body must be a JSON object.');
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw invalid('The request body is not valid JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('The request body must be a JSON object.');
  }
  return value as JsonObject;
}

export function requiredString(body: JsonObject, field: string, maxLength: number): string {
  const value = body[field];
  if (value === undefined || value === null) throw invalid(`The field "${field}" is required.`);
  if (typeof value !== 'string') throw invalid(`The field "${field}" must be a string.`);
  if (value.length === 0) throw invalid(`The field "${field}" must not be empty.`);
  if (value.length > maxLength) throw invalid(`The field "${field}" must be at most ${maxLength} characters.`);
  return value;
}

/**
 * An optional field that, when present, must be a string, any string: what it holds is judged
 * later, quietly (a device token that is malformed is treated as absent, never as an error).
 */
export function optionalAnyString(body: JsonObject, field: string): string | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`The field "${field}" must be a string.`);
  return value;
}

export function optionalString(body: JsonObject, field: string, maxLength: number): string | undefined {
  return body[field] === undefined ? undefined : requiredString(body, field, maxLength);
}

export function isEmail(value: string): boolean {
  return value.length <= MAX_EMAIL_LENGTH && EMAIL_PATTERN.test(value);
}

export function requiredEmail(body: JsonObject, field: string): string {
  // Surrounding white space is forgiven (trimmed), but counts toward the raw limit.
  const value = requiredString(body, field, MAX_EMAIL_INPUT_LENGTH).trim();
  if (!isEmail(value)) throw invalid(`The field "${field}" must be an email address.`);
  return value;
}

/** A TOTP code: six digits, spaces forgiven (apps show `123 456`); 400 for anything else. */
export function requiredTotpCode(body: JsonObject, field = 'code'): string {
  const code = requiredString(body, field, 64).replace(/\s/g, '');
  if (!/^\d{6}$/.test(code)) throw invalid(`The field "${field}" must be the 6-digit code of the authenticator app.`);
  return code;
}

/** A recovery code as typed: checked for its shape here (400), matched later. */
export function requiredRecoveryCode(body: JsonObject, field = 'recovery_code'): string {
  const code = requiredString(body, field, 64);
  if (normalizeRecoveryCode(code) === undefined) throw invalid(`The field "${field}" must be a recovery code such as "abcd-efgh-jkmn".`);
  return code;
}

/** The second step of a sign-in: exactly one of `code` and `recovery_code`. */
export function secondFactorOf(body: JsonObject): { code: string } | { recoveryCode: string } {
  const hasCode = body.code !== undefined;
  if (hasCode === (body.recovery_code !== undefined)) throw invalid('Send exactly one of "code" and "recovery_code".');
  return hasCode ? { code: requiredTotpCode(body) } : { recoveryCode: requiredRecoveryCode(body) };
}

export const MAX_API_KEY_NAME_LENGTH = 64;

/** POST /api-keys: `name` (1–64 characters), `expires_in_days` (an integer 1–365, default 90), `role`? (`admin` or `user`). */
export function apiKeyRequestOf(body: JsonObject): { name: string; expiresInDays: number; role: Role | undefined } {
  const name = requiredString(body, 'name', MAX_API_KEY_NAME_LENGTH);
  const days = body.expires_in_days;
  if (days !== undefined && (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > 365)) {
    throw invalid('The field "expires_in_days" must be a whole number of days from 1 to 365.');
  }
  const role = body.role;
  if (role !== undefined && !(ROLES as readonly unknown[]).includes(role)) throw invalid(`The field "role" must be one of ${ROLES.map((r) => `"${r}"`).join(', ')}.`);
  return { name, expiresInDays: (days as number | undefined) ?? 90, role: role as Role | undefined };
}

/** A PKCE code verifier or S256 challenge (RFC 7636: 43–128 unreserved characters; an S256 challenge is 43). */
const PKCE_PATTERN = /^[A-Za-z0-9\-._~]{43,128}$/;
const DOMAIN_PATTERN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const MAX_STATE_LENGTH = 512;
const MAX_REDIRECT_URI_LENGTH = 2048;

export function isDomain(value: string): boolean {
  return DOMAIN_PATTERN.test(value);
}

/** The query of a GET, each parameter once (a repeated one is malformed). */
export function queryOf(event: { rawQueryString?: string }): Map<string, string> {
  const params = new URLSearchParams(event.rawQueryString ?? '');
  const query = new Map<string, string>();
  for (const [name, value] of params) {
    if (query.has(name)) throw invalid(`The parameter "${name}" is given more than once.`);
    query.set(name, value);
  }
  return query;
}

function requiredParam(query: Map<string, string>, name: string, maxLength: number): string {
  const value = query.get(name);
  if (value === undefined || value === '') throw invalid(`The parameter "${name}" is required.`);
  if (value.length > maxLength) throw invalid(`The parameter "${name}" must be at most ${maxLength} characters.`);
  return value;
}

/** GET /v1/auth/sso/authorize: `email` or `domain`, `redirect_uri`, `state`, an S256 `code_challenge`. */
export function ssoAuthorizeRequestOf(query: Map<string, string>): { email: string | undefined; domain: string; redirectUri: string; state: string; codeChallenge: string } {
  const rawEmail = query.get('email');
  const rawDomain = query.get('domain');
  if ((rawEmail === undefined) === (rawDomain === undefined)) throw invalid('Give exactly one of "email" and "domain".');
  let email: string | undefined;
  let domain: string;
  if (rawEmail !== undefined) {
    email = rawEmail.trim().toLowerCase();
    if (!isEmail(email)) throw invalid('The parameter "email" must be an email address.');
    domain = email.slice(email.lastIndexOf('@') + 1);
  } else {
    domain = rawDomain!.trim().toLowerCase();
  }
  if (!isDomain(domain)) throw invalid('The domain is not a domain name.');
  const redirectUri = requiredParam(query, 'redirect_uri', MAX_REDIRECT_URI_LENGTH);
  const state = requiredParam(query, 'state', MAX_STATE_LENGTH);
  const codeChallenge = requiredParam(query, 'code_challenge', 128);
  if (codeChallenge.length !== 43 || !PKCE_PATTERN.test(codeChallenge)) throw invalid('The parameter "code_challenge" must be an S256 challenge (43 base64url characters).');
  if (query.get('code_challenge_method') !== 'S256') throw invalid('The parameter "code_challenge_method" must be S256.');
  return { email, domain, redirectUri, state, codeChallenge };
}

/** GET /v1/auth/sso/callback: our `state` (the rest is read by openid-client from the raw query). */
export function ssoCallbackRequestOf(event: { rawQueryString?: string }): { state: string; query: string; error: string | undefined } {
  const query = queryOf(event);
  const state = requiredParam(query, 'state', MAX_STATE_LENGTH);
  return { state, query: event.rawQueryString ?? '', error: query.get('error') };
}

/** POST /v1/auth/sso/token: `{"code", "code_verifier"}`. A verifier of the wrong shape can match no challenge: invalid_grant. */
export function ssoTokenRequestOf(body: JsonObject): { code: string; verifier: string } {
  const code = requiredString(body, 'code', 512);
  const verifier = requiredString(body, 'code_verifier', 512);
  if (!PKCE_PATTERN.test(verifier)) throw new ApiError('invalid_grant');
  return { code, verifier };
}
