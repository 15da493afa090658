import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createAuthClient, fileStorage, type AuthClient } from '@vpn-enterprise/auth-client';
import { PROJECT_ROOT } from '../../scripts/local-stack.js';
import { apiBase, newUser, sleep } from '../support/client-stack.js';

/** fetch that notes each request as `METHOD /path` before sending it. */
function countingFetch() {
  const requests: string[] = [];
  const counted: typeof fetch = (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    requests.push(`${method.toUpperCase()} ${new URL(url).pathname}`);
    return fetch(input, init);
  };
  return { fetch: counted, requests, count: (request: string) => requests.filter((sent) => sent === request).length };
}

/** Until the access token of `auth`'s session has expired (the stack's are short-lived). */
async function untilExpired(auth: AuthClient): Promise<void> {
  const expiresAt = auth.session?.expiresAt;
  if (!expiresAt) throw new Error('not signed in');
  await sleep(Math.max(0, expiresAt - Date.now()) + 300);
}

const folder = mkdtempSync(join(tmpdir(), 'auth-client-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe('refreshing against the local stack', () => {
  it('sends exactly one refresh for 20 concurrent auth.fetch calls after the access token expired', async () => {
    // Prepare
    const user = await newUser('single-flight');
    const counter = countingFetch();
    const auth = createAuthClient({ baseUrl: apiBase(), fetch: counter.fetch, refreshMarginSeconds: 0 });
    try {
      expect((await auth.signIn(user)).status).toBe('signed_in');
      await untilExpired(auth);
      counter.requests.length = 0;

      // Act
      const responses = await Promise.all(Array.from({ length: 20 }, () => auth.fetch(`${apiBase()}/auth/me`)));

      // Assess
      expect(responses.map((response) => response.status)).toEqual(Array(20).fill(200));
      const bodies = await Promise.all(responses.map((response) => response.json() as Promise<{ user: { email: string } }>));
      expect(new Set(bodies.map((body) => body.user.email))).toEqual(new Set([user.email]));
      expect(counter.count('POST /v1/auth/refresh')).toBe(1);
      expect(counter.count('GET /v1/auth/me')).toBe(20);
    } finally {
      auth.close();
    }
  });

  it('keeps two clients on one fileStorage signed in when both refresh at the same moment', async () => {
    // Prepare: two instances that hear nothing from each other, as two processes would.
    const user = await newUser('file-storage');
    const path = join(folder, 'in-process.json');
    const counters = [countingFetch(), countingFetch()];
    const [first, second] = counters.map((counter) => createAuthClient({ baseUrl: apiBase(), storage: fileStorage(path), fetch: counter.fetch, refreshMarginSeconds: 0 })) as [AuthClient, AuthClient];
    first.close();
    second.close();
    try {
      expect((await first.signIn(user)).status).toBe('signed_in');
      await untilExpired(first);

      // Act
      const [mine, theirs] = await Promise.all([first.me(), second.me()]);
      // Both still hold a pair that works: the same one, or each its own from the grace window.
      const again = await Promise.all([first.me(), second.me()]);

      // Assess
      expect([mine.email, theirs.email, ...again.map((me) => me.email)]).toEqual(Array(4).fill(user.email));
      expect(first.session).not.toBeNull();
      expect(second.session).not.toBeNull();
      // Both really refreshed (or one adopted the other's pair from the file): never a sign-in again.
      expect(counters.flatMap((counter) => counter.requests).filter((request) => request.endsWith('/auth/login'))).toHaveLength(1);
    } finally {
      first.close();
      second.close();
    }
  });

  it('keeps two processes on one fileStorage signed in when both refresh at the same moment', async () => {
    // Prepare
    const user = await newUser('file-processes');
    const path = join(folder, 'processes.json');
    const auth = createAuthClient({ baseUrl: apiBase(), storage: fileStorage(path), refreshMarginSeconds: 0 });
    auth.close();
    expect((await auth.signIn(user)).status).toBe('signed_in');
    const expiresAt = auth.session!.expiresAt;
    // Each process reads the file, waits for the same moment past the expiry, then asks twice.
    const script = `
      import { createAuthClient, fileStorage } from '@vpn-enterprise/auth-client';
      const auth = createAuthClient({ baseUrl: process.env.BASE, storage: fileStorage(process.env.FILE), refreshMarginSeconds: 0 });
      await new Promise((done) => setTimeout(done, Number(process.env.AT) - Date.now()));
      const first = await auth.me();
      const second = await auth.me();
      console.log(JSON.stringify([first.email, second.email]));
      auth.close();
    `;
    const run = () =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
          cwd: PROJECT_ROOT,
          env: { ...process.env, BASE: apiBase(), FILE: path, AT: String(expiresAt + 500) },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk) => (stdout += chunk));
        child.stderr.on('data', (chunk) => (stderr += chunk));
        child.on('exit', (code) => done({ code, stdout, stderr }));
      });

    // Act
    const results = await Promise.all([run(), run()]);

    // Assess
    for (const result of results) {
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual([user.email, user.email]);
    }
    // And the file still holds a session that works here.
    expect((await auth.me()).email).toBe(user.email);
  });
});
