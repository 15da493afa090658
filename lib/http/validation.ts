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
