import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MIN_SECRET_BYTES, parseSigningKeys, signingKeyEntries } from '../../lib/platform/config.js';
import { KeyRingError, formatRing, kidCreatedAt, newKid, newSecret, retire, rotate, type RingEntries } from '../../scripts/key-ring.js';

const SECRET_A = 'a-perfectly-good-secret-of-40-bytes-long!';
const SECRET_B = 'another-perfectly-good-secret-of-44-bytes!!';
const SECRET_C = 'yet-another-perfectly-good-secret-of-45-bytes';

/** When the current key of RING became current, and how long previous keys must stay after that. */
const ROTATED_AT = new Date('2026-11-26T09:41:00Z');
const MIN_AGE_SECONDS = 3900;
const SAFE_AT = new Date('2026-11-26T10:46:00Z');

const CURRENT = 'k20261126T094100Z';
const PREVIOUS = 'k20260801T120000Z';
const LEGACY = 'e29Biolw';
const RING: RingEntries = [
  [CURRENT, SECRET_A],
  [PREVIOUS, SECRET_B],
  [LEGACY, SECRET_C],
];

/** Run `act` and return the KeyRingError it must throw. */
function keyRingError(act: () => unknown): KeyRingError {
  try {
    act();
  } catch (error) {
    expect(error).toBeInstanceOf(KeyRingError);
    return error as KeyRingError;
  }
  return expect.fail('expected a KeyRingError');
}

describe('newKid', () => {
  it('is "k" and the UTC time to the second, in compact ISO 8601', () => {
    // Act
    const kid = newKid(new Date('2026-11-26T09:41:00.123Z'), new Set());

    // Assess
    expect(kid).toBe('k20261126T094100Z');
  });

  it('ignores taken kids it does not collide with', () => {
    expect(newKid(new Date('2026-11-26T09:41:00.123Z'), new Set(['k20261126T094059Z', LEGACY]))).toBe('k20261126T094100Z');
  });

  it.each([
    [['k20261126T094100Z'], 'k20261126T094100Z-2'],
    [['k20261126T094100Z', 'k20261126T094100Z-2'], 'k20261126T094100Z-3'],
  ])('appends a counter when %j are taken', (taken, expected) => {
    // Act
    const kid = newKid(new Date('2026-11-26T09:41:00.999Z'), new Set(taken));

    // Assess
    expect(kid).toBe(expected);
  });

  it('makes kids that lib/platform/config.ts accepts, with the new kid current', () => {
    // Prepare
    const kid = newKid(new Date('2026-11-26T09:41:00.123Z'), new Set());

    // Act
    const keys = parseSigningKeys(formatRing([[kid, newSecret()]]));

    // Assess
    expect(keys.currentKid).toBe(kid);
    expect([...keys.keys.keys()]).toEqual([kid]);
  });

  it('makes kids lib/platform/config.ts accepts and kidCreatedAt reads back, for any time from 1970 to 9999 (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }),
        fc.boolean(),
        (now, collides) => {
          // Prepare
          const taken = new Set(collides ? [newKid(now, new Set())] : []);

          // Act
          const kid = newKid(now, taken);

          // Assess
          expect(parseSigningKeys(formatRing([[kid, SECRET_A]])).currentKid).toBe(kid);
          expect(kidCreatedAt(kid)?.getTime()).toBe(Math.floor(now.getTime() / 1000) * 1000);
        },
      ),
    );
  });
});

describe('kidCreatedAt', () => {
  it('reads back the second newKid was given', () => {
    // Prepare
    const kid = newKid(new Date('2026-11-26T09:41:00.123Z'), new Set());

    // Act
    const createdAt = kidCreatedAt(kid);

    // Assess
    expect(createdAt).toEqual(new Date('2026-11-26T09:41:00.000Z'));
  });

  it.each(['k20261126T094100Z-2', 'k20261126T094100Z-3', 'k20261126T094100Z-17'])('ignores the collision suffix of %s', (kid) => {
    expect(kidCreatedAt(kid)).toEqual(new Date('2026-11-26T09:41:00.000Z'));
  });

  it.each([
    'e29Biolw',
    'k1',
    'custom-kid',
    '',
    'k20261126T094100',
    'k20261126T0941Z',
    'k2026-11-26T09:41:00Z',
    'K20261126T094100Z',
    'xk20261126T094100Z',
    'k20261126T094100Zx',
    'k20261126T094100Z-',
    'k20261126T094100Z-x',
  ])('is undefined for "%s", which newKid does not make', (kid) => {
    expect(kidCreatedAt(kid)).toBeUndefined();
  });
});

