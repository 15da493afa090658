import { Secret, TOTP } from 'otpauth';
import { describe, expect, it } from 'vitest';
import { matchTotp, newTotpSecret, otpauthUrl, totpCode, totpStep } from '../../lib/mfa/totp.js';

/** RFC 6238, appendix B: the seeds are ASCII; 8 digits, 30 s steps. */
const SEEDS = {
  SHA1: '12345678901234567890',
  SHA256: '12345678901234567890123456789012',
  SHA512: '1234567890123456789012345678901234567890123456789012345678901234',
} as const;
const VECTORS: Array<[number, string, keyof typeof SEEDS]> = [
  [59, '94287082', 'SHA1'],
  [59, '46119246', 'SHA256'],
  [59, '90693936', 'SHA512'],
  [1111111109, '07081804', 'SHA1'],
  [1111111109, '68084774', 'SHA256'],
  [1111111109, '25091201', 'SHA512'],
  [1111111111, '14050471', 'SHA1'],
  [1111111111, '67062674', 'SHA256'],
  [1111111111, '99943326', 'SHA512'],
  [1234567890, '89005924', 'SHA1'],
  [1234567890, '91819424', 'SHA256'],
  [1234567890, '93441116', 'SHA512'],
  [2000000000, '69279037', 'SHA1'],
  [2000000000, '90698825', 'SHA256'],
  [2000000000, '38618901', 'SHA512'],
  [20000000000, '65353130', 'SHA1'],
  [20000000000, '77737706', 'SHA256'],
  [20000000000, '47863826', 'SHA512'],
];

describe('the TOTP library against RFC 6238 appendix B', () => {
  it.each(VECTORS)('at %i s gives %s with %s', (seconds, expected, algorithm) => {
    const secret = Secret.fromLatin1(SEEDS[algorithm]);
    expect(TOTP.generate({ secret, algorithm, digits: 8, period: 30, timestamp: seconds * 1000 })).toBe(expected);
    expect(TOTP.validate({ token: expected, secret, algorithm, digits: 8, period: 30, timestamp: seconds * 1000, window: 0 })).toBe(0);
  });
});

describe('our TOTP', () => {
  const SECRET = Secret.fromLatin1(SEEDS.SHA1).base32; // GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
  const at = (seconds: number) => new Date(seconds * 1000);

  it('makes 160-bit secrets in unpadded RFC 4648 base32, a new one each time', () => {
    const secrets = new Set(Array.from({ length: 50 }, newTotpSecret));
    expect(secrets.size).toBe(50);
    for (const secret of secrets) {
      expect(secret).toMatch(/^[A-Z2-7]{32}$/);
      expect(Secret.fromBase32(secret).bytes).toHaveLength(20);
    }
  });

  it('builds the otpauth URL of the contract', () => {
    expect(otpauthUrl('user@company.com', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')).toBe(
      'otpauth://totp/VPN%20Enterprise:user@company.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=VPN%20Enterprise&algorithm=SHA1&digits=6&period=30',
    );
    // The email as written ('+' and '@' are legal in the path); what could end or split the label is encoded
    expect(otpauthUrl('first.last+vpn@x.io', 'S')).toContain('VPN%20Enterprise:first.last+vpn@x.io?secret=S&');
    expect(otpauthUrl('a+b?c#d/e:f g%@x.io', 'S')).toContain('VPN%20Enterprise:a+b%3Fc%23d%2Fe%3Af%20g%25@x.io?secret=S&');
  });

  it('gives the 6-digit code of the RFC seed (the last six of the 8-digit vector)', () => {
    expect(totpCode(SECRET, at(59))).toBe('287082');
    expect(totpCode(SECRET, at(1111111109))).toBe('081804');
  });

  it('accepts the current step and one either side, and says which step matched', () => {
    const now = at(1111111109); // step 37037036
    expect(totpStep(now)).toBe(37037036);
    expect(matchTotp(SECRET, totpCode(SECRET, now), now)).toBe(37037036);
    expect(matchTotp(SECRET, totpCode(SECRET, at(1111111109 - 30)), now)).toBe(37037035);
    expect(matchTotp(SECRET, totpCode(SECRET, at(1111111109 + 30)), now)).toBe(37037037);
    expect(matchTotp(SECRET, totpCode(SECRET, at(1111111109 - 60)), now)).toBeUndefined();
    expect(matchTotp(SECRET, totpCode(SECRET, at(1111111109 + 60)), now)).toBeUndefined();
  });

  it('names a replayed code by the step it was made for, not the moment it comes back, so a spent step refuses it', () => {
    // Prepare: a code, used once at once (its step is what the user item remembers)
    const code = totpCode(SECRET, at(1111111109));
    const spent = matchTotp(SECRET, code, at(1111111109))!;

    // Act: the same code again, 1 s and 20 s later (the next step already: still inside the window)
    const replays = [at(1111111110), at(1111111129)].map((moment) => matchTotp(SECRET, code, moment));

    // Assess: the same step each time: not later than the one spent, which is all the claim needs to refuse it
    expect(replays).toEqual([spent, spent]);
    expect(replays.every((step) => step! <= spent)).toBe(true);
    // while the next code, made for the next step, is later
    expect(matchTotp(SECRET, totpCode(SECRET, at(1111111109 + 30)), at(1111111110))).toBe(spent + 1);
  });

  it('refuses anything that is not six digits without comparing it', () => {
    const now = at(1111111109);
    for (const code of ['', '08180', '0818045', '08180a', ' 081804', '081804 ', '０８１８０４', '08180é', '1e5000']) {
      expect(matchTotp(SECRET, code, now)).toBeUndefined();
    }
  });
});
