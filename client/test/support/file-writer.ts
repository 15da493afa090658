/** A child process for the fileStorage tests: sets `count` keys `<prefix>-<i>` in one file. */
import { fileStorage } from '../../src/file-storage.js';

const [path, prefix, count] = process.argv.slice(2);
const storage = fileStorage(path!);
for (let i = 0; i < Number(count); i++) await storage.set(`${prefix}-${i}`, String(i));
