/** Everything both entries export; index.ts adds fileStorage, browser.ts a fileStorage that refuses. */
export { createAuthClient } from './client.js';
export type {
  ActiveSession,
  AuthClient,
  AuthClientOptions,
  AuthEvent,
  AuthListener,
  AuthSession,
  MfaEnrollmentRequired,
  MfaRequired,
  SignedIn,
  SignInResult,
  SsoCallback,
  SsoTarget,
  TotpSecret,
  User,
} from './client.js';
export { AuthError } from './errors.js';
export type { AuthErrorCode, ServerErrorCode } from './errors.js';
export type { FetchLike } from './http.js';
export { browserStorage, memoryStorage } from './storage.js';
export type { StorageAdapter, WebStorageLike } from './storage.js';
