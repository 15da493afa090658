import { Secret, TOTP } from 'otpauth';

/**
 * Time-based one-time passwords (RFC 6238) as authenticator apps compute them: HMAC-SHA1, 6 digits,
 * 30-second steps. The arithmetic is otpauth's (a maintained library, checked against the RFC's
 * appendix B vectors in tests/unit/totp.test.ts); what is ours is the format of what we hand out,
 * the window we accept and the steps we remember.
 */
export const TOTP_ISSUER = 'VPN Enterprise';
export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_SECONDS = 30;
/** Steps either side of now that are accepted: clocks drift and people type slowly. */
export const TOTP_WINDOW_STEPS = 1;
/** 160 random bits, RFC 4226's recommended secret length. */
const SECRET_BYTES = 20;

/** A new secret: 160 random bits in RFC 4648 base32, without padding (32 characters). */
export function newTotpSecret(): string {
  return new Secret({ size: SECRET_BYTES }).base32.replace(/=+$/, '');
}

/**
 * The otpauth:// URL an authenticator app scans (Google's Key URI format, every parameter spelt
 * out). The label keeps the email as it is written ('@' and '+' are legal in a URI path, and Google's
 * own example leaves '@' as it is); anything that could end or split it ('?', '#', '/', '%', ':',
 * spaces, non-ASCII) is percent-encoded.
 */
export function otpauthUrl(email: string, secret: string): string {
  const issuer = encodeURIComponent(TOTP_ISSUER);
  const account = encodeURIComponent(email).replace(/%40/g, '@').replace(/%2B/g, '+');
  return `otpauth://totp/${issuer}:${account}?secret=${secret}&issuer=${issuer}&algorithm=SHA1&digits=${TOTP_DIGITS}&period=${TOTP_PERIOD_SECONDS}`;
}

/** The 30-second step `at` falls in (RFC 6238's T). */
export function totpStep(at: Date): number {
  return Math.floor(at.getTime() / 1000 / TOTP_PERIOD_SECONDS);
}

/**
 * The step whose code `code` is, among now and one step either side; undefined for anything else
 * (not six digits, wrong, too old). otpauth compares in constant time; the shape is checked first,
 * so that no odd input reaches it. Whether that step was already used is the caller's to check.
 */
export function matchTotp(secret: string, code: string, at: Date): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const delta = TOTP.validate({
    token: code,
    secret: Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    timestamp: at.getTime(),
    window: TOTP_WINDOW_STEPS,
  });
  return delta === null ? undefined : totpStep(at) + delta;
}

/** The code of a secret at a moment (what an authenticator app shows then): for tests and tools. */
export function totpCode(secret: string, at: Date): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS, timestamp: at.getTime() });
}
