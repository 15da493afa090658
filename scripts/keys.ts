/**
 * Operators' signing-key rotation: `npm run keys -- <command> [options]`.
 * Edits the local stack's key ring (.data/jwt-secret) by default, or with `--aws` the stage's
 * SSM SecureString parameter the Lambdas read (region and credentials from the usual AWS env).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GetParameterCommand, ParameterAlreadyExists, ParameterNotFound, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { signingKeyAlias, signingKeyParameter } from '../infra/signing-keys.js';
import { ConfigError, loadKeyTimings, loadStoreConfig, signingKeyEntries, ssmEndpointFrom } from '../lib/platform/config.js';
import { MIN_REFETCH_SECONDS } from '../lib/auth/signing-keys.js';
import { CLOCK_TOLERANCE_SECONDS } from '../lib/auth/tokens.js';
import { UsageError, audit, runCli, type ArgSpec, type Args } from './cli.js';
import { KeyRingError, formatRing, kidCreatedAt, newKid, newSecret, retire, rotate, type RingEntries } from './key-ring.js';
import { DATA_DIR } from './local-stack.js';
import { stageParam } from './stage-params.js';
import { FileExistsError, ensurePrivateDir, writePrivateFile } from './private-files.js';

const USAGE = `Usage: npm run keys -- <command> [options]

Commands:
  init      create the key ring with one new key, where there is none yet
  list      the key ids in the ring, current first (never the keys themselves)
  rotate    add a new key that signs from now on; the previous keys still verify
  retire [--kid K] [--force]
            remove the previous keys (or only K) once every token they signed has expired:
            refused until the access-token lifetime + the key cache time + 35 s after the
            rotation (with --aws, the stage's params; locally, ACCESS_TOKEN_TTL_SECONDS and
            JWT_SECRET_CACHE_SECONDS; defaults 3600 and 300)

Options:
  --aws        the stage's SSM parameter /vpn-auth/<stage>/jwt-signing-keys in AWS
               (AWS_REGION, AWS credentials) instead of the local stack's .data/jwt-secret
  --stage S    with --aws: the stage (default: $STAGE or dev)
  --file F     without --aws: a ring file other than .data/jwt-secret
  --force      with retire: do not wait for old tokens to expire (their users must refresh)`;

const ARGS: ArgSpec = { values: new Set(['stage', 'kid', 'file']), flags: new Set(['aws', 'force', 'help']) };

/** Where a ring is kept: read as text (undefined when there is none), written whole. */
interface RingStore {
  where: string;
  /** The deployed stage whose ring it is; undefined for a local ring. */
  stage?: string;
  read(): Promise<string | undefined>;
  write(text: string, options: { create: boolean }): Promise<void>;
  /** What an operator does next for the change to reach the running API. */
  afterChange: string;
}

function localStore(file = join(DATA_DIR, 'jwt-secret')): RingStore {
  return {
    where: file,
    read: async () => (existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined),
    write: async (text, { create }) => {
      // Owner-only, and whole or not at all: a half-written ring would stop the stack signing in anyone.
      ensurePrivateDir(dirname(file), { tighten: dirname(file) === DATA_DIR });
      try {
        writePrivateFile(file, `${text}\n`, { create });
      } catch (error) {
        if (error instanceof FileExistsError) throw new KeyRingError(error.message);
        throw error;
      }
    },
    afterChange: 'Restart `npm start` to use it.',
  };
}

