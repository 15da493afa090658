/** The browser entry: the same exports, with no node: import (fileStorage needs Node's file system). */
import { AuthError } from './errors.js';
import type { StorageAdapter } from './storage.js';

export * from './shared.js';

export function fileStorage(_path: string): StorageAdapter {
  throw new AuthError(0, 'node_only', 'fileStorage needs Node (node:fs); in a browser use memoryStorage() or browserStorage().');
}
