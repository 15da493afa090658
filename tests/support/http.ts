import { request } from 'node:http';
import { expect } from 'vitest';
import type { RingName } from '../../infra/signing-keys.js';
import { createApp, type App } from '../../lib/app.js';
import { loadConfig } from '../../lib/platform/config.js';
import { apiEnv, apiUrl } from './context.js';
import { contractViolation } from './openapi.js';
import { newSecret } from '../../scripts/key-ring.js';
import { putSealedRing, readSealedRing, type AwsFakes } from './sealed-rings.js';
import { recordSecret } from './secrets.js';

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export interface CallOptions {
  body?: unknown;
  /** Sent as is, for bodies that are not JSON. */
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
  token?: string;
}

/**
 * A six-digit code alone would match digits anywhere in a log (request ids, times): it is looked
 * for as a JSON string, plain and escaped, which is how a logged body would carry it.
 */
function codeForms(code: unknown): string[] {
  return typeof code === 'string' ? [JSON.stringify(code), JSON.stringify(JSON.stringify(code)).slice(1, -1)] : [];
}

function recordSentSecrets(sent: Record<string, unknown> | undefined): void {
  if (!sent || typeof sent !== 'object') return;
  recordSecret(sent.password, sent.current_password, sent.new_password, sent.refresh_token, sent.device_token, sent.mfa_token, sent.recovery_code, ...codeForms(sent.code));
}

function recordReceivedSecrets(received: Record<string, unknown> | undefined): void {
  if (!received || typeof received !== 'object') return;
  const recoveryCodes = Array.isArray(received.recovery_codes) ? (received.recovery_codes as unknown[]) : [];
  recordSecret(received.token, received.key, received.refresh_token, received.device_token, received.mfa_token, received.secret, ...recoveryCodes, ...recoveryCodes.map((code) => String(code).replace(/-/g, '')));
}

/** One real HTTP request to the serverless-offline API started by the e2e global setup. */
export async function call(method: 'GET' | 'POST' | 'DELETE', path: string, options: CallOptions = {}): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | Buffer | undefined = options.rawBody;
  if (options.body !== undefined) body = JSON.stringify(options.body);
  // A body is JSON unless a test says otherwise (any other type is 415).
  if (body !== undefined && !Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const sent = options.body as Record<string, unknown> | undefined;
  recordSecret(options.token);
  recordSentSecrets(sent);
  const response = await fetch(`${apiUrl()}/v1/auth${path}`, { method, headers, body, signal: AbortSignal.timeout(20_000) });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  recordReceivedSecrets(parsed as Record<string, unknown> | undefined);
  expect(contractViolation(method, `/v1/auth${path}`, response.status, parsed)).toBeUndefined();
  return { status: response.status, headers: response.headers, body: parsed, text };
}

/** Every response of the API, success or error. */
export function expectCommonHeaders(response: ApiResponse): void {
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  expect(response.headers.get('cache-control')).toBe('no-store');
}

export function expectError(response: ApiResponse, status: number, code: string): void {
  expect({ status: response.status, body: response.body }).toEqual({
    status,
    body: { success: false, error: { code, message: expect.any(String) } },
  });
  expectCommonHeaders(response);
  expect(response.text).not.toMatch(/at .+\.(js|ts):\d+|Exception|stack/i);
}

export async function login(email: string, password: string): Promise<{ token: string; refresh_token: string; user: any }> {
  const response = await call('POST', '/login', { body: { email, password } });
  expect(response.status, response.text).toBe(200);
  return response.body;
}

/** The SSM and KMS the running Lambdas read their key rings from (fakes on loopback). */
export function e2eFakes(): AwsFakes {
  return { ssm: apiEnv().SSM_ENDPOINT!, kms: apiEnv().KMS_ENDPOINT!, region: e2eApp().config.region };
}

/**
 * A new signing key and a new MFA key for `stage` in the SSM the running Lambdas read, sealed by
 * the KMS they decrypt with, as an operator's `npm run keys -- init --aws [--ring mfa]` writes them.
 */
export async function putSigningKeys(stage: string): Promise<void> {
  for (const ring of ['signing', 'mfa'] as const) await putSealedRing(e2eFakes(), stage, ring, newSecret());
}

/** A stage's ring (JSON) as its Lambdas read and open it. */
export function e2eRing(stage: string, ring: RingName = 'signing'): Promise<string> {
  return readSealedRing(e2eFakes(), stage, ring);
}

let sharedApp: App | undefined;
/** The app wired exactly like the running Lambdas (same tables, same signing key), for set-up. */
export function e2eApp(): App {
  sharedApp ??= createApp(loadConfig(apiEnv()));
  return sharedApp;
}

export interface SourcedReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  text: string;
}

/**
 * A request sent from a chosen loopback address (all of 127.0.0.0/8 is ours), so that
 * serverless-offline's sourceIp — API Gateway's requestContext.http.sourceIp — differs per
 * "client", and tests that pile up failed logins do not lock out 127.0.0.1 for the others.
 */
export function requestFrom(
  sourceIp: string,
  method: string,
  path: string,
  options: { body?: string | Buffer; headers?: Record<string, string>; baseUrl?: string; recordSecrets?: boolean } = {},
): Promise<SourcedReply> {
  const url = new URL(`${options.baseUrl ?? apiUrl()}/v1/auth${path}`);
  // Random fuzz bodies are not credentials: recorded, a random "password" could match a random
  // path in the access log's lines and read as a leak.
  const record = options.recordSecrets ?? true;
  try {
    const sent = JSON.parse(String(options.body ?? '')) as Record<string, unknown>;
    if (record) recordSentSecrets(sent);
  } catch {
    /* not JSON: nothing to record */
  }
  return new Promise((resolveReply, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        localAddress: sourceIp,
        timeout: 20_000,
        // Framed, whatever the method: Node sends a DELETE's body unframed (no length, not chunked),
        // which the server would read as the start of the next request on the connection.
        headers: options.body === undefined ? options.headers : { 'content-length': String(Buffer.byteLength(options.body)), ...options.headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
          recordReceivedSecrets(body as Record<string, unknown> | undefined);
          const violation = contractViolation(method, url.pathname, res.statusCode!, body);
          if (violation) reject(new Error(`Response breaks openapi.yaml: ${violation}\n${text}`));
          else resolveReply({ status: res.statusCode!, headers: res.headers, body, text });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} from ${sourceIp} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}