describe('newSecret', () => {
  it('is base64url of at least 32 random bytes, and long enough for lib/platform/config.ts', () => {
    // Act
    const secret = newSecret();

    // Assess
    expect(secret).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Buffer.from(secret, 'base64url').length).toBeGreaterThanOrEqual(32);
    expect(new TextEncoder().encode(secret).length).toBeGreaterThanOrEqual(MIN_SECRET_BYTES);
  });

  it('differs on every call', () => {
    // Act
    const secrets = Array.from({ length: 20 }, () => newSecret());

    // Assess
    expect(new Set(secrets).size).toBe(20);
  });
});

describe('rotate', () => {
  it('puts a new key first and keeps every previous key, in order, with its secret', () => {
    // Prepare
    const before = structuredClone(RING);

    // Act
    const rotated = rotate(RING, new Date('2026-12-01T08:00:00.500Z'), 'the-new-secret-of-at-least-32-bytes!');

    // Assess
    expect(rotated).toEqual([['k20261201T080000Z', 'the-new-secret-of-at-least-32-bytes!'], ...before]);
    expect(RING).toEqual(before);
  });

  it('makes a new secret unless given one', () => {
    // Act
    const rotated = rotate(RING, new Date('2026-12-01T08:00:00Z'));

    // Assess
    const [kid, secret] = rotated[0]!;
    expect(kid).toBe('k20261201T080000Z');
    expect(Buffer.from(secret, 'base64url').length).toBeGreaterThanOrEqual(32);
    expect(RING.map(([, previous]) => previous)).not.toContain(secret);
    expect(rotated.slice(1)).toEqual(RING);
  });

  it('gives two rotations in the same second different kids', () => {
    // Prepare
    const once = rotate(RING, new Date('2026-12-01T08:00:00.100Z'));

    // Act
    const twice = rotate(once, new Date('2026-12-01T08:00:00.900Z'));

    // Assess
    expect(twice.map(([kid]) => kid)).toEqual(['k20261201T080000Z-2', 'k20261201T080000Z', CURRENT, PREVIOUS, LEGACY]);
    expect(parseSigningKeys(formatRing(twice)).currentKid).toBe('k20261201T080000Z-2');
  });
});

describe('formatRing', () => {
  it('writes JSON that lib/platform/config.ts reads back with the same kids, in the same order, with the same secrets', () => {
    // Prepare: kids whose alphabetical order is not the ring's
    const entries: RingEntries = [['k20261126T094100Z-2', SECRET_A], ...RING, ['custom-kid', 'a-hand-made-secret-of-more-than-32-bytes']];

    // Act
    const text = formatRing(entries);

    // Assess
    const keys = parseSigningKeys(text);
    expect(keys.currentKid).toBe('k20261126T094100Z-2');
    expect([...keys.keys.keys()]).toEqual(['k20261126T094100Z-2', CURRENT, PREVIOUS, LEGACY, 'custom-kid']);
    expect(signingKeyEntries(text)).toEqual(entries);
  });
});

