/**
 * A child process for the fileStorage tests: sets `count` keys `<prefix>-<i>` in one file, starting
 * at `startAt` (ms since the epoch) if given, so that several children start writing at once.
 */
import { fileStorage } from '../../src/file-storage.js';

const [path, prefix, count, startAt] = process.argv.slice(2);
const storage = fileStorage(path!);
if (startAt) await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(startAt) - Date.now())));
for (let i = 0; i < Number(count); i++) await storage.set(`${prefix}-${i}`, String(i));
