import type { SigningKeys } from '../platform/config.js';
import { unavailable } from '../platform/errors.js';
import { describeError, log } from '../platform/log.js';
import { RingRefusedError } from './sealed-ring.js';
import type { Clock } from './tokens.js';

/**
 * Where the JWT signing keys come from. Every caller asks for the ring when it needs it, so a
 * ring held in SSM can change under a running Lambda (a key rotation) without a redeploy.
 */
export interface KeyRing {
  /** The ring to sign and verify with now. */
  current(): Promise<SigningKeys>;
  /**
   * The ring, fetched again first when it does not know `kid`: a token signed after a rotation
   * this container has not seen yet. Refetches are rate-limited, so unknown kids cannot flood SSM.
   */
  including(kid: string): Promise<SigningKeys>;
}

/** Keys given in the configuration (JWT_SECRET): the local stack and the tests. */
export class FixedKeyRing implements KeyRing {
  private readonly ring: Promise<SigningKeys>;

  constructor(keys: SigningKeys) {
    this.ring = Promise.resolve(keys);
  }

  current(): Promise<SigningKeys> {
    return this.ring;
  }

  including(): Promise<SigningKeys> {
    return this.ring;
  }
}

export interface FetchedKeyRingOptions {
  /**
   * Reads the ring's text: the SSM parameter's value, opened by KMS (lib/auth/sealed-ring.ts).
   * Throws RingRefusedError when the parameter holds a ring that was not sealed as it must be.
   */
  fetch: () => Promise<string>;
  /** Turns that text into keys; throws ConfigError on a malformed ring. */
  parse: (raw: string) => SigningKeys;
  /** How long a fetched ring is used as it is before it is fetched again. */
  cacheSeconds: number;
  /** What the log calls the source (the parameter name; never its value). */
  source: string;
  /** What the ring holds, for the log's event names (`signing_keys_loaded`, `mfa_keys_loaded`...); default signing_keys. */
  what?: 'signing_keys' | 'mfa_keys';
  clock?: Clock;
}

/** At most one fetch per this many seconds after the cold start, whatever the tokens say. */
export const MIN_REFETCH_SECONDS = 5;
/**
 * How long a ring may go unconfirmed while SSM cannot be read: beyond this a container stops
 * trusting it (a key retired meanwhile, say a leaked one, must not verify for ever) and answers 503.
 */
export const MAX_STALE_SECONDS = 3600;

/**
 * A ring read from SSM at the cold start (app() starts the read while the module loads) and cached for `cacheSeconds`.
 * - After that it is fetched again in the background while the held ring keeps serving; a
 *   failed refetch keeps the held ring, up to MAX_STALE_SECONDS after the last good read.
 * - A token naming a kid the ring lacks (a rotation this container has not seen) makes the
 *   request wait for a fetch.
 * - Fetches are single-flight and at most one per MIN_REFETCH_SECONDS, success or failure, so
 *   forged kids cannot turn into a stream of SSM calls.
 * - Without a usable ring, requests get 503.
 * - A ring refused (not sealed under the stage's key for this ring: see sealed-ring.ts) is never
 *   used; it fails like an unreadable one, and is logged as an error (`signing_keys_refused`) even
 *   while the held ring keeps serving, since it means someone wrote the parameter who should not have.
 */
export class FetchedKeyRing implements KeyRing {
  private ring: SigningKeys | undefined;
  private loadedAt = -Infinity;
  private attemptedAt = -Infinity;
  private inFlight: Promise<SigningKeys | undefined> | undefined;
  /** Why the last fetch failed: the cause of a 503, for the log. */
  private lastError: unknown;
  private readonly clock: Clock;
  private readonly what: string;

  constructor(private readonly options: FetchedKeyRingOptions) {
    this.clock = options.clock ?? (() => new Date());
    this.what = options.what ?? 'signing_keys';
  }

  async current(): Promise<SigningKeys> {
    const age = this.secondsSince(this.loadedAt);
    if (this.ring && age < this.options.cacheSeconds) return this.ring;
    if (this.ring && age < MAX_STALE_SECONDS) {
      if (this.secondsSince(this.attemptedAt) >= MIN_REFETCH_SECONDS) void this.refetch();
      return this.ring;
    }
    // No ring to serve with: wait for a fetch, unless one failed a moment ago (an outage must
    // not turn every request into an SSM call).
    if (!this.inFlight && this.secondsSince(this.attemptedAt) < MIN_REFETCH_SECONDS) return this.usable(undefined);
    return this.usable(await this.refetch());
  }

  async including(kid: string): Promise<SigningKeys> {
    const ring = await this.current();
    if (ring.keys.has(kid)) return ring;
    // A fetch in flight (the background refresh current() may just have started) may be the very
    // one that brings this kid: wait for it rather than refuse a token minted after a rotation.
    if (this.inFlight) return this.usable(await this.inFlight);
    if (this.secondsSince(this.attemptedAt) < MIN_REFETCH_SECONDS) return ring;
    return this.usable(await this.refetch());
  }

  private secondsSince(at: number): number {
    return (this.clock().getTime() - at) / 1000;
  }

  /** The ring held, if it is not too stale to trust; else 503. */
  private usable(ring: SigningKeys | undefined): SigningKeys {
    if (ring && this.secondsSince(this.loadedAt) < MAX_STALE_SECONDS) return ring;
    throw Object.assign(unavailable(), { cause: this.lastError });
  }

  /** One fetch for all who ask meanwhile; resolves to the ring held afterwards (never rejects). */
  private refetch(): Promise<SigningKeys | undefined> {
    this.inFlight ??= this.load().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async load(): Promise<SigningKeys | undefined> {
    const startedAt = this.clock().getTime();
    this.attemptedAt = startedAt;
    try {
      this.ring = this.options.parse(await this.options.fetch());
      this.loadedAt = startedAt;
      this.lastError = undefined;
      log.info(`${this.what}_loaded`, { source: this.options.source, kids: [...this.ring.keys.keys()], currentKid: this.ring.currentKid });
    } catch (error) {
      this.lastError = error;
      const held = this.ring !== undefined && this.secondsSince(this.loadedAt) < MAX_STALE_SECONDS;
      if (error instanceof RingRefusedError) log.error(`${this.what}_refused`, { source: this.options.source, held, ...describeError(error) });
      else if (held) log.warn(`${this.what}_refresh_failed`, { source: this.options.source, ...describeError(error) });
      else log.error(`${this.what}_unavailable`, { source: this.options.source, ...describeError(error) });
    }
    return this.ring;
  }
}
