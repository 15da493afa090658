import { describe, expect, it } from 'vitest';
import { parseSigningKeys } from '../../lib/platform/config.js';
import { ApiError } from '../../lib/platform/errors.js';
import { FetchedKeyRing, MAX_STALE_SECONDS, MIN_REFETCH_SECONDS } from '../../lib/auth/signing-keys.js';

const KEY = (n: number) => `key-${n}-`.padEnd(40, 'x');
const ring = (...kids: string[]) => JSON.stringify(Object.fromEntries(kids.map((kid, i) => [kid, KEY(i)])));

/**
 * A key source the test drives: what SSM holds now, whether it is down, and fetches that stay
 * open until the test lets them finish.
 */
function source(initial: string) {
  const state = {
    value: initial,
    down: false,
    fetches: 0,
    /** When set, fetches wait for `release()`. */
    hold: false,
    pending: [] as Array<() => void>,
  };
  const release = () => state.pending.splice(0).forEach((resolve) => resolve());
  const fetch = async () => {
    state.fetches++;
    if (state.hold) await new Promise<void>((resolve) => state.pending.push(resolve));
    if (state.down) throw Object.assign(new Error('SSM is down'), { name: 'ThrottlingException' });
    return state.value;
  };
  return { state, release, fetch };
}

function keyRing(fetch: () => Promise<string>, clock: { now: number }) {
  return new FetchedKeyRing({ fetch, parse: (raw) => parseSigningKeys(raw, 'JWT_SECRET_PARAMETER'), cacheSeconds: 300, source: '/test', clock: () => new Date(clock.now) });
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

async function failure(promise: Promise<unknown>): Promise<ApiError> {
  return promise.then(
    () => expect.fail('expected a failure'),
    (error: ApiError) => error,
  );
}

describe('FetchedKeyRing', () => {
  it('makes one fetch for requests that arrive together at a cold start', async () => {
    // Prepare
    const ssm = source(ring('k1'));
    ssm.state.hold = true;
    const keys = keyRing(ssm.fetch, { now: 0 });

    // Act
    const waiting = [keys.current(), keys.current(), keys.including('k1')];
    await flush();
    ssm.release();
    const rings = await Promise.all(waiting);

    // Assess
    expect(ssm.state.fetches).toBe(1);
    expect(rings.map((r) => r.currentKid)).toEqual(['k1', 'k1', 'k1']);
  });

  it('serves the cached ring without fetching until the cache expires, then refreshes it in the background', async () => {
    // Prepare
    const clock = { now: 0 };
    const ssm = source(ring('k1'));
    const keys = keyRing(ssm.fetch, clock);
    await keys.current();

    // Act
    clock.now = 299_000;
    const cached = await keys.current();
    const fetchesWhileCached = ssm.state.fetches;
    ssm.state.value = ring('k2', 'k1');
    ssm.state.hold = true;
    clock.now = 301_000;
    const servedDuringRefresh = await keys.current();
    ssm.release();
    await flush();
    const afterRefresh = await keys.current();

    // Assess
    expect(cached.currentKid).toBe('k1');
    expect(fetchesWhileCached).toBe(1);
    expect(servedDuringRefresh.currentKid).toBe('k1');
    expect(ssm.state.fetches).toBe(2);
    expect(afterRefresh.currentKid).toBe('k2');
  });

  it('waits for a fetch when a token names an unknown kid, but at most once per MIN_REFETCH_SECONDS', async () => {
    // Prepare
    const clock = { now: 0 };
    const ssm = source(ring('k1'));
    const keys = keyRing(ssm.fetch, clock);
    await keys.current();
    ssm.state.value = ring('k2', 'k1');

    // Act
    const tooSoon = await keys.including('k2');
    clock.now = MIN_REFETCH_SECONDS * 1000;
    const fetched = await keys.including('k2');
    const forged = [];
    for (let i = 0; i < 10; i++) forged.push(await keys.including(`forged-${i}`));

    // Assess
    expect(tooSoon.keys.has('k2')).toBe(false);
    expect(fetched.keys.has('k2')).toBe(true);
    expect(ssm.state.fetches).toBe(2);
  });

  it('waits for the background refresh in flight when a token names a kid the held ring lacks (a rotation seen by another container first)', async () => {
    // Prepare: the cache has just expired, SSM now holds a rotated ring, and its read is slow
    const clock = { now: 0 };
    const ssm = source(ring('k1'));
    const keys = keyRing(ssm.fetch, clock);
    await keys.current();
    ssm.state.value = ring('k2', 'k1');
    ssm.state.hold = true;
    clock.now = 301_000;

    // Act: the next request starts the background refresh; a token of the new key arrives meanwhile
    const served = await keys.current();
    const waiting = keys.including('k2');
    await flush();
    ssm.release();
    const withNewKey = await waiting;

    // Assess: served by the held ring, the new kid found in the same fetch: one fetch, no refusal
    expect(served.keys.has('k2')).toBe(false);
    expect(withNewKey.keys.has('k2')).toBe(true);
    expect(ssm.state.fetches).toBe(2);
  });

  it('still holds forged kids to one fetch per MIN_REFETCH_SECONDS after a refresh has failed', async () => {
    // Prepare: a ring is held, its cache has expired, and SSM is down
    const clock = { now: 0 };
    const ssm = source(ring('k1'));
    const keys = keyRing(ssm.fetch, clock);
    await keys.current();
    ssm.state.down = true;
    clock.now = 301_000;
    await keys.current();
    await flush();
    const afterFailedRefresh = ssm.state.fetches;

    // Act: a burst of forged kids within the next second
    for (let i = 0; i < 10; i++) {
      clock.now += 100;
      await keys.including(`forged-${i}`);
    }

    // Assess
    expect(afterFailedRefresh).toBe(2);
    expect(ssm.state.fetches).toBe(2);
  });

  it('answers 503 without a ring, and does not ask SSM again within MIN_REFETCH_SECONDS', async () => {
    // Prepare
    const clock = { now: 0 };
    const ssm = source(ring('k1'));
    ssm.state.down = true;
    const keys = keyRing(ssm.fetch, clock);

    // Act
    const first = await failure(keys.current());
    const second = await failure(keys.current());
    const fetchesDuringOutage = ssm.state.fetches;
    ssm.state.down = false;
    clock.now = MIN_REFETCH_SECONDS * 1000;
    const recovered = await keys.current();

    // Assess
    expect(first).toBeInstanceOf(ApiError);
    expect(first).toMatchObject({ code: 'service_unavailable', status: 503 });
    expect((first as { cause?: Error }).cause?.message).toBe('SSM is down');
    expect(second).toMatchObject({ code: 'service_unavailable' });
    expect(fetchesDuringOutage).toBe(1);
    expect(recovered.currentKid).toBe('k1');
  });

  it('stops trusting a ring it could not confirm for MAX_STALE_SECONDS', async () => {
    // Prepare
    const clock = { now: 0 };
    const ssm = source(ring('k1'));
    const keys = keyRing(ssm.fetch, clock);
    await keys.current();
    ssm.state.down = true;

    // Act
    clock.now = (MAX_STALE_SECONDS - 1) * 1000;
    const stillServed = await keys.current();
    await flush();
    clock.now = MAX_STALE_SECONDS * 1000;
    const refused = await failure(keys.current());

    // Assess
    expect(stillServed.currentKid).toBe('k1');
    expect(refused).toMatchObject({ code: 'service_unavailable' });
  });

  it('drops a retired key once the refreshed ring arrives', async () => {
    // Prepare
    const clock = { now: 0 };
    const ssm = source(ring('k2', 'k1'));
    const keys = keyRing(ssm.fetch, clock);
    await keys.current();
    ssm.state.value = ring('k2');

    // Act
    clock.now = 301_000;
    await keys.current();
    await flush();
    const after = await keys.including('k1');

    // Assess
    expect(after.keys.has('k1')).toBe(false);
    expect(after.currentKid).toBe('k2');
  });
});
