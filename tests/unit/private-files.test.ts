import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileExistsError, ensurePrivateDir, writePrivateFile } from '../../scripts/private-files.js';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('private files (the local key ring)', () => {
  it('writes with mode 0600 whatever the umask, leaving no temporary file behind', () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'private-'));
    const previous = process.umask(0);

    // Act
    try {
      writePrivateFile(join(dir, 'ring'), 'secret\n');
    } finally {
      process.umask(previous);
    }

    // Assess
    expect(mode(join(dir, 'ring'))).toBe(0o600);
    expect(readFileSync(join(dir, 'ring'), 'utf8')).toBe('secret\n');
    expect(readdirSync(dir)).toEqual(['ring']);
  });

  it('never writes through a symlink planted where the old predictable temporary file was', () => {
    // Prepare: someone else's file, and a link to it at <file>.tmp
    const dir = mkdtempSync(join(tmpdir(), 'private-'));
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'untouched');
    symlinkSync(victim, join(dir, 'ring.tmp'));

    // Act
    writePrivateFile(join(dir, 'ring'), 'secret\n');

    // Assess
    expect(readFileSync(victim, 'utf8')).toBe('untouched');
    expect(readFileSync(join(dir, 'ring'), 'utf8')).toBe('secret\n');
  });

  it('replaces a file whole, and with create leaves an existing one alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'private-'));
    const file = join(dir, 'ring');
    writePrivateFile(file, 'one');
    writePrivateFile(file, 'two');
    expect(readFileSync(file, 'utf8')).toBe('two');
    expect(() => writePrivateFile(file, 'three', { create: true })).toThrow(FileExistsError);
    expect(readFileSync(file, 'utf8')).toBe('two');
    expect(readdirSync(dir)).toEqual(['ring']);
  });

  it('makes the data folder owner-only, and tightens one made world-readable before', () => {
    const parent = mkdtempSync(join(tmpdir(), 'private-'));
    const fresh = join(parent, 'fresh', '.data');
    ensurePrivateDir(fresh);
    expect(mode(fresh)).toBe(0o700);
    const old = join(parent, 'old');
    ensurePrivateDir(old);
    chmodSync(old, 0o755);
    ensurePrivateDir(old, { tighten: true });
    expect(mode(old)).toBe(0o700);
    expect(existsSync(old)).toBe(true);
  });
});
