import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_DOMAIN, startDemoIdp, type DemoIdp } from '../../scripts/demo-idp.js';
import { apiEnv } from '../support/context.js';
import { e2eApp } from '../support/http.js';

/**
 * `npm start`'s demo corporate IdP, against the e2e stack: its page's URI is a loopback one, which
 * the stack allows on any port (`http://127.0.0.1/sso/desktop`, RFC 8252). A browser's trip, by
 * plain HTTP with cookies: /try, the API, oidc-provider's development login and consent forms, the
 * API's callback, and the page that redeems the code.
 */
let demo: DemoIdp;

beforeAll(async () => {
  const app = e2eApp();
  demo = await startDemoIdp({ port: 0, apiBaseUrl: apiEnv().PUBLIC_BASE_URL!, db: app.db, tables: app.config, mfaRing: await app.mfaKeyRing!.current(), donePath: '/sso/desktop' });
});

afterAll(async () => {
  await demo?.close();
});

async function browser(start: string): Promise<string> {
  const jar = new Map<string, string>();
  let url = start;
  let method = 'GET';
  let body: string | undefined;
  for (let hops = 0; hops < 20; hops++) {
    const response = await fetch(url, {
      method,
      redirect: 'manual',
      headers: { ...(jar.size ? { cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; ') } : {}), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body,
      signal: AbortSignal.timeout(20_000),
    });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      jar.set(pair!.slice(0, pair!.indexOf('=')), pair!.slice(pair!.indexOf('=') + 1));
    }
    const text = await response.text();
    const location = response.headers.get('location');
    if (location) {
      url = new URL(location, url).href;
      method = 'GET';
      body = undefined;
      continue;
    }
    // oidc-provider's development forms: the login (any name), then the consent.
    const action = /<form[^>]*action="([^"]+)"/.exec(text)?.[1];
    if (!action) return text;
    url = new URL(action.replace(/&amp;/g, '&'), url).href;
    method = 'POST';
    body = text.includes('name="login"') ? new URLSearchParams({ prompt: 'login', login: 'admin-alice', password: 'any' }).toString() : new URLSearchParams({ prompt: 'consent' }).toString();
  }
  throw new Error('too many hops');
}

describe("npm start's demo corporate IdP", () => {
  it('signs "admin-alice" in as admin-alice@sso.example, role admin from its group, through the whole flow', async () => {
    // Act
    const page = await browser(demo.tryUrl);

    // Assess
    expect(page).toContain('POST /v1/auth/sso/token: 200');
    expect(page).toContain(`admin-alice@${DEMO_DOMAIN}`);
    expect(page).toMatch(/&#34;role&#34;: &#34;admin&#34;/);
  });
});
