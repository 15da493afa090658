import type { SigningKeys } from './config.js';
import { unavailable } from './errors.js';
import { describeError, log } from './log.js';
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
  /** Reads the ring's source text (the SSM parameter's value). */
  fetch: () => Promise<string>;
  /** Turns that text into keys; throws ConfigError on a malformed ring. */
  parse: (raw: string) => SigningKeys;
  /** How long a fetched ring is used before it is fetched again. */
  cacheSeconds: number;
  /** The shortest time between two refetches for an unknown kid. */
  unknownKidRefetchSeconds?: number;
  /** What the log calls the source (the parameter name; never its value). */
  source: string;
  clock?: Clock;
}

/**
 * A ring read from SSM at the first request (the cold start), cached for `cacheSeconds`, and
 * fetched again early when a token names a kid it lacks. Concurrent callers share one fetch.
 * When a refetch fails the ring already held stays in use; without any ring, requests get 503.
 */
export class FetchedKeyRing implements KeyRing {
  private ring: SigningKeys | undefined;
  private fetchedAt = -Infinity;
  private inFlight: Promise<SigningKeys> | undefined;
  private readonly clock: Clock;

  constructor(private readonly options: FetchedKeyRingOptions) {
    this.clock = options.clock ?? (() => new Date());
  }

  async current(): Promise<SigningKeys> {
    if (this.ring && this.ageSeconds() < this.options.cacheSeconds) return this.ring;
    return this.refetch();
  }

  async including(kid: string): Promise<SigningKeys> {
    const ring = await this.current();
    if (ring.keys.has(kid) || this.ageSeconds() < (this.options.unknownKidRefetchSeconds ?? 5)) return ring;
    return this.refetch();
  }

  private ageSeconds(): number {
    return (this.clock().getTime() - this.fetchedAt) / 1000;
  }

  private refetch(): Promise<SigningKeys> {
    this.inFlight ??= this.load().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async load(): Promise<SigningKeys> {
    const startedAt = this.clock().getTime();
    try {
      this.ring = this.options.parse(await this.options.fetch());
      this.fetchedAt = startedAt;
      log.info('signing_keys_loaded', { source: this.options.source, kids: [...this.ring.keys.keys()], currentKid: this.ring.currentKid });
      return this.ring;
    } catch (error) {
      if (this.ring) {
        // Keep serving with the keys held; try again after a short pause rather than on every request.
        this.fetchedAt = startedAt - Math.max(0, this.options.cacheSeconds - 5) * 1000;
        log.warn('signing_keys_refresh_failed', { source: this.options.source, ...describeError(error) });
        return this.ring;
      }
      log.error('signing_keys_unavailable', { source: this.options.source, ...describeError(error) });
      throw Object.assign(unavailable(), { cause: error });
    }
  }
}
