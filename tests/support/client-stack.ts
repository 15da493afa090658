import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { loadStoreConfig } from '../../lib/platform/config.js';
import type { Role } from '../../lib/store/users.js';
import { seedUser } from '../../scripts/local-stack.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The `browser` project's stack (tests/support/client-stack-setup.ts). */
    clientStack: { apiUrl: string; pageUrl: string; env: Record<string, string> };
  }
}

export const CLIENT_STAGE = 'client';
/** Short, so that the tests can wait past an access token's life. */
export const ACCESS_TOKEN_TTL_SECONDS = 5;

/** The client's baseUrl: `http://127.0.0.1:<port>/v1`. */
export const apiBase = () => `${inject('clientStack').apiUrl}/v1`;

/** The example page, pointed at this stack's API; `settings` are more of its query parameters. */
export function pageUrl(settings: Record<string, string> = {}): string {
  const url = new URL(inject('clientStack').pageUrl);
  url.searchParams.set('api', apiBase());
  for (const [name, value] of Object.entries(settings)) url.searchParams.set(name, value);
  return url.toString();
}

export interface TestUser {
  email: string;
  password: string;
  name: string;
}

/** A new user of this stack's own, so that test files (and tests) never share one. */
export async function newUser(label: string, role: Role = 'user'): Promise<TestUser> {
  const user = { email: `${label}-${randomBytes(6).toString('hex')}@example.com`, password: `pw-${randomBytes(12).toString('base64url')}`, name: `Test ${label}` };
  await seedUser(loadStoreConfig(inject('clientStack').env), { ...user, role });
  return user;
}

export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
