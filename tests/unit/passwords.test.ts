import bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_PASSWORD_BYTES, hashPassword, passwordBytes, verifyPassword } from '../../lib/auth/passwords.js';

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

describe('multibyte passwords', () => {
  it('verifies a multibyte password round trip, and refuses a near miss', async () => {
    // Prepare
    const password = `${EMOJI.repeat(8)}é`;
    const hash = await hashPassword(password, COST);

    // Act + Assess
    await expect(verifyPassword(password, hash, COST)).resolves.toBe(true);
    await expect(verifyPassword(`${EMOJI.repeat(8)}e`, hash, COST)).resolves.toBe(false);
  });
});

describe('hashPassword refuses what bcrypt would cut', () => {
  it('hashes a short password as it is (the policy is for new passwords, checked before)', async () => {
    await expect(verifyPassword('short', await hashPassword('short', COST), COST)).resolves.toBe(true);
  });

  it('refuses an over-long password rather than hashing its first 72 bytes', async () => {
    // Prepare
    const hash = vi.spyOn(bcrypt, 'hash');

    // Act + Assess
    await expect(hashPassword(EMOJI.repeat(19), COST)).rejects.toThrow('Password must be at most 72 bytes in UTF-8');
    expect(hash).not.toHaveBeenCalled();
  });
});
