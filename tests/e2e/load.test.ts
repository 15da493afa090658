import { describe, expect, it } from 'vitest';
import { call, e2eApp, login } from '../support/http.js';
import { createUser } from '../support/store.js';

describe('concurrency over HTTP', () => {
  it('serves 200 concurrent /auth/me with zero errors', async () => {
    const user = await createUser(e2eApp());
    const { token } = await login(user.email, user.password);
    const responses = await Promise.all(Array.from({ length: 200 }, () => call('GET', '/me', { token })));
    expect(responses.filter((response) => response.status !== 200).map((response) => response.text)).toEqual([]);
    expect(new Set(responses.map((response) => response.body.user.id))).toEqual(new Set([user.id]));
  });

  it('serves 20 concurrent logins with zero errors, each its own session', async () => {
    const user = await createUser(e2eApp());
    const responses = await Promise.all(Array.from({ length: 20 }, () => call('POST', '/login', { body: { email: user.email, password: user.password } })));
    expect(responses.filter((response) => response.status !== 200).map((response) => response.text)).toEqual([]);
    const sessions = new Set(responses.map((response) => JSON.parse(Buffer.from(response.body.token.split('.')[1], 'base64url').toString()).sid));
    expect(sessions.size).toBe(20);
  });
});
