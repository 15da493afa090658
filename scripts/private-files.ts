/**
 * Files that hold secrets on the operator's machine (the local signing-key ring): owner-only from
 * the first byte, written whole or not at all, never through a path someone else prepared.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, linkSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** A directory only its owner can enter; `tighten` also fixes the mode of one that exists. */
export function ensurePrivateDir(dir: string, { tighten = false } = {}): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (tighten) chmodSync(dir, 0o700);
}

/** Thrown by `create` when the file is already there. */
export class FileExistsError extends Error {
  constructor(readonly file: string) {
    super(`${file} already exists`);
    this.name = 'FileExistsError';
  }
}

/**
 * Write `text` to `file` with mode 0600. The bytes go to a temporary file of an unguessable name
 * beside it, created exclusively (O_EXCL: an existing file or symlink there is refused, never
 * followed) with mode 0600 from the start, synced, then moved into place: a reader sees the old
 * file or the new one, never half of one. With `create`, an existing `file` is left alone
 * (FileExistsError), atomically: two creators cannot both win.
 */
export function writePrivateFile(file: string, text: string, { create = false } = {}): void {
  const temporary = join(dirname(file), `.${basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    if (create) {
      try {
        linkSync(temporary, file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new FileExistsError(file);
        throw error;
      }
    } else {
      renameSync(temporary, file);
    }
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      /* renamed into place */
    }
  }
}
