import { describe, expect, it } from 'vitest';
import type { Caller } from '../../lib/auth-service.js';
import { loginService } from '../../lib/login-service.js';
import { countCalls, createUser, testApp } from '../support/store.js';

/**
 * The DynamoDB round-trip budget per request, counted at the SDK boundary over the real
 * dynalite (every command the app's client sends, retries included). A change that adds a
 * call to a hot path fails here; the README lists what each call is.
 */
const BUDGET = { me: 1, refresh: 2, logoutLocal: 2, login: 5 };

const caller = (ip: string): Caller => ({ requestId: 'req', sourceIp: ip, userAgent: 'vitest' });

describe('DynamoDB round trips per request', () => {
  it('stays within budget on every path', async () => {
    // Prepare
    const app = await testApp();
    const counter = countCalls(app);
    const user = await createUser(app);
    const measure = async (action: () => Promise<unknown>) => {
      counter.reset();
      await action().catch(() => undefined);
      return [...counter.calls];
    };

    // Act
    let pair = await loginService(app).login(user.email, user.password, caller('198.51.100.80'));
    const loginSuccess = await measure(async () => (pair = await loginService(app).login(user.email, user.password, caller('198.51.100.80'))));
    const loginWrongPassword = await measure(() => loginService(app).login(user.email, 'wrong-password', caller('198.51.100.81')));
    const loginUnknown = await measure(() => loginService(app).login('nobody@example.com', 'wrong-password', caller('198.51.100.82')));
    for (let i = 0; i < 5; i++) await loginService(app).login(user.email, 'wrong-password', caller('198.51.100.83')).catch(() => undefined);
    const loginLocked = await measure(() => loginService(app).login(user.email, user.password, caller('198.51.100.83')));
    const loginAfterFailures = await measure(() => loginService(app).login(user.email, user.password, caller('198.51.100.81')));
    const me = await measure(() => app.auth.me(pair.token));
    const refresh = await measure(async () => (pair = await app.auth.refresh(pair.refresh_token, caller('198.51.100.80'))));
    const logout = await measure(() => app.auth.logout(pair.token, 'local', caller('198.51.100.80')));

    // Assess
    expect(me).toEqual(['BatchGetItemCommand']);
    expect(refresh).toEqual(['BatchGetItemCommand', 'UpdateItemCommand']);
    expect(logout.length).toBeLessThanOrEqual(BUDGET.logoutLocal);
    for (const path of [loginSuccess, loginWrongPassword, loginUnknown, loginLocked, loginAfterFailures]) {
      expect(path.length).toBeGreaterThan(0);
      expect(path.length).toBeLessThanOrEqual(BUDGET.login);
    }
    expect(loginLocked).toEqual(['BatchGetItemCommand']);
    expect(me.length).toBe(BUDGET.me);
    expect(refresh.length).toBe(BUDGET.refresh);
  });
});
