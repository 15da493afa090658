import { describe, expect, it } from 'vitest';
import { ApiError } from '../../lib/platform/errors.js';
import {
  MAX_EMAIL_LENGTH,
  isEmail,
  optionalString,
  parseJsonObject,
  requiredEmail,
  requiredString,
  type JsonObject,
} from '../../lib/http/validation.js';

/** Run `act` and return the invalid_request ApiError it must throw. */
function invalidRequest(act: () => unknown): ApiError {
  try {
    act();
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('invalid_request');
    expect((error as ApiError).status).toBe(400);
    return error as ApiError;
  }
  return expect.fail('expected an invalid_request ApiError');
}

describe('parseJsonObject', () => {
  it('parses a JSON object', () => {
    expect(parseJsonObject('{"email":"a@b.co","n":1}')).toEqual({ email: 'a@b.co', n: 1 });
  });

  it.each([
    ['undefined', undefined],
    ['empty', ''],
    ['white space', ' \n\t '],
  ])('refuses a missing body (%s)', (_case, raw) => {
    expect(invalidRequest(() => parseJsonObject(raw)).message).toBe('The request body must be a JSON object.');
  });

  it.each([
    ['undefined', undefined],
    ['empty', ''],
    ['white space', '  '],
  ])('reads a missing body (%s) as {} when empty is allowed', (_case, raw) => {
    expect(parseJsonObject(raw, { allowEmpty: true })).toEqual({});
  });

  it.each(['null', '[]', '[{"email":"a@b.co"}]', '"str"', '1', 'true'])('refuses %s, which is JSON but not an object', (raw) => {
    expect(invalidRequest(() => parseJsonObject(raw)).message).toBe('The request body must be a JSON object.');
  });

  it('refuses a non-object even when empty is allowed', () => {
    invalidRequest(() => parseJsonObject('null', { allowEmpty: true }));
  });

  it.each(['{', '{"a":}', "{'a':1}", 'email=a@b.co', '{"a":1}}'])('refuses malformed JSON %s', (raw) => {
    expect(invalidRequest(() => parseJsonObject(raw)).message).toBe('The request body is not valid JSON.');
  });
});

describe('requiredString', () => {
  const MAX = 10;

  it('returns the string as given', () => {
    expect(requiredString({ name: ' value ' }, 'name', MAX)).toBe(' value ');
  });

  it.each<[string, JsonObject, string]>([
    ['missing', {}, 'The field "name" is required.'],
    ['null', { name: null }, 'The field "name" is required.'],
    ['a number', { name: 42 }, 'The field "name" must be a string.'],
    ['an operator object', { name: { $ne: null } }, 'The field "name" must be a string.'],
    ['an array', { name: ['a'] }, 'The field "name" must be a string.'],
    ['empty', { name: '' }, 'The field "name" must not be empty.'],
    ['too long', { name: 'x'.repeat(MAX + 1) }, 'The field "name" must be at most 10 characters.'],
  ])('refuses a field that is %s, naming it', (_case, body, message) => {
    expect(invalidRequest(() => requiredString(body, 'name', MAX)).message).toBe(message);
  });

  it('accepts exactly the maximum length', () => {
    expect(requiredString({ name: 'x'.repeat(MAX) }, 'name', MAX)).toHaveLength(MAX);
  });

  it('refuses an operator object that arrives through parseJsonObject', () => {
    // Prepare
    const body = parseJsonObject('{"email":{"$ne":null}}');

    // Act + Assess
    expect(invalidRequest(() => requiredString(body, 'email', 320)).message).toContain('"email"');
  });
});

describe('optionalString', () => {
  it('is undefined when absent and validated when present', () => {
    expect(optionalString({}, 'name', 5)).toBeUndefined();
    expect(optionalString({ name: 'abc' }, 'name', 5)).toBe('abc');
    expect(invalidRequest(() => optionalString({ name: 7 }, 'name', 5)).message).toContain('"name"');
  });
});

describe('requiredEmail', () => {
  it('trims surrounding white space', () => {
    expect(requiredEmail({ email: '  user@company.com \n' }, 'email')).toBe('user@company.com');
  });

  it.each([
    ['no @', 'user.company.com'],
    ['no dot in the domain', 'user@company'],
    ['two @', 'user@@company.com'],
    ['a space inside', 'us er@company.com'],
    ['a NUL byte', 'user\u0000@company.com'],
    ['a trailing NUL byte', 'user@company.com\u0000'],
    ['a control character', 'user@company.com\u0007'],
    ['an empty local part', '@company.com'],
    ['only white space', '   '],
  ])('refuses an address with %s, naming the field', (_case, email) => {
    expect(invalidRequest(() => requiredEmail({ email }, 'email')).message).toBe('The field "email" must be an email address.');
  });

  it('refuses 10 000 characters before matching them', () => {
    // Prepare
    const email = `${'a'.repeat(10_000)}@company.com`;

    // Act + Assess
    expect(invalidRequest(() => requiredEmail({ email }, 'email')).message).toBe('The field "email" must be at most 320 characters.');
  });

  it('refuses an address longer than 254 characters', () => {
    // Prepare
    const email = `${'a'.repeat(MAX_EMAIL_LENGTH - '@b.co'.length + 1)}@b.co`;
    expect(email).toHaveLength(MAX_EMAIL_LENGTH + 1);

    // Act + Assess
    invalidRequest(() => requiredEmail({ email }, 'email'));
    expect(requiredEmail({ email: email.slice(1) }, 'email')).toHaveLength(MAX_EMAIL_LENGTH);
  });

  it('refuses a non-string email', () => {
    expect(invalidRequest(() => requiredEmail({ email: ['user@company.com'] }, 'email')).message).toBe('The field "email" must be a string.');
  });

  it('agrees with isEmail', () => {
    expect(isEmail('user@company.com')).toBe(true);
    expect(isEmail('user@company')).toBe(false);
  });
});
