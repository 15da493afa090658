import bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  MAX_PASSWORD_BYTES,
  MIN_PASSWORD_LENGTH,
  hashPassword,
  passwordBytes,
  passwordProblem,
  verifyPassword,
} from '../../lib/auth/passwords.js';

const COST = 4;
const PASSWORD = 'correct horse battery staple';
const EMOJI = '\u{1F511}'; // 🔑: one character, two UTF-16 units, four UTF-8 bytes

afterEach(() => {
  vi.restoreAllMocks();
});

describe('hashPassword and verifyPassword', () => {
  it('hashes with bcrypt at the given cost and verifies the same password', async () => {
    // Act
    const hash = await hashPassword(PASSWORD, COST);

    // Assess
    expect(hash).toMatch(/^\$2b\$04\$[./A-Za-z0-9]{53}$/);
    await expect(verifyPassword(PASSWORD, hash, COST)).resolves.toBe(true);
  });

  it('salts: the same password hashes differently twice', async () => {
    // Act
    const [first, second] = await Promise.all([hashPassword(PASSWORD, COST), hashPassword(PASSWORD, COST)]);

    // Assess
    expect(first).not.toBe(second);
  });

  it('refuses a wrong password', async () => {
    // Prepare
    const hash = await hashPassword(PASSWORD, COST);

    // Act + Assess
    await expect(verifyPassword('correct horse battery stapler', hash, COST)).resolves.toBe(false);
    await expect(verifyPassword('', hash, COST)).resolves.toBe(false);
  });

  it('resolves false for an unknown user (no hash)', async () => {
    await expect(verifyPassword(PASSWORD, undefined, COST)).resolves.toBe(false);
  });

  it('pays one real bcrypt comparison, against a decoy hash at the same cost, for an unknown user', async () => {
    // Prepare
    const compare = vi.spyOn(bcrypt, 'compare');

    // Act
    const result = await verifyPassword('x', undefined, COST);

    // Assess
    expect(result).toBe(false);
    expect(compare).toHaveBeenCalledTimes(1);
    const [password, hash] = compare.mock.calls[0]!;
    expect(password).toBe('x');
    expect(hash).toMatch(/^\$2b\$04\$[./A-Za-z0-9]{53}$/);
  });

  it('compares an over-long password against the decoy, never against the stored hash', async () => {
    // Prepare
    const stored = await hashPassword(PASSWORD, COST);
    const compare = vi.spyOn(bcrypt, 'compare');

    // Act
    const result = await verifyPassword('a'.repeat(MAX_PASSWORD_BYTES + 1), stored, COST);

    // Assess
    expect(result).toBe(false);
    expect(compare).toHaveBeenCalledTimes(1);
    const hash = compare.mock.calls[0]![1];
    expect(hash).not.toBe(stored);
    expect(hash).toMatch(/^\$2b\$04\$/);
  });
});

describe('the 72-byte limit of bcrypt', () => {
  const exactly72 = 'p'.repeat(MAX_PASSWORD_BYTES);

  it('accepts and verifies a password of exactly 72 bytes', async () => {
    // Act
    const hash = await hashPassword(exactly72, COST);

    // Assess
    expect(passwordBytes(exactly72)).toBe(72);
    await expect(verifyPassword(exactly72, hash, COST)).resolves.toBe(true);
  });

  it('does not truncate: the 72 bytes plus more do not verify, although bcrypt alone would say yes', async () => {
    // Prepare
    const hash = await hashPassword(exactly72, COST);
    const longer = `${exactly72}-and-then-some`;
    expect(longer.startsWith(exactly72)).toBe(true);
    await expect(bcrypt.compare(longer, hash)).resolves.toBe(true); // bcrypt itself truncates

    // Act
    const result = await verifyPassword(longer, hash, COST);

    // Assess
    expect(result).toBe(false);
  });

  it('does not truncate by one byte either', async () => {
    // Prepare
    const hash = await hashPassword(exactly72, COST);

    // Act + Assess
    await expect(verifyPassword(`${exactly72}p`, hash, COST)).resolves.toBe(false);
  });
});

describe('passwordProblem', () => {
  it('accepts an ordinary password', () => {
    expect(passwordProblem(PASSWORD)).toBeUndefined();
  });

  it('refuses fewer than 8 characters', () => {
    expect(passwordProblem('1234567')).toBe(`must be at least ${MIN_PASSWORD_LENGTH} characters`);
    expect(passwordProblem('')).toBe('must be at least 8 characters');
  });

  it('accepts exactly 8 characters', () => {
    expect(passwordProblem('12345678')).toBeUndefined();
  });

  it('refuses more than 72 bytes', () => {
    expect(passwordProblem('a'.repeat(73))).toBe(`must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8`);
  });

  it('counts characters, not UTF-16 units, toward the minimum', () => {
    // Prepare: 7 emoji are 14 UTF-16 units but 7 characters; 8 emoji are 8 characters
    const seven = EMOJI.repeat(7);
    const eight = EMOJI.repeat(8);
    expect(seven.length).toBe(14);

    // Act + Assess
    expect(passwordProblem(seven)).toBe('must be at least 8 characters');
    expect(passwordProblem(eight)).toBeUndefined();
    expect(passwordBytes(eight)).toBe(32);
  });

  it('counts bytes, not characters, toward the maximum', () => {
    // Prepare: 18 emoji are 72 bytes, 19 are 76 bytes though only 19 characters
    const eighteen = EMOJI.repeat(18);
    const nineteen = EMOJI.repeat(19);

    // Act + Assess
    expect(passwordBytes(eighteen)).toBe(72);
    expect(passwordProblem(eighteen)).toBeUndefined();
    expect(passwordBytes(nineteen)).toBe(76);
    expect(passwordProblem(nineteen)).toBe('must be at most 72 bytes in UTF-8');
  });

  it('verifies a multibyte password round trip, and refuses a near miss', async () => {
    // Prepare
    const password = `${EMOJI.repeat(8)}é`;
    const hash = await hashPassword(password, COST);

    // Act + Assess
    await expect(verifyPassword(password, hash, COST)).resolves.toBe(true);
    await expect(verifyPassword(`${EMOJI.repeat(8)}e`, hash, COST)).resolves.toBe(false);
  });
});

describe('hashPassword refuses a password with a problem', () => {
  it('refuses a short password', async () => {
    await expect(hashPassword('short', COST)).rejects.toThrow('Password must be at least 8 characters');
  });

  it('refuses an over-long password rather than hashing its first 72 bytes', async () => {
    // Prepare
    const hash = vi.spyOn(bcrypt, 'hash');

    // Act + Assess
    await expect(hashPassword(EMOJI.repeat(19), COST)).rejects.toThrow('Password must be at most 72 bytes in UTF-8');
    expect(hash).not.toHaveBeenCalled();
  });
});
