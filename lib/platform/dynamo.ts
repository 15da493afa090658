import { AsyncLocalStorage } from 'node:async_hooks';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, BatchWriteCommand, DynamoDBDocumentClient, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { HttpHandlerOptions } from '@smithy/types';
import { unavailable } from './errors.js';
import { placeholderCredentials } from './local-credentials.js';

export interface DynamoOptions {
  region: string;
  /** The local stack's dynalite; unset in AWS. */
  dynamodbEndpoint: string | undefined;
  /** dynalite checks that requests are signed, not by whom. */
  placeholderCredentials: boolean;
  /** The Lambda calling, named by its placeholder credentials (the local stack's IAM check reads it). */
  functionName?: string | undefined;
}

/**
 * Time this process could not listen, in ms: how late a 20 ms timer fires, added up. In AWS a
 * function has its CPU to itself and this stays near zero; on a machine where many requests share
 * one CPU (the local stack runs every Lambda in one process) their bcrypts delay everyone's
 * callbacks, and a store answer that came in time is heard late. That is no store's fault.
 */
const LAG_TICK_MS = 20;
let lagMs = 0;
let lagMonitor: ReturnType<typeof setInterval> | undefined;
function watchLag(): void {
  if (lagMonitor) return;
  let last = performance.now();
  lagMonitor = setInterval(() => {
    const now = performance.now();
    lagMs += Math.max(0, now - last - LAG_TICK_MS);
    last = now;
  }, LAG_TICK_MS);
  lagMonitor.unref?.();
}

/**
 * A clock that leaves out the time this process could not listen (see `lagMs`): what a request's
 * waits are measured by, so that they mean in the local stack what they mean in AWS.
 */
export function listeningClock(): number {
  return performance.now() - lagMs;
}

/**
 * One request's deadline for the store: the time it may spend waiting on DynamoDB, retries
 * included. It stands still while the request does work of its own that is no waiting on the store
 * (`outsideStoreDeadline`: a bcrypt comparison, a pause for attempts in flight), and it is moved on
 * by the time the process could not listen (`lagMs`). A store that does not answer still ends it on
 * time: an idle process always listens.
 */
class StoreDeadline {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private endsAt: number;
  private pauses = 0;
  private pausedAt = 0;
  private lagCounted: number;
  private ended = false;

  constructor(ms: number) {
    watchLag();
    this.lagCounted = lagMs;
    this.endsAt = performance.now() + ms;
    this.arm();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  async outside<T>(work: () => Promise<T>): Promise<T> {
    if (this.controller.signal.aborted) return work();
    if (this.pauses++ === 0) {
      clearTimeout(this.timer);
      // The deafness so far is banked; what comes during the pause is inside the pause's own time.
      this.endsAt += lagMs - this.lagCounted;
      this.pausedAt = performance.now();
    }
    try {
      return await work();
    } finally {
      if (--this.pauses === 0) {
        this.endsAt += performance.now() - this.pausedAt;
        this.lagCounted = lagMs;
        this.arm();
      }
    }
  }

  /** The request has its answer: its timer goes (not left to fire, one per request, for nothing). */
  end(): void {
    this.ended = true;
    clearTimeout(this.timer);
  }

  private arm(): void {
    if (this.ended) return;
    // The process's deafness since last counted moves the end on (it was not the store's doing).
    this.endsAt += lagMs - this.lagCounted;
    this.lagCounted = lagMs;
    const left = this.endsAt - performance.now();
    if (left <= 0) return this.controller.abort(new DOMException("the request's store deadline passed", 'TimeoutError'));
    this.timer = setTimeout(() => (this.pauses === 0 ? this.arm() : undefined), left);
    this.timer.unref?.();
  }
}

/** The deadline of the request being served, if any (the CLIs have none: they keep the per-attempt timeout alone). */
const requestDeadline = new AsyncLocalStorage<StoreDeadline>();

/**
 * Serve one request under one deadline for the store, `ms` from now (the config's
 * STORE_DEADLINE_FAST_MS or STORE_DEADLINE_MS): any DynamoDB call it makes, however many, one after
 * another or at once, is aborted when the time is up, a retry's backoff included, and one begun
 * after that fails at once; either is an AbortError, so a 503 with Retry-After (storeCall), never
 * the 3 attempts × 2 s of the per-attempt timeout alone.
 */
export function withStoreDeadline<T>(ms: number, work: () => Promise<T>): Promise<T> {
  const deadline = new StoreDeadline(ms);
  return requestDeadline.run(deadline, work).finally(() => deadline.end());
}

/** Work of the request's own that is no waiting on the store (bcrypt, a pause): its deadline stands still meanwhile. */
export function outsideStoreDeadline<T>(work: () => Promise<T>): Promise<T> {
  const deadline = requestDeadline.getStore();
  return deadline ? deadline.outside(work) : work();
}

/** How long a compensating write may take, whatever is left of its request's deadline. */
const COMPENSATION_DEADLINE_MS = 1000;

/**
 * A write that undoes what the request reserved (a slot given back, an attempt settled), under a
 * short deadline of its own: a request whose deadline has passed (its answer a 503) must still
 * leave the counters as a refusal should, not as they were mid-way.
 */
export function compensating<T>(work: () => Promise<T>): Promise<T> {
  return requestDeadline.getStore() ? withStoreDeadline(COMPENSATION_DEADLINE_MS, work) : work();
}

export function createDocumentClient(options: DynamoOptions): DynamoDBDocumentClient {
  const client = new DynamoDBClient({
    region: options.region,
    ...(options.dynamodbEndpoint ? { endpoint: options.dynamodbEndpoint } : {}),
    ...(options.placeholderCredentials ? { credentials: placeholderCredentials(options.functionName) } : {}),
    maxAttempts: 3,
    // Per attempt: a stuck connection fails (and is retried) even where no request deadline
    // applies (the CLIs). (Without throwOnRequestTimeout this SDK only logs a warning and keeps waiting.)
    requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
  });
  const db = DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true },
  });
  // Every command carries the request's deadline as the SDK's own abortSignal, which ends an
  // attempt in flight and a retry's backoff alike: the repositories need not pass it on. (Only
  // the promise form of send is used here, never a callback.)
  const send = db.send.bind(db) as (command: unknown, options?: HttpHandlerOptions) => Promise<unknown>;
  db.send = ((command: unknown, sendOptions?: HttpHandlerOptions) => send(command, withDeadline(sendOptions))) as typeof db.send;
  return db;
}

