import { describe, expect, it } from 'vitest';
import { contractViolation } from '../support/openapi.js';

const user = { id: 'usr_AAAAAAAAAAAAAAAAAAAAAA', email: 'a@b.co', name: 'A', role: 'user', created_at: '2026-01-01T00:00:00Z', last_login: null, mfa_enabled: false };

describe('the openapi.yaml contract check used by the e2e tests', () => {
  it('accepts documented responses', () => {
    expect(contractViolation('GET', '/v1/auth/me', 200, { success: true, user })).toBeUndefined();
    expect(contractViolation('POST', '/v1/auth/login', 401, { success: false, error: { code: 'invalid_credentials', message: 'x' } })).toBeUndefined();
    expect(contractViolation('POST', '/v1/auth/logout', 200, { success: true })).toBeUndefined();
  });

  it('tells a second-factor challenge from an error, and holds each to its own fields', () => {
    const challenge = { success: false, error: { code: 'mfa_required', message: 'x' }, mfa_token: `mt_${'A'.repeat(64)}`, mfa_expires_in: 300 };
    expect(contractViolation('POST', '/v1/auth/login', 401, challenge)).toBeUndefined();
    expect(contractViolation('POST', '/v1/auth/login', 401, { ...challenge, error: { code: 'mfa_enrollment_required', message: 'x' } })).toBeUndefined();
    // A challenge without its token, or an ordinary error with one, is neither shape
    expect(contractViolation('POST', '/v1/auth/login', 401, { ...challenge, mfa_token: undefined })).toBeDefined();
    expect(contractViolation('POST', '/v1/auth/login', 401, { ...challenge, error: { code: 'invalid_credentials', message: 'x' } })).toBeDefined();
  });

  it('holds the sign-in answers that add a field to exactly that field', () => {
    const signIn = {
      success: true,
      token: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2ln',
      token_type: 'Bearer',
      expires_in: 3600,
      refresh_token: `rt_${'A'.repeat(86)}`,
      refresh_expires_in: 10,
      user,
      device_token: `dt_${'A'.repeat(64)}`,
    };
    expect(contractViolation('POST', '/v1/auth/mfa/verify', 200, signIn)).toBeUndefined();
    expect(contractViolation('POST', '/v1/auth/mfa/verify', 200, { ...signIn, recovery_codes_left: 9 })).toBeUndefined();
    expect(contractViolation('POST', '/v1/auth/mfa/verify', 200, { ...signIn, extra: 1 })).toMatch(/unevaluated/);
    expect(contractViolation('POST', '/v1/auth/login', 200, { ...signIn, recovery_codes_left: 9 })).toMatch(/unevaluated/);
    const codes = Array.from({ length: 10 }, () => 'abcd-efgh-jkmn');
    expect(contractViolation('POST', '/v1/auth/mfa/totp/activate', 200, { success: true, recovery_codes: codes })).toBeUndefined();
    expect(contractViolation('POST', '/v1/auth/mfa/totp/activate', 200, { ...signIn, recovery_codes: codes })).toBeUndefined();
    expect(contractViolation('POST', '/v1/auth/mfa/totp/activate', 200, { success: true, recovery_codes: codes.slice(1) })).toBeDefined();
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