function ssmStore(stage: string): RingStore {
  const { region } = loadStoreConfig({ ...process.env, STAGE: stage, DYNAMODB_ENDPOINT: '' });
  const name = signingKeyParameter(stage);
  const endpoint = ssmEndpointFrom();
  // The SDK's own client (the Lambdas read with a signed fetch of their own, lib/platform/parameter-store.ts,
  // to keep their bundles small; the CLI is not bundled). Its standard retries cover throttling
  // and transient faults.
  const ssm = new SSMClient({ region, ...(endpoint ? { endpoint } : {}), maxAttempts: 3 });
  const read = async (): Promise<string | undefined> => {
    try {
      const { Parameter } = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      return Parameter?.Value;
    } catch (error) {
      if (error instanceof ParameterNotFound) return undefined;
      throw error;
    }
  };
  return {
    where: `SSM parameter ${name} (${region})`,
    stage,
    read,
    write: async (text, { create }) => {
      try {
        // Under the stage's own KMS key (deployed with the stack), never SSM's account-wide aws/ssm.
        await ssm.send(
          new PutParameterCommand({
            Name: name,
            Value: text,
            Type: 'SecureString',
            KeyId: signingKeyAlias(stage),
            Overwrite: !create,
            Description: 'JWT signing keys of the VPN Enterprise auth API (npm run keys)',
          }),
        );
      } catch (error) {
        // A create the SDK sent again after a timeout may have landed the first time: ours, not a conflict.
        const retried = ((error as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1) > 1;
        if (error instanceof ParameterAlreadyExists && retried && (await read()) === text) return;
        if (error instanceof ParameterAlreadyExists) throw new KeyRingError(`${name} already exists`);
        throw error;
      }
    },
    afterChange: 'Running Lambdas use it within JWT_SECRET_CACHE_SECONDS (default 300 s), and at once when they meet a token it signed.',
  };
}

async function existingRing(store: RingStore): Promise<RingEntries> {
  const text = await store.read();
  if (text === undefined) throw new KeyRingError(`No key ring at ${store.where}: create it with \`npm run keys -- init${store.where.startsWith('SSM') ? ' --aws' : ''}\``);
  return signingKeyEntries(text, store.where);
}

function describeRing(entries: RingEntries): string {
  return entries
    .map(([kid], index) => {
      const since = kidCreatedAt(kid);
      return `${kid}  ${index === 0 ? 'current (signs and verifies)' : 'previous (verifies only)'}${since ? `  created ${since.toISOString()}` : ''}`;
    })
    .join('\n');
}

async function run(args: Args, store: RingStore): Promise<string> {
  const now = new Date();
  switch (args.command) {
    case 'init': {
      if ((await store.read()) !== undefined) throw new KeyRingError(`A key ring already exists at ${store.where}; use rotate to change it`);
      const kid = newKid(now, new Set());
      await store.write(formatRing([[kid, newSecret()]]), { create: true });
      audit('keys-cli', 'signing_key_created', { kid, where: store.where });
      return `Created the key ring at ${store.where} with key ${kid}.`;
    }
    case 'list':
      return `${store.where}\n${describeRing(await existingRing(store))}`;
    case 'rotate': {
      const entries = rotate(await existingRing(store), now);
      await store.write(formatRing(entries), { create: false });
      const [kid] = entries[0]!;
      audit('keys-cli', 'signing_key_rotated', { kid, previous: entries.slice(1).map(([previous]) => previous), where: store.where });
      return `Key ${kid} now signs; ${entries.length - 1} previous key(s) still verify. ${store.afterChange}\n${describeRing(entries)}`;
    }
    case 'retire': {
      const kid = args.options.get('kid');
      if (kid === true) throw new UsageError('--kid needs a value');
      // The last token an old key can sign is signed just before the last container's cache
      // expires and its background refresh lands; it is accepted until its exp plus the leeway.
      // A deployed stage's timings are its params (what its Lambdas run with); a local ring's, the environment's.
      const timings = store.stage === undefined ? process.env : { ACCESS_TOKEN_TTL_SECONDS: String(stageParam(store.stage, 'accessTokenTtlSeconds') ?? ''), JWT_SECRET_CACHE_SECONDS: String(stageParam(store.stage, 'jwtSecretCacheSeconds') ?? '') };
      const { accessTokenTtlSeconds: ttl, keyCacheSeconds: cache } = loadKeyTimings(timings);
      const minAgeSeconds = ttl + cache + MIN_REFETCH_SECONDS + CLOCK_TOLERANCE_SECONDS;
      const assumed = store.stage === undefined
        ? `(assuming ACCESS_TOKEN_TTL_SECONDS=${ttl} and JWT_SECRET_CACHE_SECONDS=${cache}, as the local stack runs)`
        : `(the stage's params: accessTokenTtlSeconds=${ttl}, jwtSecretCacheSeconds=${cache})`;
      let result: ReturnType<typeof retire>;
      try {
        result = retire(await existingRing(store), { kid, now, minAgeSeconds, force: args.options.has('force') });
      } catch (error) {
        if (error instanceof KeyRingError && /may be valid until|Cannot tell when/.test(error.message)) throw new KeyRingError(`${error.message} ${assumed}`);
        throw error;
      }
      await store.write(formatRing(result.entries), { create: false });
      audit('keys-cli', 'signing_key_retired', { kids: result.removed, forced: args.options.has('force'), where: store.where });
      return `Retired ${result.removed.join(', ')}. ${store.afterChange}\n${describeRing(result.entries)}`;
    }
    default:
      throw new UsageError(args.command === undefined ? 'A command is required' : `Unknown command "${args.command}"`);
  }
}

runCli({
  usage: USAGE,
  spec: ARGS,
  refusals: [KeyRingError, ConfigError],
  run: async (args) => {
    if (args.options.has('stage') && !args.options.has('aws')) throw new UsageError('--stage goes with --aws (the local stack has one key ring)');
    if (args.options.has('file') && args.options.has('aws')) throw new UsageError('--file is for a local ring, not with --aws');
    const stage = (args.options.get('stage') as string | undefined) ?? (process.env.STAGE?.trim() || 'dev');
    return run(args, args.options.has('aws') ? ssmStore(stage) : localStore(args.options.get('file') as string | undefined));
  },
});
