/**
 * fileStorage(path) for Node scripts and CLIs: one JSON file of mode 0600. Every write is atomic
 * (a temporary file in the same folder, then rename), and every read-modify-write holds a lock
 * file created with O_EXCL, so that processes setting different keys never lose each other's update.
 * A lock older than LOCK_STALE_MS is taken to belong to a process that died holding it.
 */
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { StorageAdapter } from './storage.js';

const LOCK_STALE_MS = 5_000;
const LOCK_TIMEOUT_MS = 15_000;

type Values = Record<string, string>;

export function fileStorage(path: string): StorageAdapter {
  const lockPath = `${path}.lock`;

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
    const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
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
  }

  async function lock(): Promise<void> {
    const deadline = Date.now() + LOCK_TIMEOUT_MS;
    for (;;) {
      try {
        await (await open(lockPath, 'wx', 0o600)).close();
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const held = await stat(lockPath).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (held > LOCK_STALE_MS) {
        await unlink(lockPath).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) throw new Error(`fileStorage: ${lockPath} stayed locked for ${LOCK_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    }
  }

  async function update(change: (values: Values) => void): Promise<void> {
    await lock();
    try {
      const values = await read();
      change(values);
      await write(values);
    } finally {
      await unlink(lockPath).catch(() => {});
    }
  }

  return {
    get: async (key) => (await read())[key] ?? null,
    set: (key, value) => update((values) => void (values[key] = value)),
    remove: (key) => update((values) => void delete values[key]),
  };
}
