/**
 * The local stack, shared by `npm start` and the test suite: dynalite on loopback, the tables
 * from infra/tables.js (the same definition serverless.yml deploys), a demo user, a local
 * signing secret, and serverless-offline serving the Lambdas.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  ResourceNotFoundException,
  ScanCommand,
  type AttributeValue,
  type CreateTableCommandInput,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { FileExistsError, ensurePrivateDir, writePrivateFile } from './private-files.js';
import { paramArguments } from '../infra/settings.js';
import { tableResources } from '../infra/tables.js';
import type { StoreConfig } from '../lib/platform/config.js';
import { createDocumentClient } from '../lib/platform/dynamo.js';
import { placeholderCredentials } from '../lib/platform/local-credentials.js';
import { hashPassword } from '../lib/auth/passwords.js';
import { EmailTakenError, UsersRepository, type Role } from '../lib/store/users.js';

// Local tools run on Node 20 while Lambda runs Node 22; the SDK's notice about that is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const PROJECT_ROOT = resolve(__dirname, '..');
export const DATA_DIR = join(PROJECT_ROOT, '.data');

export interface RunningDynalite {
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

/** dynalite on 127.0.0.1; in memory, or kept in a LevelDB folder when `path` is given. */
export async function startDynalite(port: number, path?: string): Promise<RunningDynalite> {
  if (path) {
    // The local data folder (.data/) holds the signing key and the tables: owner-only.
    ensurePrivateDir(dirname(path), { tighten: dirname(path) === DATA_DIR });
    mkdirSync(path, { recursive: true, mode: 0o700 });
  }
  const server: Server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolveListen());
  });
  const actualPort = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

/**
 * Create the stage's tables where missing, from the CloudFormation definition. Only what
 * dynalite understands is sent: keys, indexes and billing (it has no TTL, SSE or PITR API).
 * A table made before an index was added to its definition is rebuilt with it, items kept
 * (dynalite cannot add an index to a table; CloudFormation does that in AWS).
 */
export async function ensureTables(endpoint: string, stage: string, region = 'us-east-1'): Promise<string[]> {
  const client = new DynamoDBClient({ endpoint, region, credentials: placeholderCredentials() });
  const created: string[] = [];
  try {
    for (const resource of Object.values(tableResources(stage))) {
      const { TableName, AttributeDefinitions, KeySchema, GlobalSecondaryIndexes, BillingMode } =
        resource.Properties as unknown as CreateTableCommandInput;
      const definition: CreateTableCommandInput = { TableName, AttributeDefinitions, KeySchema, GlobalSecondaryIndexes, BillingMode };
      await finishUpgrade(client, definition);
      try {
        await createTable(client, definition);
        created.push(TableName!);
      } catch (error) {
        if (!(error instanceof ResourceInUseException)) throw error;
        if (await lacksIndexes(client, definition)) await upgradeTable(client, definition);
      }
    }
  } finally {
    client.destroy();
  }
  return created;
}

const upgradeStagingName = (table: string) => `${table}-upgrading`;

async function lacksIndexes(client: DynamoDBClient, definition: CreateTableCommandInput): Promise<boolean> {
  const { Table } = await client.send(new DescribeTableCommand({ TableName: definition.TableName }));
  const present = new Set((Table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName));
  return (definition.GlobalSecondaryIndexes ?? []).some((index) => !present.has(index.IndexName));
}

