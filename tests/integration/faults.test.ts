import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../lib/auth/auth-service.js';
import { httpHandler, ok, type HttpEvent } from '../../lib/http/http.js';
import { DEFAULT_STORE_DEADLINES_MS } from '../../lib/platform/config.js';
import { compensatingUpdate, outsideStoreDeadline, withStoreDeadline } from '../../lib/platform/dynamo.js';
import { ApiError } from '../../lib/platform/errors.js';
import { loginService } from '../../lib/auth/login-service.js';
import { passwordService } from '../../lib/auth/password-service.js';
import { freePort } from '../../scripts/local-stack.js';
import { countCalls, createUser, testApp } from '../support/store.js';

type TestApp = Awaited<ReturnType<typeof testApp>>;
const caller: Caller = { requestId: 'req', sourceIp: '198.51.100.50', userAgent: 'vitest' };

/**
 * Fault injection at the SDK boundary: the next DynamoDB command matching `when` fails as a
 * throttled request would (before the SDK's own retries, so exactly once).
 */
function failNext(app: TestApp, when: (command: string, input: Record<string, unknown>) => boolean, name = 'ProvisionedThroughputExceededException') {
  let armed = true;
  app.db.middlewareStack.add(
    (next, context) => async (args) => {
      if (armed && when(context.commandName ?? '', args.input as Record<string, unknown>)) {
        armed = false;
        throw Object.assign(new Error('Injected: throughput exceeded'), { name, $metadata: {} });
      }
      return next(args);
    },
    { step: 'initialize', name: `fault-${Math.random()}` },
  );
}

async function failure(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
}

