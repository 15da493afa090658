/**
 * Where the client keeps its session and device token: any object with get/set/remove of strings,
 * sync or async.
 */
type MaybePromise<T> = T | Promise<T>;

export interface StorageAdapter {
  get(key: string): MaybePromise<string | null | undefined>;
  set(key: string, value: string): MaybePromise<void>;
  remove(key: string): MaybePromise<void>;
}

/** What browserStorage needs of window.localStorage or window.sessionStorage. */
export interface WebStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The default: tokens live as long as the page or process, and no other script can read them. */
export function memoryStorage(): StorageAdapter {
  const values = new Map<string, string>();
  return {
    get: (key) => values.get(key) ?? null,
    set: (key, value) => void values.set(key, value),
    remove: (key) => void values.delete(key),
  };
}

/**
 * window.localStorage (survives reloads, shared by the origin's tabs) or window.sessionStorage (one tab).
 * Any script on the page can read the tokens there.
 */
export function browserStorage(storage: WebStorageLike): StorageAdapter {
  return {
    get: (key) => storage.getItem(key),
    set: (key, value) => storage.setItem(key, value),
    remove: (key) => storage.removeItem(key),
  };
}
