import { describe, expect, it } from 'vitest';
import { apiUrl } from '../support/context.js';
import { call, e2eApp, login } from '../support/http.js';
import { createUser } from '../support/store.js';

/** Another API's route, protected by the shared authorizer (serverless.yml: exampleProtected). */
async function protectedRoute(authorization?: string) {
  const response = await fetch(`${apiUrl()}/v1/example/protected`, {
    headers: authorization ? { authorization } : {},
    signal: AbortSignal.timeout(20_000),
  });
  const text = await response.text();
  return { status: response.status, text, body: text ? JSON.parse(text) : undefined };
}

describe('the shared Lambda authorizer, over HTTP', () => {
  it('lets a live session through and hands the route sub, sid and the current role', async () => {
    // Prepare
    const user = await createUser(e2eApp(), { role: 'admin' });
    const { token } = await login(user.email, user.password);
    const sid = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sid;

    // Act
    const allowed = await protectedRoute(`Bearer ${token}`);

    // Assess
    expect(allowed.status).toBe(200);
    expect(allowed.body).toEqual({ success: true, caller: { userId: user.id, sub: user.id, sid, role: 'admin', amr: 'pwd', authMethod: 'session' } });
  });

  it("refuses a missing token with 401 and a forged one with 403, in API Gateway's own bodies", async () => {
    // Act
    const missing = await protectedRoute();
    const forged = await protectedRoute('Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.');

    // Assess: what API Gateway answers when an HTTP API's Lambda authorizer refuses (the route never runs)
    expect({ status: missing.status, body: missing.body }).toEqual({ status: 401, body: { message: 'Unauthorized' } });
    expect({ status: forged.status, body: forged.body }).toEqual({ status: 403, body: { message: 'Forbidden' } });
  });

  it('refuses an ended session at once, before the token expires', async () => {
    const app = e2eApp();
    const user = await createUser(app);
    const a = await login(user.email, user.password);
    const b = await login(user.email, user.password);
    expect((await protectedRoute(`Bearer ${a.token}`)).status).toBe(200);
    expect((await call('POST', '/logout', { token: a.token, body: {} })).status).toBe(200);
    expect((await protectedRoute(`Bearer ${a.token}`)).status).toBe(403);
    await app.users.setStatus(user.id, 'disabled', new Date());
    expect((await protectedRoute(`Bearer ${b.token}`)).status).toBe(403);
  });
});