/** Copy every item of one table into another (both dynalite tables of the local store). */
async function copyItems(client: DynamoDBClient, from: string, to: string): Promise<void> {
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: from, ExclusiveStartKey: startKey }));
    const items = page.Items ?? [];
    for (let start = 0; start < items.length; start += 25) {
      let writes: Record<string, WriteRequest[]> | undefined = { [to]: items.slice(start, start + 25).map((Item) => ({ PutRequest: { Item } })) };
      while (writes && Object.keys(writes).length > 0) writes = (await client.send(new BatchWriteItemCommand({ RequestItems: writes }))).UnprocessedItems;
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

/**
 * Rebuild a table under its new definition without a moment when its items exist nowhere: copy
 * them into a staging table, drop the table, create it anew, copy them back, drop the staging
 * table. An upgrade cut short is finished by the next start (finishUpgrade).
 */
async function upgradeTable(client: DynamoDBClient, definition: CreateTableCommandInput): Promise<void> {
  const staging = upgradeStagingName(definition.TableName!);
  await createTable(client, { ...definition, TableName: staging });
  await copyItems(client, definition.TableName!, staging);
  await deleteTable(client, definition.TableName!);
  await finishUpgrade(client, definition);
}

/**
 * Finish (or undo) an upgrade cut short, from what is left. The table gone: the staging copy is
 * whole (the table is dropped only after it), so the table is made from it. The table still
 * without its index: the copy may be partial, so it is dropped and the upgrade starts over. The
 * table already rebuilt: the copy back may be partial, so it is made again (puts are idempotent).
 */
async function finishUpgrade(client: DynamoDBClient, definition: CreateTableCommandInput): Promise<void> {
  const staging = upgradeStagingName(definition.TableName!);
  if (!(await tableExists(client, staging))) return;
  if (!(await tableExists(client, definition.TableName!))) {
    await createTable(client, definition);
  } else if (await lacksIndexes(client, definition)) {
    await deleteTable(client, staging);
    return;
  }
  await copyItems(client, staging, definition.TableName!);
  await deleteTable(client, staging);
}

/** DeleteTable, then wait until the table is gone (a table still DELETING would look like one without its index). */
async function deleteTable(client: DynamoDBClient, table: string): Promise<void> {
  await client.send(new DeleteTableCommand({ TableName: table }));
  await waitUntil(async () => !(await tableExists(client, table)), `Table ${table} was not deleted`);
}

/** CreateTable, then wait until the table is ACTIVE (dynalite takes a tick; items cannot go in before). */
async function createTable(client: DynamoDBClient, definition: CreateTableCommandInput): Promise<void> {
  await client.send(new CreateTableCommand(definition));
  await waitUntil(
    async () => (await client.send(new DescribeTableCommand({ TableName: definition.TableName }))).Table?.TableStatus === 'ACTIVE',
    `Table ${definition.TableName} did not become ACTIVE`,
  );
}

/** Poll `done` every 10 ms for up to 5 s (dynalite's table changes take a tick); throw `failure` after. */
async function waitUntil(done: () => Promise<boolean>, failure: string): Promise<void> {
  for (let waited = 0; waited < 5000; waited += 10) {
    if (await done()) return;
    await new Promise((resolveWait) => setTimeout(resolveWait, 10));
  }
  throw new Error(failure);
}

async function tableExists(client: DynamoDBClient, table: string): Promise<boolean> {
  try {
    await client.send(new DescribeTableCommand({ TableName: table }));
    return true;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return false;
    throw error;
  }
}

export interface SeedUser {
  email: string;
  password: string;
  name: string;
  role: Role;
}

/** Create a user unless one with that email exists; true when it was created. */
export async function seedUser(store: StoreConfig, user: SeedUser): Promise<boolean> {
  const db = createDocumentClient(store);
  try {
    const users = new UsersRepository(db, store.usersTable);
    const passwordHash = await hashPassword(user.password, store.bcryptCost);
    await users.create({ email: user.email, name: user.name, role: user.role, passwordHash }, new Date());
    return true;
  } catch (error) {
    if (error instanceof EmailTakenError) return false;
    throw error;
  } finally {
    db.destroy();
  }
}

/** The local stack's signing secret: made once, random, kept in .data/jwt-secret (git-ignored), owner-only. */
export function localSigningSecret(dataDir = DATA_DIR): string {
  return localSecret(dataDir, 'jwt-secret');
}

/**
 * The local stack's MFA key (MFA_KEY: seals TOTP secrets, keys recovery-code MACs), a key of its
 * own, made and kept like the signing secret, in .data/mfa-key.
 */
export function localMfaKey(dataDir = DATA_DIR): string {
  return localSecret(dataDir, 'mfa-key');
}

function localSecret(dataDir: string, name: string): string {
  const file = join(dataDir, name);
  ensurePrivateDir(dataDir, { tighten: true });
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(48).toString('base64url');
  try {
    writePrivateFile(file, `${secret}\n`, { create: true });
  } catch (error) {
    // Another `npm start` made it first: use that one.
    if (!(error instanceof FileExistsError)) throw error;
    return readFileSync(file, 'utf8').trim();
  }
  return secret;
}

/**
 * The local store, for the operator CLIs: the running stack's dynalite if it answers, else the
 * .data/ folder opened directly on a private port (the same LevelDB files `npm start` uses; the
 * caller closes `owned`).
 */
export async function localStoreEndpoint(stage: string): Promise<{ endpoint: string; owned?: RunningDynalite }> {
  const port = Number(process.env.DYNAMODB_PORT?.trim() || 8000);
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await fetch(endpoint, { method: 'POST', signal: AbortSignal.timeout(1000) });
    return { endpoint };
  } catch {
    const owned = await startDynalite(0, join(DATA_DIR, `dynamodb-${stage}`));
    await ensureTables(owned.endpoint, stage);
    return { endpoint: owned.endpoint, owned };
  }
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

export interface RunningOffline {
  url: string;
  process: ChildProcess;
  /** Everything serverless-offline printed, for diagnosing a failed start. */
  output(): string;
  stop(): Promise<void>;
}

export interface OfflineOptions {
  stage: string;
  port: number;
  env: NodeJS.ProcessEnv;
  /** Params beyond those the environment gives (`name=value`), such as a test's short `lambdaTimeout`. */
  params?: string[];
  /** Where to echo the child's output as it comes (npm start shows it; tests keep it quiet). */
  echo?: (chunk: string) => void;
  startTimeoutMs?: number;
}

export const SERVERLESS_BIN = join(PROJECT_ROOT, 'node_modules', 'serverless', 'bin', 'serverless.js');

/** serverless-offline in its own process group, resolved once it says the server is ready. */
export async function startOffline(options: OfflineOptions): Promise<RunningOffline> {
  const lambdaPort = await freePort();
  // The deployed Lambdas' settings come from the stage's params; the local stack's from its
  // environment, passed on as the same params (infra/settings.js). How serverless-offline runs
  // (in-process, on 127.0.0.1) is in serverless.yml, as for a plain `npx serverless offline`.
  const child = spawn(
    process.execPath,
    [SERVERLESS_BIN, 'offline', 'start', '--stage', options.stage,
      '--httpPort', String(options.port), '--lambdaPort', String(lambdaPort), ...paramArguments(options.env),
      ...(options.params ?? []).flatMap((param) => ['--param', param])],
    { cwd: PROJECT_ROOT, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let output = '';
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    output += text;
    options.echo?.(text);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);

  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        /* already gone */
      }
      const killer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 5000);
      await exited;
      clearTimeout(killer);
    }
  };

  const url = `http://127.0.0.1:${options.port}`;
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`serverless-offline did not start within ${options.startTimeoutMs ?? 120_000} ms:\n${output}`)), options.startTimeoutMs ?? 120_000);
    const check = () => {
      if (/Server ready:/.test(output)) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        child.stderr!.off('data', check);
        ready();
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`serverless-offline exited with code ${code}:\n${output}`));
    });
  }).catch(async (error) => {
    await stop();
    throw error;
  });
  return { url, process: child, output: () => output, stop };
}

/** `.env.<stage>`: what the framework loads for that stage (`useDotenv`), so `invoke local` reaches the running stack. */
export const localEnvFile = (stage: string) => join(PROJECT_ROOT, `.env.${stage}`);

/**
 * Write the running local stack's environment (endpoints, key) for the tools that start on their
 * own, `serverless invoke local` above all; owner-only, since it may hold the local signing key.
 */
export function writeLocalEnv(stage: string, variables: Record<string, string | undefined>): void {
  const lines = Object.entries(variables)
    .filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== '')
    .map(([name, value]) => `${name}=${value}`);
  writePrivateFile(localEnvFile(stage), `# Written by the local stack while it runs; removed when it stops.\n${lines.join('\n')}\n`);
}

export function removeLocalEnv(stage: string): void {
  rmSync(localEnvFile(stage), { force: true });
}
