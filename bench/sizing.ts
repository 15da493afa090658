/**
 * `npm run bench:sizing`: what a login costs on Lambda, from the CPU time one bcrypt comparison
 * takes on this machine at BCRYPT_COST 10, 11 and 12; likewise `/auth/me` and `/auth/refresh`,
 * from the CPU time of their handlers with DynamoDB's answers replayed (DynamoDB's own work
 * happens in AWS, not in the Lambda). Lambda gives a function CPU in proportion to its memory
 * (1769 MB = one full vCPU), so a CPU-bound step takes cpu_time * 1769 / memory.
 * Prices: AWS Lambda arm64, $0.0000133334 per GB-second and $0.20 per million requests
 * (us-east-1 list price; check yours). Assumes this machine's core is about as fast as a
 * Graviton2 vCPU, which is the rough part of the estimate.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import bcrypt from 'bcryptjs';
import { loadStoreConfig } from '../lib/platform/config.js';
import type { HttpEvent } from '../lib/http/http.js';
import { ensureTables, seedUser, startDynalite } from '../scripts/local-stack.js';
import { event, median, type Handler } from './common.js';

const PRICE_PER_GB_SECOND = 0.0000133334;
const PRICE_PER_MILLION_REQUESTS = 0.2;
const FULL_VCPU_MB = 1769;
const MEMORY_SIZES = [512, 1024, 1769];
/** A DynamoDB round trip in AWS, from a Lambda in the same region: waiting, not CPU. */
const ROUND_TRIP_MS = 4;
/**
 * DynamoDB round trips a login waits for one after the other (4 of its 6 calls: the read, the pair
 * and IP reservations together, the account's, then the session's batch and the IP give-back together).
 */
const LOGIN_IO_MS = 4 * ROUND_TRIP_MS;

async function compareCpuMs(cost: number): Promise<number> {
  const hash = await bcrypt.hash('a-password-for-sizing', cost);
  await bcrypt.compare('a-password-for-sizing', hash); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const cpu = process.cpuUsage();
    const started = performance.now();
    await bcrypt.compare('a-password-for-sizing', hash);
    const used = process.cpuUsage(cpu);
    samples.push(Math.max((used.user + used.system) / 1000, performance.now() - started));
  }
  return median(samples);
}

function lambdaFigures(cpuMs: number, ioMs: number): Record<number, { latencyMs: number; dollarsPerMillion: number }> {
  const perSize: Record<number, { latencyMs: number; dollarsPerMillion: number }> = {};
  for (const mb of MEMORY_SIZES) {
    const latencyMs = cpuMs / Math.min(1, mb / FULL_VCPU_MB) + ioMs;
    perSize[mb] = { latencyMs, dollarsPerMillion: (latencyMs / 1000) * (mb / 1024) * PRICE_PER_GB_SECOND * 1e6 + PRICE_PER_MILLION_REQUESTS };
  }
  return perSize;
}

type Exchange = { statusCode: number; headers: Record<string, string>; body: Buffer };
interface RequestHandlerLike {
  handle(request: { headers: Record<string, string> }, options?: unknown): Promise<{ response: { statusCode: number; headers: Record<string, string>; body: unknown } }>;
}

/**
 * The warm CPU time of the me and refresh handlers, without DynamoDB: each DynamoDB answer is
 * recorded once from dynalite, then replayed, so what is measured is our code and the SDK's
 * (serialise, sign, parse), which is what a Lambda spends its CPU on.
 */
