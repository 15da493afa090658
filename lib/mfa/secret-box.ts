import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { SigningKeys } from '../platform/config.js';

/**
 * What protects second factors at rest: TOTP secrets sealed with AES-256-GCM, recovery codes kept
 * as HMACs, both under the MFA key ring, a ring of its own (never a JWT signing key: retiring a
 * signing key must not lock anyone out of their second factor). The ring has the signing ring's
 * shape, `{"kid": "secret", ...}`, first one current; each purpose uses its own key derived from
 * the ring's secret with HKDF, so one secret never serves two algorithms. A dump of the tables
 * holds ciphertexts and HMACs only.
 */
export type MfaKeys = SigningKeys;

const SEALED_VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** What a derived key is for: one key per purpose (the HKDF info label says which). `sso-client-secret`: an SSO connection's client secret (lib/auth/sso-secrets.ts). */
export type SealPurpose = 'totp-secret' | 'sso-client-secret';

function derivedKey(keys: MfaKeys, kid: string, purpose: SealPurpose | 'recovery-code'): Buffer | undefined {
  const secret = keys.keys.get(kid);
  return secret ? Buffer.from(hkdfSync('sha256', secret, new Uint8Array(0), `vpn-auth mfa ${purpose}`, 32)) : undefined;
}

/**
 * `plaintext` sealed under the ring's current key, bound to `context` (the user id: a sealed secret
 * copied onto another user's item does not open there). `v1.<kid>.<iv>.<ciphertext ‖ tag>`, base64url.
 */
export function seal(keys: MfaKeys, plaintext: string, context: string, purpose: SealPurpose = 'totp-secret'): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', derivedKey(keys, keys.currentKid, purpose)!, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return [SEALED_VERSION, keys.currentKid, iv.toString('base64url'), body.toString('base64url')].join('.');
}

/** What `seal` sealed, or undefined: malformed, a key the ring no longer holds, another context, tampered. */
export function open(keys: MfaKeys, sealed: string, context: string, purpose: SealPurpose = 'totp-secret'): string | undefined {
  const [version, kid, iv, body, ...rest] = sealed.split('.');
  if (version !== SEALED_VERSION || kid === undefined || iv === undefined || body === undefined || rest.length > 0) return undefined;
  const key = derivedKey(keys, kid, purpose);
  const ivBytes = Buffer.from(iv, 'base64url');
  const bodyBytes = Buffer.from(body, 'base64url');
  if (!key || ivBytes.length !== IV_BYTES || bodyBytes.length <= TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, ivBytes);
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(bodyBytes.subarray(bodyBytes.length - TAG_BYTES));
    return Buffer.concat([decipher.update(bodyBytes.subarray(0, bodyBytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/** The kid a sealed value was sealed under (to re-seal it under the current key after a rotation). */
export function sealedKid(sealed: string): string | undefined {
  return sealed.split('.')[1];
}

/** The HMAC a recovery code is kept as (under the ring's key `kid`), base64url; undefined if the ring lacks it. */
export function recoveryCodeMac(keys: MfaKeys, kid: string, normalizedCode: string): string | undefined {
  const key = derivedKey(keys, kid, 'recovery-code');
  return key && createHmac('sha256', key).update(normalizedCode).digest('base64url');
}