function withDeadline(options: HttpHandlerOptions = {}): HttpHandlerOptions {
  const deadline = requestDeadline.getStore()?.signal;
  if (!deadline) return options;
  const own = options.abortSignal as AbortSignal | undefined;
  return { ...options, abortSignal: own ? AbortSignal.any([own, deadline]) : deadline };
}

const UNAVAILABLE_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
  'AbortError',
  'RequestTimeout',
  'RequestTimeoutException',
]);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'ABORT_ERR', 'UND_ERR_SOCKET']);

export function isConditionalCheckFailed(error: unknown): boolean {
  return (error as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}

interface SdkError {
  name?: string;
  code?: string;
  cause?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** Whether an error from the SDK means "the store could not answer now" rather than "the request was wrong". */
export function isStoreUnavailable(error: unknown, depth = 0): boolean {
  if (error === null || typeof error !== 'object') return false;
  const { name, code, cause, $retryable, $metadata } = error as SdkError;
  if ((name && UNAVAILABLE_ERRORS.has(name)) || (code && NETWORK_CODES.has(code))) return true;
  if ($retryable || ($metadata?.httpStatusCode ?? 0) >= 500) return true;
  return depth < 3 && cause !== undefined && isStoreUnavailable(cause, depth + 1);
}

/**
 * Repositories call the store through this, so that a throttled, slow or unreachable DynamoDB
 * becomes a 503 the client may retry, and never a 500 carrying an SDK message.
 */
export async function storeCall<T>(operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (error) {
    if (isStoreUnavailable(error)) throw Object.assign(unavailable(), { cause: error });
    throw error;
  }
}

type Item = Record<string, unknown>;
const BATCH_ATTEMPTS = 3;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Send a batch request, then again whatever DynamoDB left unprocessed under load, with a short
 * backoff; whatever is still unprocessed after BATCH_ATTEMPTS is a 503.
 */
async function untilProcessed<R extends Record<string, unknown>>(request: R, send: (pending: R) => Promise<R | undefined>): Promise<void> {
  let pending = request;
  for (let attempt = 0; attempt < BATCH_ATTEMPTS && Object.keys(pending).length > 0; attempt++) {
    if (attempt > 0) await pause(25 * 2 ** attempt);
    pending = (await send(pending)) ?? ({} as R);
  }
  if (Object.keys(pending).length > 0) throw unavailable();
}

/** BatchGetItem of keys across tables, strongly consistent; returns the items found, by table. */
export async function batchGetAll(db: DynamoDBDocumentClient, keys: Record<string, Item[]>): Promise<Record<string, Item[]>> {
  const request: Record<string, { Keys: Item[]; ConsistentRead: boolean }> = Object.fromEntries(
    Object.entries(keys).map(([table, tableKeys]) => [table, { Keys: tableKeys, ConsistentRead: true }]),
  );
  const found: Record<string, Item[]> = Object.fromEntries(Object.keys(keys).map((table) => [table, []]));
  await untilProcessed(request, async (pending) => {
    const { Responses, UnprocessedKeys } = await storeCall(db.send(new BatchGetCommand({ RequestItems: pending })));
    for (const [table, items] of Object.entries(Responses ?? {})) found[table]!.push(...items);
    return UnprocessedKeys as typeof request | undefined;
  });
  return found;
}

/** One write of a BatchWriteItem: a put or a delete, in any table. */
export type BatchWrite = { table: string; put?: Item; deleteKey?: Item };

/** What one BatchWriteItem request may carry. */
const BATCH_WRITE_LIMIT = 25;

/** BatchWriteItem of puts and deletes across tables (no conditions), 25 writes a request. */
export async function batchWriteAll(db: DynamoDBDocumentClient, writes: BatchWrite[]): Promise<void> {
  for (let start = 0; start < writes.length; start += BATCH_WRITE_LIMIT) {
    const request: Record<string, Array<Record<string, unknown>>> = {};
    for (const write of writes.slice(start, start + BATCH_WRITE_LIMIT)) {
      (request[write.table] ??= []).push(write.put ? { PutRequest: { Item: write.put } } : { DeleteRequest: { Key: write.deleteKey } });
    }
    await untilProcessed(request, async (pending) => {
      const { UnprocessedItems } = await storeCall(db.send(new BatchWriteCommand({ RequestItems: pending as never })));
      return UnprocessedItems as typeof request | undefined;
    });
  }
}

/** `updateIf` for a compensating write (lib/platform/dynamo.ts `compensating`): its own short deadline. */
export function compensatingUpdate(db: DynamoDBDocumentClient, input: ConstructorParameters<typeof UpdateCommand>[0]): Promise<boolean> {
  return compensating(() => updateIf(db, input));
}

/**
 * One taken back from a count that still has one (never below zero, never creating the item), as
 * a compensating write; best effort: a fault here must not hide the answer.
 */
export async function compensatingDecrement(db: DynamoDBDocumentClient, { table, key, attribute }: { table: string; key: Record<string, unknown>; attribute: string }): Promise<void> {
  await compensatingUpdate(db, {
    TableName: table,
    Key: key,
    UpdateExpression: 'ADD #count :minus',
    ConditionExpression: '#count > :zero',
    ExpressionAttributeNames: { '#count': attribute },
    ExpressionAttributeValues: { ':minus': -1, ':zero': 0 },
  }).catch(() => false);
}

/**
 * An UpdateItem whose condition decides: true when it was written, false when its condition did
 * not hold (ConditionalCheckFailed); any other failure is thrown (a store fault as 503).
 */
export async function updateIf(db: DynamoDBDocumentClient, input: ConstructorParameters<typeof UpdateCommand>[0]): Promise<boolean> {
  return (await conditionalUpdate(db, input)) !== undefined;
}

/**
 * The same, reading the item back as written (ALL_NEW): the item, or undefined when the condition
 * did not hold. (updateIf asks for nothing back: its callers are the hot paths.)
 */
export async function updateAndReadIf(db: DynamoDBDocumentClient, input: ConstructorParameters<typeof UpdateCommand>[0]): Promise<Record<string, unknown> | undefined> {
  const output = await conditionalUpdate(db, { ...input, ReturnValues: 'ALL_NEW' });
  return output && (output.Attributes ?? {});
}

/** The UpdateItem's output, or undefined when its condition did not hold. */
async function conditionalUpdate(db: DynamoDBDocumentClient, input: ConstructorParameters<typeof UpdateCommand>[0]) {
  try {
    return await storeCall(db.send(new UpdateCommand(input)));
  } catch (error) {
    if (isConditionalCheckFailed(error)) return undefined;
    throw error;
  }
}

/**
 * Every item a Scan finds, page after page, strongly consistent: for operators' commands (listing
 * users, unlocking an account, re-keying secrets), never for a request's path.
 */
export async function scanAll(db: DynamoDBDocumentClient, input: Omit<ConstructorParameters<typeof ScanCommand>[0], 'ExclusiveStartKey' | 'ConsistentRead'>): Promise<Item[]> {
  const items: Item[] = [];
  let startKey: Item | undefined;
  do {
    const page = await storeCall(db.send(new ScanCommand({ ...input, ConsistentRead: true, ExclusiveStartKey: startKey })));
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}
