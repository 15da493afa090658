/**
 * The one place that speaks HTTP to the API: request and answer types come from openapi.yaml
 * (src/generated/openapi.ts), every failure becomes an AuthError.
 */
import type { paths } from './generated/openapi.js';
import { AuthError, type AuthErrorCode } from './errors.js';

type Method = 'get' | 'post' | 'delete';
export type ApiPath = keyof paths;
/** The methods openapi.yaml defines for a path. */
export type MethodOf<P extends ApiPath> = {
  [M in Method]: [NonNullable<paths[P][M]>] extends [never] ? never : M;
}[Method];
type Operation<P extends ApiPath, M extends MethodOf<P>> = NonNullable<paths[P][M]>;
/** The JSON body of a request. */
export type RequestBody<P extends ApiPath, M extends MethodOf<P>> =
  Operation<P, M> extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
/** The JSON body of the success answer (200, or 201). */
export type Answer<P extends ApiPath, M extends MethodOf<P>> =
  Operation<P, M> extends { responses: { 200: { content: { 'application/json': infer B } } } }
    ? B
    : Operation<P, M> extends { responses: { 201: { content: { 'application/json': infer B } } } }
      ? B
      : never;

export type FetchLike = (input: Parameters<typeof fetch>[0], init?: RequestInit) => Promise<Response>;

export interface Call<P extends ApiPath, M extends MethodOf<P>> {
  method: M;
  path: P;
  /** Values for `{name}` in the path. */
  params?: Record<string, string>;
  body?: RequestBody<P, M>;
  token?: string;
}

/** Builds the URL of an openapi path under baseUrl (which already ends in /v1). */
export function urlOf(baseUrl: string, path: string, params: Record<string, string> = {}): string {
  const tail = path.replace(/^\/v1/, '').replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? ''));
  return baseUrl.replace(/\/+$/, '') + tail;
}

/** Sends one request; resolves to the Response whatever its status, rejects only with a network_error. */
export async function send<P extends ApiPath, M extends MethodOf<P>>(
  fetchImpl: FetchLike,
  baseUrl: string,
  call: Call<P, M>,
): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (call.body !== undefined) headers['content-type'] = 'application/json';
  if (call.token) headers.authorization = `Bearer ${call.token}`;
  try {
    return await fetchImpl(urlOf(baseUrl, call.path, call.params), {
      method: call.method.toUpperCase(),
      headers,
      ...(call.body !== undefined && { body: JSON.stringify(call.body) }),
    });
  } catch (cause) {
    throw networkError(cause);
  }
}

export function networkError(cause: unknown): AuthError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new AuthError(0, 'network_error', `The API could not be reached: ${message}`, undefined, { cause });
}

/** The JSON of an answer, or undefined when it is not JSON. */
export async function jsonOf(response: Response): Promise<unknown> {
  try {
    return JSON.parse(await response.text());
  } catch {
    return undefined;
  }
}

/** The error code of an API error body, if it is one. */
export function codeOf(body: unknown): string | undefined {
  const error = (body as { error?: { code?: unknown } } | null | undefined)?.error;
  return typeof error?.code === 'string' ? error.code : undefined;
}

/** Retry-After in seconds (delta-seconds or an HTTP date), or undefined. */
export function retryAfterOf(response: Response): number | undefined {
  const value = response.headers.get('retry-after');
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** The AuthError for a failed answer whose body has already been read. */
export function errorOf(response: Response, body: unknown): AuthError {
  const code = codeOf(body);
  const retryAfter = retryAfterOf(response);
  if (code === undefined) {
    return new AuthError(response.status, 'unexpected_response', `Unexpected answer from the API (HTTP ${response.status}).`, retryAfter);
  }
  const message = (body as { error: { message?: unknown } }).error.message;
  return new AuthError(response.status, code as AuthErrorCode, typeof message === 'string' ? message : code, retryAfter);
}

/** The parsed success body of an answer, or the AuthError it stands for. */
export async function answerOf<T>(response: Response): Promise<T> {
  const body = await jsonOf(response);
  if (!response.ok) throw errorOf(response, body);
  if (body === undefined || body === null || typeof body !== 'object') {
    throw new AuthError(response.status, 'unexpected_response', `Unexpected answer from the API (HTTP ${response.status}).`);
  }
  return body as T;
}