async function handlerCpuMs(): Promise<{ me: number; refresh: number }> {
  const dynamo = await startDynalite(0);
  const env = { STAGE: 'sizing', DYNAMODB_ENDPOINT: dynamo.endpoint, JWT_SECRET: randomBytes(48).toString('base64url'), BCRYPT_COST: '4', LOG_LEVEL: 'silent' };
  Object.assign(process.env, env);
  await ensureTables(dynamo.endpoint, 'sizing');
  await seedUser(loadStoreConfig(env), { email: 'sizing@example.com', password: 'sizing-password', name: 'Sizing', role: 'user' });
  // The handlers' own client, before its first request resolves the request handler.
  const { app } = await import('../lib/app.js');
  const config = app().db.config as unknown as { requestHandler: RequestHandlerLike };
  const real = config.requestHandler;
  const tape = new Map<string, Exchange>();
  let replaying = false;
  config.requestHandler = {
    async handle(request, options) {
      const action = request.headers['x-amz-target']!;
      if (replaying) {
        const { statusCode, headers, body } = tape.get(action)!;
        return { response: { statusCode, headers, body: Readable.from([body]) } };
      }
      const { response } = await real.handle(request, options);
      const chunks: Buffer[] = [];
      for await (const chunk of response.body as AsyncIterable<Buffer>) chunks.push(chunk);
      tape.set(action, { statusCode: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) });
      return { response: { ...response, body: Readable.from([Buffer.concat(chunks)]) } };
    },
  };
  const handler = async (fn: string) => (await import(`../functions/${fn}.js`)).handler as Handler;
  const context = { awsRequestId: 'sizing', getRemainingTimeInMillis: () => 10_000 };
  const [login, me, refresh] = [await handler('login'), await handler('me'), await handler('refresh')];
  const pair = JSON.parse((await login(event('login', (e) => (e.body = JSON.stringify({ email: 'sizing@example.com', password: 'sizing-password' }))), context)).body!);
  const meEvent = event('me', (e) => (e.headers.authorization = `Bearer ${pair.token}`));
  const refreshEvent = event('refresh', (e) => (e.body = JSON.stringify({ refresh_token: pair.refresh_token })));
  // Record: one real request each (the refresh's reads come before its rotation, so replaying
  // them presents the same, still current, refresh token every time).
  for (const [fn, ev] of [[me, meEvent], [refresh, refreshEvent]] as const) {
    const result = await fn(ev, context);
    if (result.statusCode !== 200) throw new Error(`recording: ${result.statusCode} ${result.body}`);
  }
  replaying = true;
  const cpuPerCall = async (fn: Handler, ev: HttpEvent) => {
    for (let i = 0; i < 2000; i++) await fn(ev, context); // warm-up
    const samples: number[] = [];
    for (let round = 0; round < 5; round++) {
      const cpu = process.cpuUsage();
      for (let i = 0; i < 2000; i++) {
        const result = await fn(ev, context);
        if (result.statusCode !== 200) throw new Error(`replay: ${result.statusCode} ${result.body}`);
      }
      const used = process.cpuUsage(cpu);
      samples.push((used.user + used.system) / 1000 / 2000);
    }
    return median(samples);
  };
  const figures = { me: await cpuPerCall(me, meEvent), refresh: await cpuPerCall(refresh, refreshEvent) };
  app().db.destroy();
  await dynamo.close();
  return figures;
}

async function main(): Promise<void> {
  const rows: string[][] = [['BCRYPT_COST', 'bcrypt CPU here', ...MEMORY_SIZES.flatMap((mb) => [`${mb} MB latency`, `${mb} MB $/1M logins`])]];
  const results: Record<string, unknown> = {};
  for (const cost of [10, 11, 12]) {
    const cpuMs = await compareCpuMs(cost);
    const row = [String(cost), `${cpuMs.toFixed(0)} ms`];
    const perSize = lambdaFigures(cpuMs, LOGIN_IO_MS);
    for (const mb of MEMORY_SIZES) row.push(`${perSize[mb]!.latencyMs.toFixed(0)} ms`, `$${perSize[mb]!.dollarsPerMillion.toFixed(2)}`);
    results[cost] = { cpuMs, perSize };
    rows.push(row);
  }
  const handlers = await handlerCpuMs();
  for (const [fn, roundTrips] of [['me', 1], ['refresh', 2]] as const) {
    const perSize = lambdaFigures(handlers[fn], roundTrips * ROUND_TRIP_MS);
    results[fn] = { cpuMs: handlers[fn], roundTrips, perSize };
    rows.push([`/auth/${fn}`, `${handlers[fn].toFixed(2)} ms`, ...MEMORY_SIZES.flatMap((mb) => [`${perSize[mb]!.latencyMs.toFixed(1)} ms`, `$${perSize[mb]!.dollarsPerMillion.toFixed(2)}`])]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  '));
  console.log(JSON.stringify(results));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
