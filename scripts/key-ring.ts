/**
 * The signing-key ring as operators edit it: the JSON text `{"kid": "secret", ...}` that
 * JWT_SECRET or the SSM parameter holds, current key first (lib/platform/config.ts reads it).
 */
import { randomBytes } from 'node:crypto';

export type RingEntries = Array<[kid: string, secret: string]>;

/** A rotation the ring cannot take; the message says why and what to do. */
export class KeyRingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyRingError';
  }
}

/** 384 random bits, base64url: comfortably over HS256's 256-bit minimum. */
export function newSecret(): string {
  return randomBytes(48).toString('base64url');
}

const KID_TIME = /^k(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z(?:-\d+)?$/;

/** `k20261126T094100Z`: the kid says when the key became current, which `retire` checks. */
export function newKid(now: Date, taken: ReadonlySet<string>): string {
  const base = `k${now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')}`;
  let kid = base;
  for (let n = 2; taken.has(kid); n++) kid = `${base}-${n}`;
  return kid;
}

/** When a key made by `newKid` became current; undefined for kids of another shape. */
export function kidCreatedAt(kid: string): Date | undefined {
  const match = KID_TIME.exec(kid);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second] = match;
  const at = new Date(`${year}-${month}-${day}T${hour}:${minute}:${second}Z`);
  // A hand-edited kid may name a time that does not exist (Feb 30): that is no time at all.
  return !Number.isNaN(at.getTime()) && newKid(at, new Set()) === kid.replace(/-\d+$/, '') ? at : undefined;
}

export function formatRing(entries: RingEntries): string {
  return JSON.stringify(Object.fromEntries(entries));
}

/** A new key in front, signing from now on; every previous key stays to verify what it signed. */
export function rotate(entries: RingEntries, now: Date, secret = newSecret()): RingEntries {
  return [[newKid(now, new Set(entries.map(([kid]) => kid))), secret], ...entries];
}

export interface RetireOptions {
  /** Only this key; otherwise every key but the current one. */
  kid?: string;
  now: Date;
  /**
   * How long after a rotation tokens signed with a previous key may still be valid: the access
   * token lifetime plus how long a Lambda keeps a ring cached (it signs with the old key until then).
   */
  minAgeSeconds: number;
  /** Retire anyway: sessions whose access token used a retired key must refresh or sign in again. */
  force?: boolean;
}

export function retire(entries: RingEntries, options: RetireOptions): { entries: RingEntries; removed: string[] } {
  const [currentKid] = entries[0]!;
  if (options.kid === currentKid) throw new KeyRingError(`"${currentKid}" is the current signing key; rotate first, then retire it`);
  if (options.kid !== undefined && !entries.some(([kid]) => kid === options.kid)) {
    throw new KeyRingError(`No key "${options.kid}" in the ring (it holds ${entries.map(([kid]) => kid).join(', ')})`);
  }
  const removed = entries.slice(1).map(([kid]) => kid).filter((kid) => options.kid === undefined || kid === options.kid);
  if (removed.length === 0) throw new KeyRingError(`Nothing to retire: the ring holds only the current key "${currentKid}"`);
  if (!options.force) {
    const since = kidCreatedAt(currentKid);
    if (since === undefined) {
      throw new KeyRingError(
        `Cannot tell when "${currentKid}" became current. Retire once ${options.minAgeSeconds} s have passed since the rotation, with --force`,
      );
    }
    const safeAt = new Date(since.getTime() + options.minAgeSeconds * 1000);
    if (options.now < safeAt) {
      throw new KeyRingError(
        `Tokens signed with ${removed.join(', ')} may be valid until ${safeAt.toISOString()} ("${currentKid}" became current at ${since.toISOString()}). ` +
          'Retire after that; --force retires now and makes those users refresh or sign in again',
      );
    }
  }
  return { entries: entries.filter(([kid]) => !removed.includes(kid)), removed };
}
