import { execFile } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { browserStorage, createAuthClient, fileStorage, memoryStorage, type WebStorageLike } from '../src/index.js';
import { fileStorage as browserFileStorage } from '../src/browser.js';
import { BASE_URL, fakeApi, USER } from './support/fake-api.js';

const run = promisify(execFile);
const WRITER = join(import.meta.dirname, 'support', 'file-writer.ts');

describe('memoryStorage', () => {
  it('gets what was set, forgets what was removed, and is private to each call', () => {
    // Prepare
    const one = memoryStorage();
    const two = memoryStorage();
    // Act
    one.set('a', '1');
    one.set('b', '2');
    one.remove('b');
    // Assess
    expect([one.get('a'), one.get('b'), two.get('a')]).toEqual(['1', null, null]);
  });
});

describe('browserStorage', () => {
  it('reads and writes through getItem, setItem and removeItem', () => {
    // Prepare
    const items = new Map<string, string>();
    const fake: WebStorageLike = {
      getItem: (key) => items.get(key) ?? null,
      setItem: (key, value) => void items.set(key, value),
      removeItem: (key) => void items.delete(key),
    };
    const storage = browserStorage(fake);
    // Act
    storage.set('k', 'v');
    const read = storage.get('k');
    storage.remove('k');
    // Assess
    expect(read).toBe('v');
    expect(items.size).toBe(0);
  });

  it('keeps a client signed in across a reload (a new instance on the same Storage)', async () => {
    // Prepare
    vi.stubGlobal('BroadcastChannel', undefined);
    const items = new Map<string, string>();
    const fake: WebStorageLike = {
      getItem: (key) => items.get(key) ?? null,
      setItem: (key, value) => void items.set(key, value),
      removeItem: (key) => void items.delete(key),
    };
    const api = fakeApi();
    await createAuthClient({ baseUrl: BASE_URL, fetch: api.fetch, storage: browserStorage(fake) }).signIn({ email: USER.email, password: 'pw' });
    // Act
    const reloaded = createAuthClient({ baseUrl: BASE_URL, fetch: api.fetch, storage: browserStorage(fake) });
    // Assess
    expect(reloaded.session?.user).toEqual(USER);
    expect([...items.keys()].sort()).toEqual(['vpn-enterprise.auth.device-token', 'vpn-enterprise.auth.session']);
    vi.unstubAllGlobals();
  });
});

