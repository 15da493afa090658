/**
 * The SSO token exchange (POST /v1/auth/sso/token) against its floor: one read, one conditional
 * write and a signature. Part of `npm run bench` (bench/run.ts); alone, `npx tsx bench/sso-token.ts`
 * starts its own dynalite and prints the one row.
 */
import { createHash, randomBytes } from 'node:crypto';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { SignJWT } from 'jose';
import type { App } from '../lib/app.js';
import { batchWriteAll, type BatchWrite } from '../lib/platform/dynamo.js';
import { epochSeconds } from '../lib/store/sessions.js';
import { codeKey, newSsoCode } from '../lib/store/sso.js';
import { event, median, rate, type Handler } from './common.js';

const VERIFIER = randomBytes(32).toString('base64url');
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');

/**
 * Ours (the handler, in-process, a fresh code each request) and the floor, in alternating rounds,
 * the median of each. Codes live 60 s: each round's are written just before it.
 */
export async function measureSsoToken(app: App, { userId, rounds, seconds = 1 }: { userId: string; rounds: number; seconds?: number }): Promise<{ ops: number; floor: number }> {
  const handler = (await import('../functions/sso-token.js')).handler as Handler;
  const context = { awsRequestId: 'bench', getRemainingTimeInMillis: () => 10_000 };
  const template = event('sso-token');
  let pool: string[] = [];
  const fill = async (count: number) => {
    const now = new Date();
    const writes: BatchWrite[] = [];
    pool = [];
    for (let i = 0; i < count; i++) {
      const code = newSsoCode(userId);
      pool.push(code.token);
      writes.push({
        table: app.config.attemptsTable,
        put: { ...codeKey(code.hash), user_id: userId, code_challenge: CHALLENGE, issuer: 'https://idp.bench.example', idp_mfa: false, created_at: now.toISOString(), expires_at: epochSeconds(now) + 60 },
      });
    }
    await batchWriteAll(app.db, writes);
  };
  const op = async () => {
    const code = pool.pop();
    if (!code) throw new Error('the round used up its codes');
    const reply = await handler({ ...template, body: JSON.stringify({ code, code_verifier: VERIFIER }) }, context);
    if (reply.statusCode !== 200) throw new Error(`sso token answered ${reply.statusCode}: ${reply.body}`);
  };
  const ring = await app.keyRing.current();
  const key = ring.keys.get(ring.currentKid)!;
  const floor = async () => {
    await app.db.send(new GetCommand({ TableName: app.config.usersTable, Key: { pk: `USER#${userId}` }, ConsistentRead: true }));
    await app.db.send(new UpdateCommand({ TableName: app.config.attemptsTable, Key: { pk: 'BENCH#sso' }, UpdateExpression: 'SET n = :n', ConditionExpression: 'attribute_not_exists(spent_at)', ExpressionAttributeValues: { ':n': 1 } }));
    await new SignJWT({ sid: 'bench' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt().setExpirationTime('1h').sign(key);
  };
  // How many codes a round takes: measured once, with room to spare.
  await fill(4000);
  const probe = await rate(op, 1);
  const perRound = Math.ceil(probe * seconds * 2) + 200;
  await rate(floor, 1);
  const results = { ops: [] as number[], floor: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    await fill(perRound);
    results.ops.push(await rate(op, seconds));
    results.floor.push(await rate(floor, seconds));
  }
  return { ops: median(results.ops), floor: median(results.floor) };
}

// Alone: its own dynalite and app.
async function alone(): Promise<void> {
  const { createApp } = await import('../lib/app.js');
  const { loadConfig } = await import('../lib/platform/config.js');
  const { ensureTables, startDynalite } = await import('../scripts/local-stack.js');
  const dynamo = await startDynalite(0);
  await ensureTables(dynamo.endpoint, 'bench');
  const env = { STAGE: 'bench', DYNAMODB_ENDPOINT: dynamo.endpoint, JWT_SECRET: randomBytes(48).toString('base64url'), MFA_KEY: randomBytes(48).toString('base64url'), LOG_LEVEL: 'silent', POWERTOOLS_METRICS_DISABLED: 'true', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  Object.assign(process.env, env);
  const app = createApp(loadConfig(env));
  const user = await app.users.create({ email: 'bench-sso@example.com', name: 'Bench', role: 'user', passwordHash: '' }, new Date());
  const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
  const { ops, floor } = await measureSsoToken(app, { userId: user.id, rounds });
  console.log(`sso token handler, warm, ops/s (floor: a read + a conditional write + sign): ours ${ops.toFixed(0)}, floor ${floor.toFixed(0)}, ratio ${(ops / floor).toFixed(2)} (median of ${rounds} rounds)`);
  app.db.destroy();
  await dynamo.close();
}

if (process.argv[1]?.endsWith('sso-token.ts')) {
  alone().then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
