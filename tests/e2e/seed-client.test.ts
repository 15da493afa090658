import { describe, expect, it } from 'vitest';
import { apiUrl } from '../support/context.js';

describe("the seed document's example client", () => {
  it('logs in with fetch, then calls /auth/me with the token, exactly as a browser app would', async () => {
    // The client as the product's seed document shows it: no helpers, just fetch.
    const API = `${apiUrl()}/v1`;
    const loginResponse = await fetch(`${API}/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: 'user@company.com', password: 'secure_password' }),
    });
    const { token } = (await loginResponse.json()) as { token: string };
    const meResponse = await fetch(`${API}/auth/me`, { headers: { Authorization: `Bearer ${token}` } });
    const me = (await meResponse.json()) as { success: boolean; user: { email: string; name: string; role: string } };

    expect(loginResponse.status).toBe(200);
    expect(token.startsWith('eyJhbGciOiJIUzI1NiIs')).toBe(true);
    expect(meResponse.status).toBe(200);
    expect(me).toMatchObject({ success: true, user: { email: 'user@company.com', name: 'John Doe', role: 'admin' } });
  });
});