describe('fileStorage', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'auth-client-'));
    path = join(dir, 'session.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('answers null before anything is stored, then keeps keys in one JSON file of mode 0600', async () => {
    // Prepare
    const storage = fileStorage(path);
    // Act
    const before = await storage.get('a');
    await storage.set('a', '1');
    await storage.set('b', '2');
    await storage.remove('a');
    // Assess
    expect(before).toBeNull();
    expect(await storage.get('b')).toBe('2');
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ b: '2' });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['session.json']);
  });

  it('writes atomically: a new file renamed over the old, never a half-written one', async () => {
    // Prepare
    const storage = fileStorage(path);
    await storage.set('a', 'x'.repeat(10_000));
    // The first file, held open: an in-place write would change what it reads.
    const first = openSync(path, 'r');
    const torn: string[] = [];
    let writing = true;
    const reader = (async () => {
      while (writing) {
        const text = readFileSync(path, 'utf8');
        try {
          JSON.parse(text);
        } catch {
          torn.push(text);
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    // Act
    for (let i = 0; i < 30; i++) await storage.set('a', String(i).repeat(10_000));
    writing = false;
    await reader;
    // Assess
    expect(torn).toEqual([]);
    expect(JSON.parse(readFileSync(first, 'utf8'))).toEqual({ a: 'x'.repeat(10_000) });
    closeSync(first);
    expect(readdirSync(dir)).toEqual(['session.json']);
  });

  it('two processes setting different keys at once lose no update', async () => {
    // Prepare
    const count = 25;
    // Act
    await Promise.all(
      ['a', 'b'].map((prefix) => run(process.execPath, ['--import', 'tsx', WRITER, path, prefix, String(count)])),
    );
    // Assess
    const values = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
    expect(Object.keys(values)).toHaveLength(2 * count);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['session.json']);
  }, 30_000);

  it('concurrent writers in one process lose no update either', async () => {
    // Prepare
    const one = fileStorage(path);
    const two = fileStorage(path);
    // Act
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).set(`k${i}`, String(i))));
    // Assess
    expect(Object.keys(JSON.parse(readFileSync(path, 'utf8')))).toHaveLength(20);
  });

  it('takes over a lock left by a process that died holding it', async () => {
    // Prepare
    staleLock();
    const storage = fileStorage(path);
    // Act
    await storage.set('a', '1');
    // Assess
    expect(await storage.get('a')).toBe('1');
    expect(readdirSync(dir)).toEqual(['session.json']);
  });

  /** A lock file as a process that died holding it a minute ago leaves it. */
  function staleLock(content = '') {
    writeFileSync(`${path}.lock`, content);
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${path}.lock`, old, old);
  }

  it('many writers in one process waiting on a stale lock lose no update', async () => {
    for (let round = 0; round < 10; round++) {
      // Prepare
      rmSync(path, { force: true });
      staleLock();
      // Act
      await Promise.all(Array.from({ length: 12 }, (_, i) => fileStorage(path).set(`k${i}`, String(i))));
      // Assess
      expect(Object.keys(JSON.parse(readFileSync(path, 'utf8'))).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `k${i}`).sort());
      expect(readdirSync(dir)).toEqual(['session.json']);
    }
  }, 30_000);

  it('many processes waiting on a stale lock lose no update', async () => {
    // Prepare
    staleLock('token-of-a-dead-process');
    const writers = ['a', 'b', 'c', 'd', 'e', 'f'];
    // Every child starts writing at the same moment, once all have started.
    const startAt = String(Date.now() + 4_000);
    // Act
    await Promise.all(writers.map((prefix) => run(process.execPath, ['--import', 'tsx', WRITER, path, prefix, '3', startAt])));
    // Assess
    const values = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
    expect(Object.keys(values)).toHaveLength(writers.length * 3);
    expect(readdirSync(dir)).toEqual(['session.json']);
  }, 60_000);

  it('waits while another process holds a fresh lock, and writes once it is let go', async () => {
    // Prepare
    const storage = fileStorage(path);
    writeFileSync(`${path}.lock`, 'holder-token');
    const pending = storage.set('a', '1');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const whileHeld = [readdirSync(dir), readFileSync(`${path}.lock`, 'utf8')];
    // Act: the holder lets go
    rmSync(`${path}.lock`);
    await pending;
    // Assess
    expect(whileHeld).toEqual([['session.json.lock'], 'holder-token']);
    expect(await storage.get('a')).toBe('1');
    expect(readdirSync(dir)).toEqual(['session.json']);
  });

  it("removes a crashed write's temporary files older than a minute, and no others", async () => {
    // Prepare
    const old = new Date(Date.now() - 120_000);
    writeFileSync(join(dir, 'session.json.999.dead.tmp'), '{}');
    utimesSync(join(dir, 'session.json.999.dead.tmp'), old, old);
    writeFileSync(join(dir, 'session.json.998.young.tmp'), '{}');
    writeFileSync(join(dir, 'other.json.997.dead.tmp'), '{}');
    utimesSync(join(dir, 'other.json.997.dead.tmp'), old, old);
    // Act
    await fileStorage(path).set('a', '1');
    // Assess
    expect(readdirSync(dir).sort()).toEqual(['other.json.997.dead.tmp', 'session.json', 'session.json.998.young.tmp']);
  });

  it('a folder that does not exist rejects with AuthError storage_error naming it', async () => {
    // Prepare
    const missing = join(dir, 'no-such-folder', 'session.json');
    // Act
    const error = await Promise.resolve(fileStorage(missing).set('a', '1')).catch((e: unknown) => e);
    // Assess
    expect(error).toMatchObject({ name: 'AuthError', status: 0, code: 'storage_error', message: expect.stringContaining(join(dir, 'no-such-folder')) });
  });

  it('two clients on one file converge: the second adopts the first one refresh', async () => {
    // Prepare
    vi.stubGlobal('BroadcastChannel', undefined);
    const api = fakeApi({ ttlSeconds: 2 });
    const a = createAuthClient({ baseUrl: BASE_URL, fetch: api.fetch, storage: fileStorage(path), refreshMarginSeconds: 1 });
    await a.signIn({ email: USER.email, password: 'pw' });
    const b = createAuthClient({ baseUrl: BASE_URL, fetch: api.fetch, storage: fileStorage(path), refreshMarginSeconds: 1 });
    await b.getAccessToken();
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    // Act
    const tokenA = await a.getAccessToken();
    const tokenB = await b.getAccessToken();
    // Assess
    expect(tokenB).toBe(tokenA);
    expect(api.count('POST /auth/refresh')).toBe(1);
    vi.unstubAllGlobals();
  });
});

describe('the browser entry', () => {
  it('bundles for the browser without a node: import', async () => {
    // Act
    const result = await build({
      entryPoints: [join(import.meta.dirname, '..', 'src', 'browser.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    });
    // Assess
    const code = result.outputFiles[0]!.text;
    expect(code).not.toMatch(/(from |import\(|require\()\s*['"]node:/);
    expect(code).toMatch(/createAuthClient/);
  });

  it('has a fileStorage that says it needs Node', () => {
    // Act
    const attempt = () => browserFileStorage('/tmp/x.json');
    // Assess
    expect(attempt).toThrow(expect.objectContaining({ name: 'AuthError', code: 'node_only', message: expect.stringMatching(/needs Node/) }));
  });
});
