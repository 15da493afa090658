import { COMMON_PASSWORDS } from '../../generated/common-passwords.js';
import { MAX_PASSWORD_BYTES, passwordBytes } from './passwords.js';

/**
 * What a new password must be (NIST SP 800-63B, 5.1.1.2), for the password-change endpoint and
 * the users CLI alike. Length, not composition: no "one digit, one symbol" rules, which NIST
 * advises against. Passwords set before a rule existed keep working; only new ones are held to it.
 */
export interface PasswordRules {
  /** Fewest characters, counted as Unicode code points (PASSWORD_MIN_LENGTH). */
  minLength: number;
  /** The account's email: a password containing its local part is refused. */
  email: string;
  /** The password it replaces, when known in clear (the change endpoint has it, verified). */
  currentPassword?: string;
}

/** Local parts shorter than this are not looked for: refusing every password with "jo" in it would refuse too much. */
const SHORTEST_LOCAL_PART = 3;

/** Why `password` may not be a new password, in a sentence for the user; undefined when it may. */
export function passwordPolicyProblem(password: string, rules: PasswordRules): string | undefined {
  if ([...password].length < rules.minLength) return `The password must be at least ${rules.minLength} characters long.`;
  if (passwordBytes(password) > MAX_PASSWORD_BYTES) {
    return `The password must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8 (bcrypt reads no further); fewer characters of other scripts fit.`;
  }
  if (rules.currentPassword !== undefined && password === rules.currentPassword) return 'The new password must differ from the current one.';
  const localPart = rules.email.slice(0, rules.email.lastIndexOf('@')).toLowerCase();
  if ([...localPart].length >= SHORTEST_LOCAL_PART && password.toLowerCase().includes(localPart)) {
    return 'The password must not contain the email address (its part before the @).';
  }
  if (isCommonPassword(password)) return 'The password is too common: it is on a list of passwords used or leaked most often.';
  return undefined;
}

/**
 * Whether the password, lower-cased, is on the common-passwords list (generated/, built at install
 * by scripts/common-passwords.ts). The list is one sorted text, searched by bisection over its
 * characters: no set to build at cold start, about 20 comparisons per check.
 */
export function isCommonPassword(password: string): boolean {
  const wanted = password.toLowerCase();
  const text = COMMON_PASSWORDS;
  let low = 0;
  let high = text.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const start = text.lastIndexOf('\n', middle - 1) + 1;
    const newline = text.indexOf('\n', start);
    const end = newline === -1 ? text.length : newline;
    const entry = text.slice(start, end);
    if (entry === wanted) return true;
    if (entry < wanted) low = end + 1;
    else high = start;
  }
  return false;
}
