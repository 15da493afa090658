/**
 * fileStorage(path) for Node scripts and CLIs: one JSON file of mode 0600. Every write is atomic
 * (a temporary file in the same folder, fsynced, renamed over the old one, then the folder fsynced),
 * and every read-modify-write holds a lock file created with O_EXCL, so that processes setting
 * different keys never lose each other's update.
 *
 * The lock file holds its owner's random token: a process deletes only a lock that holds its own.
 * A lock whose mtime is older than LOCK_STALE_MS belongs to a process that died holding it (a live
 * holder touches it every LOCK_STALE_MS / 4). Of the processes that find it stale, one renames it
 * aside (rename is atomic: one wins) and checks that what it moved is the stale lock it saw (same
 * inode and mtime); a live lock taken in the meantime is put back. A holder checks that the lock is
 * still its own before its write lands, and does its update again if it is not.
 *
 * The folder must exist: fileStorage does not create it (a missing folder is an AuthError
 * storage_error that names it).
 */
import { link, open, readdir, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { AuthError } from './errors.js';
import type { StorageAdapter } from './storage.js';

const LOCK_STALE_MS = 5_000;
const LOCK_TIMEOUT_MS = 15_000;
/** Temporary files older than this were left by a process that crashed mid-write. */
const LEFTOVER_MS = 60_000;

type Values = Record<string, string>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const randomName = () => randomBytes(6).toString('hex');

export function fileStorage(path: string): StorageAdapter {
  const lockPath = `${path}.lock`;
  const folder = dirname(path);
  let swept = false;

  const failure = (message: string, cause?: unknown) =>
    new AuthError(0, 'storage_error', `fileStorage: ${message}`, undefined, { cause });

  async function read(): Promise<Values> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw error;
    }
    try {
      const values: unknown = JSON.parse(text);
      return values && typeof values === 'object' && !Array.isArray(values) ? (values as Values) : {};
    } catch {
      return {}; // Only a foreign or damaged file: ours are written whole by rename.
    }
  }

  async function write(values: Values): Promise<void> {
    const temp = `${path}.${process.pid}.${randomName()}.tmp`;
    const file = await open(temp, 'wx', 0o600);
    try {
      await file.writeFile(JSON.stringify(values));
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await rename(temp, path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
    // The rename itself survives a power cut only once the folder is synced (not possible everywhere).
    try {
      const dir = await open(folder, 'r');
      await dir.sync().finally(() => dir.close());
    } catch {
      // Windows cannot open a folder: the rename stands, as durable as the OS makes it.
    }
  }

  const owns = (token: string) => readFile(lockPath, 'utf8').then((text) => text === token, () => false);

  async function lock(): Promise<string> {
    const token = randomName() + randomName();
    const deadline = Date.now() + LOCK_TIMEOUT_MS;
    for (;;) {
      try {
        const file = await open(lockPath, 'wx', 0o600);
        await file.writeFile(token).finally(() => file.close());
        return token;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') throw failure(`the folder ${folder} does not exist (fileStorage does not create it)`, error);
        if (code !== 'EEXIST') throw error;
      }
      await takeOverIfStale();
      if (Date.now() > deadline) throw failure(`${lockPath} stayed locked for ${LOCK_TIMEOUT_MS} ms`);
      await sleep(5 + Math.random() * 20);
    }
  }

  /** Moves a dead process's lock out of the way; at most one of those that found it stale does. */
  async function takeOverIfStale(): Promise<void> {
    const seen = await stat(lockPath).catch(() => undefined);
    if (!seen || Date.now() - seen.mtimeMs <= LOCK_STALE_MS) return;
    const aside = `${lockPath}.${randomName()}.stale`;
    try {
      await rename(lockPath, aside);
    } catch {
      return; // Another process moved it first.
    }
    const moved = await stat(aside).catch(() => undefined);
    if (moved && (moved.ino !== seen.ino || moved.mtimeMs !== seen.mtimeMs)) {
      // Moved a live lock taken since the stat: put it back (its holder would find it gone otherwise).
      await link(aside, lockPath).catch(() => {});
    }
    await unlink(aside).catch(() => {});
  }

  /** Temporary files of writes that a crash interrupted, once per instance. */
  async function sweep(): Promise<void> {
    if (swept) return;
    swept = true;
    const prefix = `${basename(path)}.`;
    for (const name of await readdir(folder).catch(() => [])) {
      if (!name.startsWith(prefix) || !/\.(tmp|stale)$/.test(name)) continue;
      const file = join(folder, name);
      const found = await stat(file).catch(() => undefined);
      if (found && Date.now() - found.mtimeMs > LEFTOVER_MS) await unlink(file).catch(() => {});
    }
  }

  async function update(change: (values: Values) => void): Promise<void> {
    for (;;) {
      const token = await lock();
      // A live holder keeps its lock fresh, however slow the disk.
      const beat = setInterval(() => {
        const now = new Date();
        utimes(lockPath, now, now).catch(() => {});
      }, LOCK_STALE_MS / 4);
      beat.unref?.();
      try {
        await sweep();
        const values = await read();
        change(values);
        // Taken from under this process (a takeover raced it)? Then the update is done again, locked.
        if (await owns(token)) {
          await write(values);
          return;
        }
      } finally {
        clearInterval(beat);
        if (await owns(token)) await unlink(lockPath).catch(() => {});
      }
    }
  }

  return {
    get: async (key) => (await read())[key] ?? null,
    set: (key, value) => update((values) => void (values[key] = value)),
    remove: (key) => update((values) => void delete values[key]),
  };
}