describe('retire', () => {
  it('refuses to retire the current key', () => {
    // Act
    const error = keyRingError(() => retire(RING, { kid: CURRENT, now: SAFE_AT, minAgeSeconds: MIN_AGE_SECONDS, force: true }));

    // Assess
    expect(error.message).toContain(`"${CURRENT}" is the current signing key`);
    expect(error.message).toContain('rotate first');
  });

  it('refuses a kid that is not in the ring, and lists the ones that are', () => {
    // Act
    const error = keyRingError(() => retire(RING, { kid: 'k20250101T000000Z', now: SAFE_AT, minAgeSeconds: MIN_AGE_SECONDS }));

    // Assess
    expect(error.message).toContain('No key "k20250101T000000Z"');
    expect(error.message).toContain(`${CURRENT}, ${PREVIOUS}, ${LEGACY}`);
  });

  it.each([false, true])('refuses when the ring holds only the current key (force: %s)', (force) => {
    // Act
    const error = keyRingError(() => retire([[CURRENT, SECRET_A]], { now: SAFE_AT, minAgeSeconds: MIN_AGE_SECONDS, force }));

    // Assess
    expect(error.message).toContain(`Nothing to retire: the ring holds only the current key "${CURRENT}"`);
  });

  it.each([
    ['every previous key', undefined, `${PREVIOUS}, ${LEGACY}`],
    ['one key', LEGACY, LEGACY],
  ])('refuses %s until minAgeSeconds after the current key became current, and says when', (_case, kid, named) => {
    // Prepare
    const justBefore = new Date(SAFE_AT.getTime() - 1);

    // Act
    const error = keyRingError(() => retire(RING, { kid, now: justBefore, minAgeSeconds: MIN_AGE_SECONDS }));

    // Assess
    expect(error.message).toContain(`Tokens signed with ${named} may be valid until 2026-11-26T10:46:00.000Z`);
    expect(error.message).toContain(`"${CURRENT}" became current at ${ROTATED_AT.toISOString()}`);
    expect(error.message).toContain('--force');
  });

  it.each([
    ['exactly when it becomes safe', SAFE_AT],
    ['a second later', new Date('2026-11-26T10:46:01Z')],
    ['a year later', new Date('2027-11-26T10:46:00Z')],
  ])('retires %s', (_case, now) => {
    // Act
    const result = retire(RING, { now, minAgeSeconds: MIN_AGE_SECONDS });

    // Assess
    expect(result).toEqual({ entries: [[CURRENT, SECRET_A]], removed: [PREVIOUS, LEGACY] });
  });

  it('with a kid, removes only that key', () => {
    // Prepare
    const before = structuredClone(RING);

    // Act
    const result = retire(RING, { kid: PREVIOUS, now: SAFE_AT, minAgeSeconds: MIN_AGE_SECONDS });

    // Assess
    expect(result).toEqual({ entries: [[CURRENT, SECRET_A], [LEGACY, SECRET_C]], removed: [PREVIOUS] });
    expect(RING).toEqual(before);
  });

  it('without a kid, removes every previous key and keeps the current one', () => {
    // Act
    const result = retire(RING, { now: SAFE_AT, minAgeSeconds: MIN_AGE_SECONDS });

    // Assess
    expect(result.entries).toEqual([[CURRENT, SECRET_A]]);
    expect(result.removed).toEqual([PREVIOUS, LEGACY]);
  });

  it('needs force when it cannot tell how old the current key is', () => {
    // Prepare
    const ring: RingEntries = [['custom-kid', SECRET_A], [PREVIOUS, SECRET_B]];
    const longAfter = new Date('2030-01-01T00:00:00Z');

    // Act
    const error = keyRingError(() => retire(ring, { now: longAfter, minAgeSeconds: MIN_AGE_SECONDS }));

    // Assess
    expect(error.message).toContain('Cannot tell when "custom-kid" became current');
    expect(error.message).toContain(`${MIN_AGE_SECONDS} s`);
    expect(error.message).toContain('--force');
    expect(retire(ring, { now: longAfter, minAgeSeconds: MIN_AGE_SECONDS, force: true })).toEqual({
      entries: [['custom-kid', SECRET_A]],
      removed: [PREVIOUS],
    });
  });

  it.each([
    ['every previous key', undefined, [[CURRENT, SECRET_A]], [PREVIOUS, LEGACY]],
    ['one key', PREVIOUS, [[CURRENT, SECRET_A], [LEGACY, SECRET_C]], [PREVIOUS]],
  ])('with force, retires %s at once', (_case, kid, entries, removed) => {
    // Act
    const result = retire(RING, { kid, now: ROTATED_AT, minAgeSeconds: MIN_AGE_SECONDS, force: true });

    // Assess
    expect(result).toEqual({ entries, removed });
  });

  it('counts the age from the rotation newKid recorded, to the second, through a collision suffix', () => {
    // Prepare: two rotations in one second; the second kid carries "-2"
    const rotatedAt = new Date('2026-12-01T08:00:00.750Z');
    const ring = rotate(rotate(RING, rotatedAt), rotatedAt);
    const safeAt = new Date('2026-12-01T08:00:00.000Z').getTime() + MIN_AGE_SECONDS * 1000;

    // Act
    const error = keyRingError(() => retire(ring, { now: new Date(safeAt - 1), minAgeSeconds: MIN_AGE_SECONDS }));
    const result = retire(ring, { now: new Date(safeAt), minAgeSeconds: MIN_AGE_SECONDS });

    // Assess
    expect(error.message).toContain('may be valid until 2026-12-01T09:05:00.000Z');
    expect(result.entries.map(([kid]) => kid)).toEqual(['k20261201T080000Z-2']);
    expect(result.removed).toEqual(['k20261201T080000Z', CURRENT, PREVIOUS, LEGACY]);
  });
});

describe('kidCreatedAt on hand-edited kids', () => {
  it('is undefined for a kid of the right shape but a time that does not exist', () => {
    expect(kidCreatedAt('k20261399T999999Z')).toBeUndefined();
    expect(kidCreatedAt('k20260230T000000Z')).toBeUndefined();
  });

  it('so retire asks for --force instead of skipping the age check', () => {
    // Prepare
    const ring: RingEntries = [['k20261399T999999Z', 'a'.repeat(43)], ['old', 'b'.repeat(43)]];

    // Act
    const attempt = () => retire(ring, { now: new Date('2000-01-01T00:00:00Z'), minAgeSeconds: 3900 });

    // Assess
    expect(attempt).toThrow(/Cannot tell when "k20261399T999999Z" became current/);
  });
});
