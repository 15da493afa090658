import { describe, expect, it } from 'vitest';
import { COMMON_PASSWORDS, COMMON_PASSWORD_COUNT } from '../../generated/common-passwords.js';
import { isCommonPassword, passwordPolicyProblem } from '../../lib/auth/password-policy.js';

const EMAIL = 'alice.smith@example.com';
const rules = { minLength: 12, email: EMAIL };
const EMOJI = '\u{1F511}'; // one character, four UTF-8 bytes

describe('passwordPolicyProblem', () => {
  it('accepts a long uncommon password with no composition rules', () => {
    expect(passwordPolicyProblem('wintry marble kettle dawn', rules)).toBeUndefined();
    expect(passwordPolicyProblem('alllowercaseletters', rules)).toBeUndefined();
  });

  it('refuses fewer than PASSWORD_MIN_LENGTH characters, counted as code points', () => {
    // Prepare: 11 emoji are 22 UTF-16 units but 11 characters
    const eleven = EMOJI.repeat(11);
    expect(eleven.length).toBe(22);

    // Act + Assess
    expect(passwordPolicyProblem(eleven, rules)).toBe('The password must be at least 12 characters long.');
    expect(passwordPolicyProblem(EMOJI.repeat(12), rules)).toBeUndefined();
    expect(passwordPolicyProblem('q8#vK2!x', { ...rules, minLength: 8 })).toBeUndefined();
    expect(passwordPolicyProblem('q8#vK2!x', rules)).toMatch(/at least 12 characters/);
  });

  it('refuses more than 72 bytes of UTF-8, and says why', () => {
    expect(passwordPolicyProblem(EMOJI.repeat(18), rules)).toBeUndefined();
    expect(passwordPolicyProblem(EMOJI.repeat(19), rules)).toBe(
      'The password must be at most 72 bytes in UTF-8 (bcrypt reads no further); fewer characters of other scripts fit.',
    );
    expect(passwordPolicyProblem('x'.repeat(73), rules)).toMatch(/at most 72 bytes/);
  });

  it('refuses the current password', () => {
    expect(passwordPolicyProblem('wintry marble kettle dawn', { ...rules, currentPassword: 'wintry marble kettle dawn' })).toBe(
      'The new password must differ from the current one.',
    );
    expect(passwordPolicyProblem('wintry marble kettle dawn', { ...rules, currentPassword: 'Wintry marble kettle dawn' })).toBeUndefined();
  });

  it("refuses a password containing the email's local part, in any case", () => {
    expect(passwordPolicyProblem('my-ALICE.SMITH-is-long', rules)).toBe('The password must not contain the email address (its part before the @).');
    expect(passwordPolicyProblem('alice and bob forever', rules)).toBeUndefined();
    // A local part of one or two characters is not looked for.
    expect(passwordPolicyProblem('jo jo jo jo jo jo', { ...rules, email: 'jo@example.com' })).toBeUndefined();
  });

  it('refuses common and breached passwords, whatever their case', () => {
    for (const common of ['password1234', 'Password1234', '1qaz2wsx3edc', 'QWERTYUIOP123', 'iloveyou1234']) {
      expect(passwordPolicyProblem(common, rules)).toBe('The password is too common: it is on a list of passwords used or leaked most often.');
    }
  });
});

describe('the common-passwords list', () => {
  it('holds at least 100,000 passwords, sorted, lower-cased, each findable', () => {
    // Prepare
    const entries = COMMON_PASSWORDS.split('\n');

    // Assess
    expect(COMMON_PASSWORD_COUNT).toBeGreaterThanOrEqual(100_000);
    expect(entries).toHaveLength(COMMON_PASSWORD_COUNT);
    for (let i = 1; i < entries.length; i += 997) {
      expect(entries[i - 1]! < entries[i]!).toBe(true);
      expect(entries[i]).toBe(entries[i]!.toLowerCase());
      expect(isCommonPassword(entries[i]!)).toBe(true);
    }
    expect(isCommonPassword(entries[0]!)).toBe(true);
    expect(isCommonPassword(entries.at(-1)!)).toBe(true);
  });

  it('finds nothing that is not on it', () => {
    expect(isCommonPassword('wintry marble kettle dawn')).toBe(false);
    expect(isCommonPassword('')).toBe(false);
    expect(isCommonPassword('\uffff'.repeat(9))).toBe(false);
    expect(isCommonPassword(' '.repeat(9))).toBe(false);
  });
});
