import * as zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32, crc32Base64url } from '../../lib/platform/checksum.js';
import { API_KEY_LENGTH, looksLikeApiKey, newApiKey, newApiKeyId, newUserId, parseApiKey, parseApiKeyId } from '../../lib/platform/ids.js';
import { sessionBearerToken } from '../../lib/http/http.js';
import { apiKeyRequestOf } from '../../lib/http/validation.js';

describe('CRC-32', () => {
  it('gives the standard check value and agrees with zlib where this Node has it', () => {
    // The CRC-32/ISO-HDLC check value of "123456789"
    expect(crc32('123456789')).toBe(0xcbf43926);
    expect(crc32('')).toBe(0);
    const native = (zlib as unknown as { crc32?: (data: Buffer) => number }).crc32;
    for (let i = 0; i < 50; i++) {
      const data = randomBytes(i * 7);
      if (native) expect(crc32(data)).toBe(native(data));
    }
    expect(crc32Base64url('123456789')).toBe(Buffer.from('cbf43926', 'hex').toString('base64url'));
  });
});

describe('API keys: vak_ + base64url(key id ‖ 256 random bits) + a CRC-32 checksum', () => {
  it('carries its key id (and so its user and slot), and hashes the whole key', () => {
    // Prepare
    const userId = newUserId();
    const keyId = newApiKeyId(userId, 7);

    // Act
    const made = newApiKey(keyId);
    const parsed = parseApiKey(made.key);

    // Assess
    expect(made.key).toMatch(/^vak_[A-Za-z0-9_-]{80}$/);
    expect(made.key).toHaveLength(API_KEY_LENGTH);
    expect(parsed).toEqual({ keyId, userId, slot: 7, hash: made.hash });
    const body = Buffer.from(made.key.slice(4, -6), 'base64url');
    expect(body.subarray(0, -32).toString('base64url')).toBe(keyId.slice(3));
    expect(body.subarray(-32)).toHaveLength(32);
    expect(made.key.slice(-6)).toBe(crc32Base64url(made.key.slice(0, -6)));
    expect(newApiKey(keyId).key).not.toBe(made.key);
    expect(() => newApiKey('ak_nope')).toThrow(TypeError);
  });

  it('refuses a wrong checksum, any changed character, and any other shape, without I/O', () => {
    const { key } = newApiKey(newApiKeyId(newUserId(), 0));
    // Every single-character change of the key is caught (by the checksum, or by the shape)
    for (let i = 4; i < key.length; i++) {
      const changed = key.slice(0, i) + (key[i] === 'A' ? 'B' : 'A') + key.slice(i + 1);
      expect(parseApiKey(changed), `position ${i}`).toBeUndefined();
    }
    expect(parseApiKey(`${key.slice(0, -6)}AAAAAA`)).toBeUndefined();
    expect(parseApiKey(key.slice(0, -1))).toBeUndefined();
    expect(parseApiKey(`${key}A`)).toBeUndefined();
    expect(parseApiKey(key.replace('vak_', 'vak-'))).toBeUndefined();
    expect(parseApiKey('')).toBeUndefined();
    expect(parseApiKey(`vak_${'A'.repeat(74)}`)).toBeUndefined();
  });

  it('refuses a well-checksummed key whose slot is out of range', () => {
    const body = Buffer.concat([randomBytes(16), Buffer.of(200), randomBytes(6), randomBytes(32)]).toString('base64url');
    const unchecked = `vak_${body}`;
    expect(parseApiKey(unchecked + crc32Base64url(unchecked))).toBeUndefined();
  });

  it('tells a key from an access token by its prefix alone', () => {
    expect(looksLikeApiKey(newApiKey(newApiKeyId(newUserId(), 1)).key)).toBe(true);
    expect(looksLikeApiKey('vak_garbage')).toBe(true);
    expect(looksLikeApiKey('eyJhbGciOiJIUzI1NiIs.x.y')).toBe(false);
  });
});

describe('API key ids: ak_ + base64url(user id ‖ slot ‖ 48 random bits)', () => {
  it('round-trips user and slot, and refuses anything else', () => {
    const userId = newUserId();
    const id = newApiKeyId(userId, 3);
    expect(id).toMatch(/^ak_[A-Za-z0-9_-]{31}$/);
    expect(parseApiKeyId(id)).toEqual({ userId, slot: 3 });
    for (const bad of ['', 'ak_', id.slice(0, -1), `${id}A`, id.replace('ak_', 'ax_'), 'x', `ak_${'A'.repeat(30)}~`]) {
      expect(parseApiKeyId(bad), bad).toBeUndefined();
    }
  });
});

describe('the session-only bearer', () => {
  const event = (authorization: string) => ({ headers: { authorization } }) as never;

  it('refuses an API key with 403 session_required, and passes an access token on', () => {
    expect(() => sessionBearerToken(event(`Bearer ${newApiKey(newApiKeyId(newUserId(), 0)).key}`))).toThrow(expect.objectContaining({ code: 'session_required', status: 403 }));
    expect(() => sessionBearerToken(event('Bearer vak_x'))).toThrow(expect.objectContaining({ code: 'session_required' }));
    expect(sessionBearerToken(event('Bearer eyJ.a.b'))).toBe('eyJ.a.b');
    expect(() => sessionBearerToken(event(''))).toThrow(expect.objectContaining({ code: 'invalid_token' }));
  });
});

describe('a new key request', () => {
  it('takes a name, 1-365 days (90 by default) and a role', () => {
    expect(apiKeyRequestOf({ name: 'ci' })).toEqual({ name: 'ci', expiresInDays: 90, role: undefined });
    expect(apiKeyRequestOf({ name: 'x'.repeat(64), expires_in_days: 365, role: 'user' })).toEqual({ name: 'x'.repeat(64), expiresInDays: 365, role: 'user' });
    for (const bad of [{}, { name: '' }, { name: 'x'.repeat(65) }, { name: 'a', expires_in_days: 0 }, { name: 'a', expires_in_days: 366 }, { name: 'a', expires_in_days: 1.5 }, { name: 'a', expires_in_days: '30' }, { name: 'a', role: 'root' }, { name: 7 }]) {
      expect(() => apiKeyRequestOf(bad), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    }
  });
});
