import { describe, expect, it } from 'vitest';
import { contractViolation } from '../support/openapi.js';

const user = { id: 'usr_AAAAAAAAAAAAAAAAAAAAAA', email: 'a@b.co', name: 'A', role: 'user', created_at: '2026-01-01T00:00:00Z', last_login: null };

describe('the openapi.yaml contract check used by the e2e tests', () => {
  it('accepts documented responses', () => {
    expect(contractViolation('GET', '/v1/auth/me', 200, { success: true, user })).toBeUndefined();
    expect(contractViolation('POST', '/v1/auth/login', 401, { success: false, error: { code: 'invalid_credentials', message: 'x' } })).toBeUndefined();
    expect(contractViolation('POST', '/v1/auth/logout', 200, { success: true })).toBeUndefined();
  });

  it('rejects undocumented statuses, paths, fields and codes', () => {
    expect(contractViolation('GET', '/v1/auth/me', 429, {})).toMatch(/does not list/);
    expect(contractViolation('GET', '/v1/auth/nope', 200, {})).toMatch(/not in openapi.yaml/);
    expect(contractViolation('GET', '/v1/auth/me', 200, { success: true, user: { ...user, password_hash: 'x' } })).toMatch(/additional/);
    expect(contractViolation('POST', '/v1/auth/login', 401, { success: false, error: { code: 'made_up', message: 'x' } })).toMatch(/allowed values/);
    expect(contractViolation('POST', '/v1/auth/refresh', 200, { success: true })).toMatch(/required/);
  });
});

describe('path templates', () => {
  it('holds a concrete path to the template it falls under', () => {
    expect(contractViolation('DELETE', '/v1/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA', 200, { success: true })).toBeUndefined();
    expect(contractViolation('DELETE', '/v1/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA', 404, { success: false, error: { code: 'session_not_found', message: 'x' } })).toBeUndefined();
    expect(contractViolation('DELETE', '/v1/auth/sessions/x', 200, { success: true, extra: 1 })).toMatch(/additional/);
    expect(contractViolation('DELETE', '/v1/auth/sessions/a/b', 200, { success: true })).toMatch(/not in openapi.yaml/);
  });
});
