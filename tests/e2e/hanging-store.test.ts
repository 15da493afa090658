import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatRefreshToken } from '../../lib/auth/tokens.js';
import { newSessionId, newUserId } from '../../lib/platform/ids.js';
import { DEFAULT_STORE_DEADLINES_MS } from '../../lib/platform/config.js';
import { recordSecret } from '../support/secrets.js';
import { stageApi } from '../support/stage-api.js';

/** Room for serverless-offline and a loaded machine above each deadline. */
const SLACK_MS = 700;

/**
 * A DynamoDB brownout, over HTTP: an API of its own whose Lambdas' DynamoDB endpoint takes
 * connections and never answers (a TCP server on loopback that reads and never writes). Each
 * request gives up within its deadline (lib/platform/dynamo.ts), never after the 3 attempts × 2 s
 * of the per-attempt timeout alone.
 */
describe('a DynamoDB that hangs, over HTTP', () => {
  // The deployed deadlines, not the e2e stack's roomier ones (tests/support/api-setup.ts).
  const settings: Record<string, string> = {
    STORE_DEADLINE_FAST_MS: String(DEFAULT_STORE_DEADLINES_MS.fast),
    STORE_DEADLINE_MS: String(DEFAULT_STORE_DEADLINES_MS.standard),
  };
  let silent: Server | undefined;
  beforeAll(async () => {
    // Before the stage API's own beforeAll (registered below): its Lambdas take this endpoint.
    silent = createServer((socket) => socket.resume());
    await new Promise<void>((listening) => silent!.listen(0, '127.0.0.1', () => listening()));
    settings.DYNAMODB_ENDPOINT = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  const api = stageApi('hanging', settings);
  afterAll(() => {
    silent?.close();
  });

  it('answers /auth/me and refresh with 503 and Retry-After within 1.5 s, the authorizer with a deny, the other endpoints within 3 s', async () => {
    // Prepare: a genuine access token and a well-formed refresh token (the store is never reached for them)
    const token = await api.app().tokens.sign({ userId: newUserId(), sessionId: newSessionId(), role: 'user' });
    const refreshToken = formatRefreshToken({ sessionId: newSessionId(), userId: newUserId(), secret: randomBytes(32) });
    recordSecret(token, refreshToken);
    const requests: Array<{ name: string; path: string; init: RequestInit; deadline: number }> = [
      { name: 'me', path: '/v1/auth/me', init: { headers: { authorization: `Bearer ${token}` } }, deadline: DEFAULT_STORE_DEADLINES_MS.fast },
      {
        name: 'refresh',
        path: '/v1/auth/refresh',
        init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: refreshToken }) },
        deadline: DEFAULT_STORE_DEADLINES_MS.fast,
      },
      { name: 'authorizer', path: '/v1/example/protected', init: { headers: { authorization: `Bearer ${token}` } }, deadline: DEFAULT_STORE_DEADLINES_MS.fast },
      { name: 'sessions', path: '/v1/auth/sessions', init: { headers: { authorization: `Bearer ${token}` } }, deadline: DEFAULT_STORE_DEADLINES_MS.standard },
    ];
    const send = async ({ path, init }: (typeof requests)[number]) => {
      const started = performance.now();
      const response = await fetch(`${api.url}${path}`, { ...init, signal: AbortSignal.timeout(20_000) });
      const body = (await response.json()) as Record<string, unknown>;
      return { status: response.status, retryAfter: response.headers.get('retry-after'), body, ms: performance.now() - started };
    };
    // Each function's cold start (its module, its signing keys from SSM) is not what is measured.
    await Promise.all(requests.map(send));

    // Act
    const replies = await Promise.all(requests.map(send));

    // Assess
    const unavailable = { success: false, error: { code: 'service_unavailable', message: expect.any(String) } };
    for (const [i, reply] of replies.entries()) {
      const { name, deadline } = requests[i]!;
      if (name === 'authorizer') expect({ name, status: reply.status, body: reply.body }).toEqual({ name, status: 403, body: { message: 'Forbidden' } });
      else expect({ name, status: reply.status, body: reply.body, retryAfter: reply.retryAfter }).toEqual({ name, status: 503, body: unavailable, retryAfter: expect.stringMatching(/^\d+$/) });
      expect(reply.ms, name).toBeGreaterThanOrEqual(deadline - 50);
      expect(reply.ms, name).toBeLessThan(deadline + SLACK_MS);
    }
  });
});
