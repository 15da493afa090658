import { describe, expect, it } from 'vitest';
import { idTokenAlgorithm, issuerProblem } from '../../lib/auth/identity-providers.js';
import { isAllowedRedirectUri } from '../../lib/auth/sso-service.js';
import { loggedOutSince, idpLogoutKey, type Connection } from '../../lib/store/sso.js';
import { EnforcedDomains } from '../../lib/store/sso-enforcement.js';

const ALLOWED = ['https://app.example.com/sso/done', 'http://127.0.0.1/callback', 'http://[::1]/callback', 'http://127.0.0.1:7000/fixed'];

describe('isAllowedRedirectUri', () => {
  it.each([
    ['https://app.example.com/sso/done', true],
    ['http://127.0.0.1:53124/callback', true],
    ['http://127.0.0.1/callback', true],
    ['http://[::1]:8080/callback', true],
    ['http://127.0.0.1:7000/fixed', true],
    // An entry with a port matches that port only.
    ['http://127.0.0.1:7001/fixed', false],
    ['https://app.example.com/sso/done/', false],
    ['https://app.example.com/sso/done?x=1', false],
    ['https://app.example.com/sso/done#frag', false],
    ['https://APP.example.com:443/sso/done', false],
    ['http://app.example.com/sso/done', false],
    ['http://localhost:53124/callback', false],
    ['http://127.0.0.1:53124/callback/other', false],
    ['http://user@127.0.0.1:53124/callback', false],
    ['https://127.0.0.1:53124/callback', false],
    ['not a url', false],
  ])('%s -> %s', (candidate, allowed) => {
    expect(isAllowedRedirectUri(candidate, ALLOWED)).toBe(allowed);
  });
});

describe('issuerProblem', () => {
  it('allows https always, loopback http outside production only, nothing else', () => {
    expect(issuerProblem('https://login.example.com/tenant/v2.0', { allowLoopback: false })).toBeUndefined();
    expect(issuerProblem('http://127.0.0.1:3001', { allowLoopback: true })).toBeUndefined();
    expect(issuerProblem('http://[::1]:3001', { allowLoopback: true })).toBeUndefined();
    expect(issuerProblem('http://127.0.0.1:3001', { allowLoopback: false })).toMatch(/https in production/);
    expect(issuerProblem('http://idp.example.com', { allowLoopback: true })).toMatch(/must be https/);
    expect(issuerProblem('https://idp.example.com?x=1', { allowLoopback: true })).toMatch(/no query/);
    expect(issuerProblem('idp.example.com', { allowLoopback: true })).toMatch(/not a URL/);
  });
});

describe('EnforcedDomains', () => {
  it('reads a domain once per 30 s, by the email\'s domain, any case', async () => {
    // Prepare
    let reads = 0;
    let now = 0;
    let enforce = true;
    const domains = new EnforcedDomains({ connection: async () => (reads++, { enforce } as Connection) }, () => now);

    // Act
    const first = await domains.enforces('a@Example.ORG');
    const cached = await domains.enforces('b@example.org');
    enforce = false;
    now += 29_999;
    const stillCached = await domains.enforces('c@example.org');
    now += 1;
    const reread = await domains.enforces('c@example.org');

    // Assess
    expect([first, cached, stillCached, reread]).toEqual([true, true, true, false]);
    expect(reads).toBe(2);
  });

  it('does not remember a failed read', async () => {
    let calls = 0;
    const domains = new EnforcedDomains({ connection: async () => { calls++; if (calls === 1) throw new Error('store down'); return undefined; } }, () => 0);
    await expect(domains.enforces('a@example.org')).rejects.toThrow('store down');
    await new Promise((done) => setTimeout(done, 0));
    await expect(domains.enforces('a@example.org')).resolves.toBe(false);
  });
});

describe('IdentityProviders', () => {
  it('never fetches an http issuer when loopback issuers are not allowed (production)', async () => {
    const { IdentityProviders } = await import('../../lib/auth/identity-providers.js');
    const providers = new IdentityProviders({ clock: () => new Date(), allowLoopback: false });
    await expect(providers.discover('http://127.0.0.1:1')).rejects.toThrow(/https in production/);
    await expect(providers.discover('http://idp.example.com')).rejects.toThrow(/must be https/);
  });
});

describe('idTokenAlgorithm', () => {
  it('pins RS256 when offered or unsaid, else the first asymmetric algorithm offered, and refuses HS*/none only', () => {
    expect(idTokenAlgorithm({})).toBe('RS256');
    expect(idTokenAlgorithm({ id_token_signing_alg_values_supported: ['HS256', 'RS256'] })).toBe('RS256');
    expect(idTokenAlgorithm({ id_token_signing_alg_values_supported: ['HS256', 'ES256', 'PS256'] })).toBe('ES256');
    expect(() => idTokenAlgorithm({ id_token_signing_alg_values_supported: ['HS256', 'none'] })).toThrow(/asymmetric/);
  });
});

describe('loggedOutSince', () => {
  it('refuses what was made at or before a logout of the issuer, or of the IdP session it came from', () => {
    // Prepare
    const issuer = 'https://idp.example';
    const user = { idpLogouts: { [idpLogoutKey(issuer)]: 1000, [idpLogoutKey(issuer, 'sid-1')]: 5000 } };

    // Act / Assess
    expect(loggedOutSince(user, { issuer }, 999)).toBe(true);
    expect(loggedOutSince(user, { issuer }, 1000)).toBe(true);
    expect(loggedOutSince(user, { issuer }, 1001)).toBe(false);
    expect(loggedOutSince(user, { issuer, sid: 'sid-1' }, 4000)).toBe(true);
    expect(loggedOutSince(user, { issuer, sid: 'sid-2' }, 4000)).toBe(false);
    expect(loggedOutSince(user, { issuer: 'https://other.example' }, 1)).toBe(false);
    expect(loggedOutSince({}, { issuer }, 1)).toBe(false);
  });
});
