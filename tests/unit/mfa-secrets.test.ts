import { describe, expect, it } from 'vitest';
import { parseSigningKeys } from '../../lib/platform/config.js';
import { matchRecoveryCode, newRecoveryCodes, normalizeRecoveryCode, storedRecoveryCodes } from '../../lib/mfa/recovery-codes.js';
import { open, seal, sealedKid } from '../../lib/mfa/secret-box.js';

const ring = (entries: Record<string, string>) => parseSigningKeys(JSON.stringify(entries), 'MFA_KEY');
const OLD = ring({ m1: 'first-mfa-key-'.padEnd(40, 'x') });
const ROTATED = ring({ m2: 'second-mfa-key-'.padEnd(40, 'y'), m1: 'first-mfa-key-'.padEnd(40, 'x') });
const RETIRED = ring({ m2: 'second-mfa-key-'.padEnd(40, 'y') });
const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

describe('sealing TOTP secrets (AES-256-GCM under the MFA ring)', () => {
  it('opens what it sealed, for the same user only, and never shows the secret in the sealed form', () => {
    const sealed = seal(OLD, SECRET, 'usr_A');
    expect(sealed).toMatch(/^v1\.m1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain(SECRET);
    expect(open(OLD, sealed, 'usr_A')).toBe(SECRET);
    expect(open(OLD, sealed, 'usr_B')).toBeUndefined();
    expect(seal(OLD, SECRET, 'usr_A')).not.toBe(sealed); // a fresh IV each time
  });

  it('keeps opening after a rotation while the old key is in the ring; seals with the new one', () => {
    const sealed = seal(OLD, SECRET, 'usr_A');
    expect(open(ROTATED, sealed, 'usr_A')).toBe(SECRET);
    expect(sealedKid(seal(ROTATED, SECRET, 'usr_A'))).toBe('m2');
    expect(open(RETIRED, sealed, 'usr_A')).toBeUndefined();
  });

  it('refuses anything tampered with or malformed', () => {
    const sealed = seal(OLD, SECRET, 'usr_A');
    const [version, kid, iv, body] = sealed.split('.');
    const flipped = Buffer.from(body!, 'base64url');
    flipped[0]! ^= 1;
    for (const bad of [`${version}.${kid}.${iv}.${flipped.toString('base64url')}`, `v2.${kid}.${iv}.${body}`, `${version}.${kid}.${iv}`, `${sealed}.x`, '', 'v1.m1.AAAA.AAAA', `${version}.${kid}.${iv}.AAAA`]) {
      expect(open(OLD, bad, 'usr_A'), bad).toBeUndefined();
    }
  });
});

describe('recovery codes', () => {
  it('makes ten distinct codes of 60 bits, shown as xxxx-xxxx-xxxx', () => {
    const codes = newRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/);
  });

  it('matches a code typed in any case, with or without dashes and spaces, and nothing else', () => {
    const codes = newRecoveryCodes();
    const stored = storedRecoveryCodes(OLD, codes);
    expect(JSON.stringify(stored)).not.toContain(codes[0]!.replace(/-/g, ''));
    const typed = ` ${codes[3]!.toUpperCase().replace(/-/g, ' ')} `;
    expect(matchRecoveryCode(OLD, stored, typed)).toBe(stored.macs[3]);
    expect(matchRecoveryCode(OLD, stored, codes[3]!.replace(/-/g, ''))).toBe(stored.macs[3]);
    expect(matchRecoveryCode(OLD, stored, newRecoveryCodes()[0]!)).toBeUndefined();
    for (const bad of ['', 'abcd-efgh-ijkl', 'x'.repeat(1000), '0000-0000-000']) expect(matchRecoveryCode(OLD, stored, bad)).toBeUndefined();
    // Under the key they were made with, after a rotation too
    expect(matchRecoveryCode(ROTATED, stored, codes[0]!)).toBe(stored.macs[0]);
  });

  it('normalizes one way only', () => {
    expect(normalizeRecoveryCode('AB12-cd34-EF56')).toBe('ab12cd34ef56');
    expect(normalizeRecoveryCode('ab12cd34ef5')).toBeUndefined();
    expect(normalizeRecoveryCode('ab12cd34ef5i')).toBeUndefined();
  });
});
