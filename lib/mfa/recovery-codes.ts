import { randomInt } from 'node:crypto';
import { digestsEqual } from '../platform/ids.js';
import { recoveryCodeMac, type MfaKeys } from './secret-box.js';

/**
 * Recovery codes: ten single-use codes shown once, for when the authenticator is lost. Each is 12
 * characters of Crockford's base32 alphabet (no i, l, o or u: nothing to mistake for 1 or 0), 60
 * random bits, shown as `xxxx-xxxx-xxxx`; typed back in any case, with or without dashes or spaces.
 * Kept only as HMACs under the MFA ring.
 */
export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const LENGTH = 12;

/** Ten new codes, as shown to the user. */
export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const characters = Array.from({ length: LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
    return `${characters.slice(0, 4)}-${characters.slice(4, 8)}-${characters.slice(8)}`;
  });
}

/** A code as typed, in its one canonical form; undefined for anything that cannot be one. */
export function normalizeRecoveryCode(typed: string): string | undefined {
  const compact = typed.toLowerCase().replace(/[\s-]/g, '');
  return compact.length === LENGTH && [...compact].every((character) => ALPHABET.includes(character)) ? compact : undefined;
}

/** What is stored for a set of codes: the kid of the key their MACs are under, and the MACs. */
export interface StoredRecoveryCodes {
  kid: string;
  macs: string[];
}

export function storedRecoveryCodes(keys: MfaKeys, codes: string[]): StoredRecoveryCodes {
  return { kid: keys.currentKid, macs: codes.map((code) => recoveryCodeMac(keys, keys.currentKid, normalizeRecoveryCode(code)!)!) };
}

/** Which stored MAC a typed code matches (every one compared, in constant time), or undefined. */
export function matchRecoveryCode(keys: MfaKeys, stored: StoredRecoveryCodes, typed: string): string | undefined {
  const code = normalizeRecoveryCode(typed);
  const mac = code === undefined ? undefined : recoveryCodeMac(keys, stored.kid, code);
  let match: string | undefined;
  for (const candidate of stored.macs) if (mac !== undefined && digestsEqual(candidate, mac)) match = candidate;
  return match;
}