describe('DynamoDB faults', () => {
  it('answers 503 service_unavailable with Retry-After when DynamoDB cannot be reached', async () => {
    // Prepare: a real session, then an app whose DynamoDB endpoint is a closed port
    const app = await testApp();
    const user = await createUser(app);
    const pair = await loginService(app).login(user.email, user.password, caller);
    const unreachable = await testApp(undefined, { DYNAMODB_ENDPOINT: `http://127.0.0.1:${await freePort()}` });
    const token = await unreachable.tokens.sign({ userId: user.id, sessionId: decodeJwt(pair.token).sid as string, role: 'user' });

    // Act
    const errors = [
      await failure(loginService(unreachable).login(user.email, user.password, caller)),
      await failure(unreachable.auth.refresh(pair.refresh_token, caller)),
      await failure(unreachable.auth.me(token)),
    ];

    // Assess
    for (const error of errors) {
      expect(error).toMatchObject({ code: 'service_unavailable', status: 503 });
      expect(error.headers['Retry-After']).toMatch(/^\d+$/);
    }
    await expect(app.auth.me(pair.token)).resolves.toMatchObject({ id: user.id });
  });

  it('leaves no half-rotated session when the rotation write is throttled; the same token works after recovery', async () => {
    // Prepare
    const app = await testApp();
    const user = await createUser(app);
    const pair = await loginService(app).login(user.email, user.password, caller);
    const sid = decodeJwt(pair.token).sid as string;
    const before = await app.sessions.get(sid);
    failNext(app, (command, input) => command === 'UpdateItemCommand' && input.TableName === app.sessions.table);

    // Act
    const error = await failure(app.auth.refresh(pair.refresh_token, caller));

    // Assess
    expect(error).toMatchObject({ code: 'service_unavailable', status: 503 });
    expect(await app.sessions.get(sid)).toEqual(before);
    const recovered = await app.auth.refresh(pair.refresh_token, caller);
    expect(decodeJwt(recovered.token).sid).toBe(sid);
    expect((await app.sessions.get(sid))?.generation).toBe(1);
  });

  it('creates no session when the session write fails at login, and the next login works', async () => {
    const app = await testApp();
    const user = await createUser(app);
    failNext(app, (command) => command === 'BatchWriteItemCommand');
    expect(await failure(loginService(app).login(user.email, user.password, caller))).toMatchObject({ code: 'service_unavailable' });
    const { Items } = await app.db.send(new ScanCommand({ TableName: app.sessions.table, FilterExpression: 'user_id = :user', ExpressionAttributeValues: { ':user': user.id } }));
    expect(Items).toEqual([]);
    const next = await loginService(app).login(user.email, user.password, caller);
    await expect(app.auth.me(next.token)).resolves.toMatchObject({ id: user.id });
  });

  it('still signs in when only the bookkeeping beside the session fails (giving back the IP slot)', async () => {
    const app = await testApp();
    const user = await createUser(app);
    failNext(app, (command, input) => command === 'UpdateItemCommand' && (input.Key as { pk: string }).pk.startsWith('IP#') && input.UpdateExpression === 'ADD failures :minus');
    const pair = await loginService(app).login(user.email, user.password, caller);
    await expect(app.auth.me(pair.token)).resolves.toMatchObject({ id: user.id });
  });

  it.each([
    ['TimeoutError', "the SDK's request timeout"],
    ['AbortError', 'a request aborted when its time ran out'],
  ])('answers 503 with Retry-After, never 500, when DynamoDB times out (%s: %s)', async (name) => {
    // Prepare: the error exactly as the SDK's HTTP handler raises it
    const app = await testApp();
    const user = await createUser(app);
    app.db.middlewareStack.add(
      () => async () => {
        throw Object.assign(new Error(name === 'AbortError' ? 'Request aborted' : 'a request has exceeded the configured 2000 ms requestTimeout'), { name, $metadata: {} });
      },
      { step: 'finalizeRequest', name: `timeout-${name}` },
    );

    // Act
    const error = await failure(loginService(app).login(user.email, user.password, caller));

    // Assess
    expect(error).toMatchObject({ code: 'service_unavailable', status: 503 });
    expect(error.headers['Retry-After']).toMatch(/^\d+$/);
  });

  it('answers 503 when DynamoDB accepts the connection but never answers, outside any request\'s deadline (the CLIs: the per-attempt timeout)', async () => {
    // Prepare: a socket that takes requests and never replies
    const silent = createServer(() => undefined);
    await new Promise<void>((listening) => silent.listen(0, '127.0.0.1', () => listening()));
    const app = await testApp(undefined, { DYNAMODB_ENDPOINT: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` });

    // Act
    const error = await failure(app.auth.me(await app.tokens.sign({ userId: 'usr_AAAAAAAAAAAAAAAAAAAAAA', sessionId: 'AAAAAAAAAAAAAAAAAAAAAA', role: 'user' })));
    silent.closeAllConnections();
    silent.close();

    // Assess
    expect(error).toMatchObject({ code: 'service_unavailable', status: 503 });
  }, 15_000);

  it('answers 503 when the read of session and user is throttled, and 200 on the retry', async () => {
    const app = await testApp();
    const user = await createUser(app);
    const pair = await loginService(app).login(user.email, user.password, caller);
    failNext(app, (command) => command === 'BatchGetItemCommand', 'ThrottlingException');
    expect(await failure(app.auth.me(pair.token))).toMatchObject({ code: 'service_unavailable' });
    await expect(app.auth.me(pair.token)).resolves.toMatchObject({ id: user.id });
  });

  it('asks again for keys a BatchGetItem left unprocessed, and answers 503 when they stay unprocessed', async () => {
    // Prepare: DynamoDB "under load" returns the first `times` batch reads unprocessed
    const app = await testApp();
    const user = await createUser(app);
    const pair = await loginService(app).login(user.email, user.password, caller);
    const { calls } = countCalls(app);
    let times = 1;
    app.db.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName !== 'BatchGetItemCommand' || times === 0) return result;
        times--;
        const input = args.input as { RequestItems: unknown };
        return { ...result, output: { ...result.output, Responses: {}, UnprocessedKeys: input.RequestItems } as typeof result.output };
      },
      { step: 'initialize', name: 'unprocessed-keys' },
    );

    // Act
    const once = await app.auth.me(pair.token);
    const readsWhenOnce = calls.filter((call) => call === 'BatchGetItemCommand').length;
    times = 3;
    const always = await failure(app.auth.me(pair.token));

    // Assess
    expect(once).toMatchObject({ id: user.id });
    expect(readsWhenOnce).toBe(2);
    expect(always).toMatchObject({ code: 'service_unavailable', status: 503 });
  });
});

/** A DynamoDB endpoint on loopback that takes connections and requests and never answers. */
async function hangingStore(): Promise<{ endpoint: string; close(): void }> {
  const silent = createServer(() => undefined);
  await new Promise<void>((listening) => silent.listen(0, '127.0.0.1', () => listening()));
  return {
    endpoint: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
    close: () => {
      silent.closeAllConnections();
      silent.close();
    },
  };
}

const { fast, standard } = DEFAULT_STORE_DEADLINES_MS;

/** What a request under a deadline `ms` from now gives up with, and after how long (ms). */
async function timedFailure(deadlineMs: number, work: () => Promise<unknown>): Promise<{ error: ApiError; ms: number }> {
  const started = performance.now();
  const error = await failure(withStoreDeadline(deadlineMs, work));
  return { error, ms: performance.now() - started };
}

/**
 * Upper bounds leave room for a loaded machine (the budget plus 0.7 s); lower bounds show the
 * budget, not something shorter, ended the wait.
 */
const SLACK_MS = 700;

describe('a store that hangs: one deadline per request, retries included', () => {
  /** A user with a live session on a healthy store, and an app on the same tables' names whose DynamoDB never answers. */
  async function signedInThenHanging() {
    const app = await testApp();
    const user = await createUser(app);
    const pair = await loginService(app).login(user.email, user.password, caller);
    const store = await hangingStore();
    const hanging = await testApp(undefined, { DYNAMODB_ENDPOINT: store.endpoint });
    const token = await hanging.tokens.sign({ userId: user.id, sessionId: decodeJwt(pair.token).sid as string, role: 'user' });
    return { app, user, pair, store, hanging, token };
  }

  it('answers 503 with Retry-After within the fast deadline (1.5 s) for /auth/me, refresh and the authorizer\'s check', async () => {
    // Prepare
    const { pair, store, hanging, token } = await signedInThenHanging();

    // Act: at once, each under its own deadline (without one, each would wait 3 attempts × 2 s)
    const outcomes = await Promise.all([
      timedFailure(fast, () => hanging.auth.me(token)),
      timedFailure(fast, () => hanging.auth.refresh(pair.refresh_token, caller)),
      timedFailure(fast, () => hanging.auth.authenticate(token)),
    ]);
    store.close();

    // Assess
    for (const { error, ms } of outcomes) {
      expect(error).toMatchObject({ code: 'service_unavailable', status: 503 });
      expect(error.headers['Retry-After']).toMatch(/^\d+$/);
      expect(ms).toBeGreaterThanOrEqual(fast - 50);
      expect(ms).toBeLessThan(fast + SLACK_MS);
    }
  });

  it('answers 503 within the standard deadline (3 s) for the other endpoints, a second attempt begun inside it included', async () => {
    // Prepare
    const { user, pair, store, hanging, token } = await signedInThenHanging();

    // Act
    const outcomes = await Promise.all([
      timedFailure(standard, () => loginService(hanging).login(user.email, user.password, caller)),
      timedFailure(standard, () => hanging.auth.listSessions(token, caller)),
      timedFailure(standard, () => hanging.auth.endSession(token, decodeJwt(pair.token).sid as string, caller)),
      timedFailure(standard, () => hanging.auth.logout(token, 'global', caller)),
      timedFailure(standard, () => passwordService(hanging).changePassword(token, user.password, 'a long and fresh passphrase', caller)),
    ]);
    store.close();

    // Assess
    for (const { error, ms } of outcomes) {
      expect(error).toMatchObject({ code: 'service_unavailable', status: 503 });
      expect(ms).toBeGreaterThanOrEqual(standard - 50);
      expect(ms).toBeLessThan(standard + SLACK_MS);
    }
  });

  it('holds for calls made one after another: three reads in a row under one fast deadline take 1.5 s in all', async () => {
    // Prepare
    const { store, hanging, token } = await signedInThenHanging();
    const errors: unknown[] = [];

    // Act: a handler that keeps trying (each call caught) still ends at the deadline
    const started = performance.now();
    await withStoreDeadline(fast, async () => {
      for (let i = 0; i < 3; i++) await hanging.auth.me(token).catch((error: unknown) => errors.push(error));
    });
    const ms = performance.now() - started;
    store.close();

    // Assess
    expect(errors).toHaveLength(3);
    for (const error of errors) expect(error).toMatchObject({ code: 'service_unavailable' });
    expect(ms).toBeLessThan(fast + SLACK_MS);
  });

  it('answers our JSON 503 with Retry-After through the handler wiring (httpHandler, the fast deadline)', async () => {
    // Prepare: a handler as functions/me.ts wires it, on a store that hangs
    const { store, hanging, token } = await signedInThenHanging();
    const handler = httpHandler(async () => ok({ user: await hanging.auth.me(token) }), hanging.config, { storeDeadline: 'fast' });
    const event = { headers: {}, requestContext: { requestId: 'req-hanging', http: { method: 'GET', path: '/v1/auth/me', sourceIp: '198.51.100.50' } } } as unknown as HttpEvent;
    const context = { awsRequestId: 'aws-req', functionName: 'vpn-auth-test-me', getRemainingTimeInMillis: () => 10_000 } as unknown as Context;

    // Act
    const started = performance.now();
    const response = await handler(event, context);
    const ms = performance.now() - started;
    store.close();

    // Assess
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body!)).toEqual({ success: false, error: { code: 'service_unavailable', message: expect.any(String) } });
    expect(response.headers).toMatchObject({ 'Retry-After': expect.stringMatching(/^\d+$/), 'Content-Type': 'application/json' });
    expect(ms).toBeLessThan(fast + SLACK_MS);
  });

  it('still retries inside the deadline: a throttled attempt, then the answer, under the fast deadline', async () => {
    // Prepare: the first attempt (below the SDK's retries) is throttled
    const app = await testApp();
    const user = await createUser(app);
    const pair = await loginService(app).login(user.email, user.password, caller);
    let attempts = 0;
    app.db.middlewareStack.add(
      (next) => async (args) => {
        if (attempts++ === 0) throw Object.assign(new Error('Injected: throttled'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
        return next(args);
      },
      { step: 'deserialize', name: 'throttle-first-attempt' },
    );

    // Act
    const me = await withStoreDeadline(fast, () => app.auth.me(pair.token));

    // Assess
    expect(me).toMatchObject({ id: user.id });
    expect(attempts).toBe(2);
  });
});

describe("the store deadline counts waiting on the store, not the request's own work", () => {
  const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

  it('stands still during a bcrypt or a pause (outsideStoreDeadline): a call after 400 ms of them under a 200 ms deadline still runs', async () => {
    // Prepare
    const app = await testApp();
    const user = await createUser(app);

    // Act
    const found = await withStoreDeadline(200, async () => {
      await outsideStoreDeadline(() => sleep(400));
      return app.users.get(user.id);
    });
    const late = await failure(withStoreDeadline(200, async () => {
      await sleep(400);
      return app.users.get(user.id);
    }));

    // Assess: the same wait, not set aside, ends the request
    expect(found?.id).toBe(user.id);
    expect(late).toMatchObject({ code: 'service_unavailable', status: 503 });
  });

  it('lets a compensating write through after the deadline passed: a refusal leaves the counters as a refusal should', async () => {
    // Prepare: a counter of one
    const app = await testApp();
    const key = { pk: `PAIR#compensate-${Date.now()}#198.51.100.99` };
    await app.db.send(new UpdateCommand({ TableName: app.attempts.table, Key: key, UpdateExpression: 'SET failures = :one', ExpressionAttributeValues: { ':one': 1 } }));

    // Act: a request whose deadline has passed gives its slot back
    const given = await withStoreDeadline(50, async () => {
      await sleep(150);
      return compensatingUpdate(app.db, { TableName: app.attempts.table, Key: key, UpdateExpression: 'ADD failures :minus', ConditionExpression: 'failures > :zero', ExpressionAttributeValues: { ':minus': -1, ':zero': 0 } });
    });

    // Assess
    const { Item } = await app.db.send(new GetCommand({ TableName: app.attempts.table, Key: key, ConsistentRead: true }));
    expect(given).toBe(true);
    expect(Item?.failures).toBe(0);
  });
});
