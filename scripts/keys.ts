/**
 * Operators' key rotation: `npm run keys -- <command> [options]`, for the JWT signing keys or, with
 * `--ring mfa`, the MFA keys (TOTP secrets, recovery codes). Edits the local stack's ring
 * (.data/jwt-secret, .data/mfa-key) by default, or with `--aws` the stage's SSM SecureString
 * parameter the Lambdas read (region and credentials from the usual AWS env), where the ring is
 * sealed by KMS under the stage's key (lib/auth/sealed-ring.ts): only the stage's
 * `signingKeyOperators` can run these with `--aws`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DecryptCommand, EncryptCommand, IncorrectKeyException, InvalidCiphertextException, KMSClient } from '@aws-sdk/client-kms';
import { DescribeParametersCommand, GetParameterCommand, ParameterAlreadyExists, ParameterNotFound, PutParameterCommand, SSMClient, paginateGetParameterHistory, type ParameterHistory } from '@aws-sdk/client-ssm';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mfaKeyAlias, mfaKeyParameter, ringEncryptionContext, signingKeyAlias, signingKeyParameter } from '../infra/signing-keys.js';
import { ConfigError, dynamodbEndpointFrom, kmsEndpointFrom, loadKeyTimings, loadStoreConfig, parseSigningKeys, signingKeyEntries, ssmEndpointFrom } from '../lib/platform/config.js';
import { createDocumentClient } from '../lib/platform/dynamo.js';
import { open, seal, sealedKid } from '../lib/mfa/secret-box.js';
import { openClientSecret, sealClientSecret } from '../lib/auth/identity-providers.js';
import { SsoRepository } from '../lib/store/sso.js';
import { MfaRepository } from '../lib/store/mfa.js';
import { MIN_REFETCH_SECONDS } from '../lib/auth/signing-keys.js';
import { CLOCK_TOLERANCE_SECONDS } from '../lib/auth/tokens.js';
import { UsageError, audit, runCli, type ArgSpec, type Args } from './cli.js';
import { KeyRingError, formatRing, kidCreatedAt, newKid, newSecret, retire, rotate, type RingEntries } from './key-ring.js';
import { DATA_DIR, localStoreEndpoint, type RunningDynalite } from './local-stack.js';
import { stageParam } from './stage-params.js';
import { FileExistsError, ensurePrivateDir, writePrivateFile } from './private-files.js';

const USAGE = `Usage: npm run keys -- <command> [options]

Commands:
  init      create the key ring with one new key, where there is none yet
  list      the key ids in the ring, current first (never the keys themselves); for the MFA
            ring, how many TOTP secrets and recovery-code sets each key protects
  rotate    add a new key that signs (or seals) from now on; the previous keys still verify (open)
  retire [--kid K] [--force]
            remove the previous keys (or only K).
            Signing keys: once every token they signed has expired: refused until the
            access-token lifetime + the key cache time + 35 s after the rotation (with --aws, the
            stage's params; locally, ACCESS_TOKEN_TTL_SECONDS and JWT_SECRET_CACHE_SECONDS;
            defaults 3600 and 300).
            MFA keys: once no TOTP secret is sealed and no recovery code is kept under them
            (reseal first; recovery codes made under an old key last until they are replaced),
            and JWT_SECRET_CACHE_SECONDS + 35 s after the rotation (running Lambdas seal with the
            key they hold until then)
  reseal    MFA ring only: seal every TOTP secret (and SSO client secret) sealed under a previous key again under the current one
  seal      with --aws: seal a ring the parameter holds in plaintext (written before rings were
            sealed) under the stage's KMS key, as it is; says who last wrote it. The Lambdas
            refuse a plaintext ring
  restore   with --aws: when the parameter holds a ring the Lambdas refuse (someone else wrote
            it), put back the newest earlier version that the stage's key sealed; says which
            versions it passed over and who wrote them

Options:
  --ring R     signing (default): the JWT signing keys; mfa: the MFA keys
  --aws        the stage's SSM parameter (/vpn-auth/<stage>/jwt-signing-keys or /mfa-keys) in AWS
               (AWS_REGION, AWS credentials) instead of the local stack's .data/jwt-secret or .data/mfa-key
  --stage S    with --aws: the stage (default: $STAGE or dev); the MFA ring's users table is the stage's too
  --file F     without --aws: a ring file other than the local stack's
  --force      with retire: signing keys, do not wait for old tokens to expire (their users must
               refresh); MFA keys, do not wait, and retire even though users still need them (they
               then need mfa-reset)`;

const ARGS: ArgSpec = { values: new Set(['stage', 'kid', 'file', 'ring']), flags: new Set(['aws', 'force', 'help']) };

type RingName = 'signing' | 'mfa';

/** The two rings: where each lives, locally and in AWS, and what its audit lines are called. */
const RINGS = {
  signing: {
    file: 'jwt-secret',
    parameter: signingKeyParameter,
    alias: signingKeyAlias,
    description: 'JWT signing keys of the VPN Enterprise auth API (npm run keys)',
    event: 'signing_key',
  },
  mfa: {
    file: 'mfa-key',
    parameter: mfaKeyParameter,
    alias: mfaKeyAlias,
    description: 'MFA keys (TOTP secrets, recovery codes) of the VPN Enterprise auth API (npm run keys -- --ring mfa)',
    event: 'mfa_key',
  },
} as const;

/** Where a ring is kept: read as text (undefined when there is none), written whole. */
interface RingStore {
  where: string;
  /** The deployed stage whose ring it is; undefined for a local ring. */
  stage?: string;
  read(): Promise<string | undefined>;
  write(text: string, options: { create: boolean }): Promise<void>;
  /** SSM only: seal a ring the parameter holds in plaintext; what was done, for the operator. */
  seal?(): Promise<string>;
  /** SSM only: put back the newest version the stage's key sealed, over ones it did not; what was done. */
  restore?(): Promise<string>;
  /** What an operator does next for the change to reach the running API. */
  afterChange: string;
}

function localStore(ring: RingName, file = join(DATA_DIR, RINGS[ring].file)): RingStore {
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

// A KMS ciphertext, base64: what the parameter holds once sealed (anything else is plaintext).
const SEALED = /^(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function ssmStore(stage: string, ring: RingName): RingStore {
  const { region } = loadStoreConfig({ ...process.env, STAGE: stage, DYNAMODB_ENDPOINT: '' });
  const name = RINGS[ring].parameter(stage);
  const alias = RINGS[ring].alias(stage);
  const context = ringEncryptionContext(stage, ring);
  const ssmEndpoint = ssmEndpointFrom();
  const kmsEndpoint = kmsEndpointFrom();
  // The SDK's own clients (the Lambdas read and decrypt with signed fetches of their own,
  // lib/platform/aws-json.ts, to keep their bundles small; the CLI is not bundled). Their standard
  // retries cover throttling and transient faults.
  const ssm = new SSMClient({ region, ...(ssmEndpoint ? { endpoint: ssmEndpoint } : {}), maxAttempts: 3 });
  const kms = new KMSClient({ region, ...(kmsEndpoint ? { endpoint: kmsEndpoint } : {}), maxAttempts: 3 });
  const where = `SSM parameter ${name} (${region})`;
  const options = ring === 'mfa' ? ' --ring mfa' : '';

  const readValue = async (): Promise<string | undefined> => {
    try {
      const { Parameter } = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      return Parameter?.Value;
    } catch (error) {
      if (error instanceof ParameterNotFound) return undefined;
      throw error;
    }
  };
  /**
   * The ring a sealed value holds, opened as the Lambdas open it (the stage's key and the ring's
   * context named): what someone else put there is refused here too, never rotated into a ring
   * the stage's key then vouches for.
   */
  const open = async (value: string): Promise<string> => {
    if (!SEALED.test(value.trim())) {
      throw new KeyRingError(
        `${where} holds a ring in plaintext, which the Lambdas refuse. If it is the stage's own ring from before rings were sealed, ` +
          `seal it with \`npm run keys -- seal${options} --aws --stage ${stage}\` (docs/deploying.md, "Sealed rings")`,
      );
    }
    try {
      const { Plaintext } = await kms.send(new DecryptCommand({ CiphertextBlob: Buffer.from(value.trim(), 'base64'), KeyId: alias, EncryptionContext: context }));
      return Buffer.from(Plaintext!).toString('utf8');
    } catch (error) {
      if (error instanceof IncorrectKeyException || error instanceof InvalidCiphertextException) {
        throw new KeyRingError(`${where} does not hold a ring sealed under ${alias} for ${JSON.stringify(context)} (${error.name}): the Lambdas refuse it. Someone other than this CLI wrote it; see \`aws ssm get-parameter-history --name ${name}\``);
      }
      throw error;
    }
  };
  const read = async (): Promise<string | undefined> => {
    const value = await readValue();
    return value === undefined ? undefined : open(value);
  };
  /** Whether a value is a ring this stage's key sealed for this ring. */
  const opens = async (value: string | undefined): Promise<boolean> => {
    if (value === undefined) return false;
    try {
      await open(value);
      return true;
    } catch (error) {
      if (error instanceof KeyRingError) return false;
      throw error;
    }
  };
  const put = async (text: string, { create }: { create: boolean }): Promise<void> => {
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: alias, Plaintext: Buffer.from(text, 'utf8'), EncryptionContext: context }));
    const sealed = Buffer.from(CiphertextBlob!).toString('base64');
    // A standard parameter holds 4 KB: some 20 keys. Retire old ones first.
    if (sealed.length > 4096) throw new KeyRingError(`The sealed ring would be ${sealed.length} characters, over SSM's 4096 of a standard parameter: retire previous keys first`);
    try {
      // The SecureString under the stage's key too, never SSM's account-wide aws/ssm: whoever may
      // read SSM but not decrypt sees not even the ciphertext (so cannot put an older one back).
      await ssm.send(
        new PutParameterCommand({
          Name: name,
          Value: sealed,
          Type: 'SecureString',
          KeyId: alias,
          Overwrite: !create,
          Description: RINGS[ring].description,
        }),
      );
    } catch (error) {
      // A create the SDK sent again after a timeout may have landed the first time: ours, not a conflict.
      const retried = ((error as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1) > 1;
      if (error instanceof ParameterAlreadyExists && retried && (await read().catch(() => undefined)) === text) return;
      if (error instanceof ParameterAlreadyExists) throw new KeyRingError(`${name} already exists`);
      throw error;
    }
  };
  return {
    where,
    stage,
    read,
    write: put,
    seal: async () => {
      const value = await readValue();
      if (value === undefined) throw new KeyRingError(`No key ring at ${where}: create it with \`npm run keys -- init${options} --aws\``);
      if (SEALED.test(value.trim())) {
        // Sealed already (then it opens), or a ciphertext this stage's key did not make (then open says so).
        const entries = signingKeyEntries(await open(value), where);
        return `${where} is sealed under ${alias} already (${entries.map(([kid]) => kid).join(', ')}); nothing to do.`;
      }
      const entries = signingKeyEntries(value.trim(), where);
      // Who wrote the plaintext: before sealing, anyone allowed ssm:PutParameter could have. The operator judges.
      const { Parameters } = await ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Name', Option: 'Equals', Values: [name] }] }));
      const written = Parameters?.[0];
      await put(formatRing(entries), { create: false });
      const kids = entries.map(([kid]) => kid);
      audit('keys-cli', `${RINGS[ring].event}s_sealed`, { kids, where, version: written?.Version, lastModifiedUser: written?.LastModifiedUser });
      return (
        `Sealed the ring at ${where} under ${alias}: ${kids.join(', ')} (current ${kids[0]}).\n` +
        `It was version ${written?.Version ?? '?'}, written ${written?.LastModifiedDate?.toISOString() ?? 'at an unknown time'} by ${written?.LastModifiedUser ?? 'an unknown principal'} under ${written?.KeyId ?? 'an unknown key'}.\n` +
        `If that is not who you expect, rotate now and retire the old keys as soon as \`retire\` allows (docs/deploying.md, "Sealed rings").`
      );
    },
    restore: async () => {
      if (await opens(await readValue())) return `${where} holds a ring sealed under ${alias} already; nothing to restore.`;
      // SSM keeps a parameter's last 100 versions; newest first from here.
      const history: ParameterHistory[] = [];
      for await (const page of paginateGetParameterHistory({ client: ssm }, { Name: name, WithDecryption: true, MaxResults: 50 })) history.push(...(page.Parameters ?? []));
      history.sort((a, b) => (b.Version ?? 0) - (a.Version ?? 0));
      const passedOver: ParameterHistory[] = [];
      for (const version of history) {
        if (!(await opens(version.Value))) {
          passedOver.push(version);
          continue;
        }
        // The very ciphertext the operators sealed then: it opens as it did.
        await ssm.send(new PutParameterCommand({ Name: name, Value: version.Value!, Type: 'SecureString', KeyId: alias, Overwrite: true, Description: RINGS[ring].description }));
        const kids = signingKeyEntries(await open(version.Value!), where).map(([kid]) => kid);
        const others = passedOver.map((other) => `version ${other.Version} (${other.LastModifiedDate?.toISOString() ?? '?'}, ${other.LastModifiedUser ?? 'unknown'})`);
        audit('keys-cli', `${RINGS[ring].event}s_restored`, { kids, where, version: version.Version, passedOver: passedOver.map((other) => ({ version: other.Version, lastModifiedUser: other.LastModifiedUser })) });
        return (
          `Restored version ${version.Version} of ${where} (sealed ${version.LastModifiedDate?.toISOString() ?? '?'} by ${version.LastModifiedUser ?? 'an unknown principal'}): ${kids.join(', ')}.\n` +
          `Passed over, not sealed by ${alias} for this ring: ${others.join('; ')}. Find out how they were written.`
        );
      }
      throw new KeyRingError(`No version of ${where} in SSM's history is a ring sealed under ${alias}: create a new ring (delete the parameter, then \`npm run keys -- init${options} --aws\`)`);
    },
    afterChange:
      ring === 'signing'
        ? 'Running Lambdas use it within JWT_SECRET_CACHE_SECONDS (default 300 s), and at once when they meet a token it signed.'
        : 'Running Lambdas use it within JWT_SECRET_CACHE_SECONDS (default 300 s).',
  };
}

async function existingRing(store: RingStore, ring: RingName): Promise<RingEntries> {
  const text = await store.read();
  const options = `${ring === 'mfa' ? ' --ring mfa' : ''}${store.where.startsWith('SSM') ? ' --aws' : ''}`;
  if (text === undefined) throw new KeyRingError(`No key ring at ${store.where}: create it with \`npm run keys -- init${options}\``);
  return signingKeyEntries(text, store.where);
}

function describeRing(entries: RingEntries, ring: RingName, uses?: Map<string, string>): string {
  const [current, previous] = ring === 'signing' ? ['current (signs and verifies)', 'previous (verifies only)'] : ['current (seals and opens)', 'previous (opens only)'];
  return entries
    .map(([kid], index) => {
      const since = kidCreatedAt(kid);
      return `${kid}  ${index === 0 ? current : previous}${since ? `  created ${since.toISOString()}` : ''}${uses ? `  ${uses.get(kid) ?? 'unused'}` : ''}`;
    })
    .join('\n');
}

/** The users table of the ring's stage, for what the MFA ring protects. */
interface MfaStore {
  mfa: MfaRepository;
  /** SSO connections: their client secrets are sealed under the MFA ring too (docs/sso.md). */
  sso: SsoRepository;
}

/** Per MFA key: how many TOTP secrets are sealed and how many recovery-code sets are kept under it. */
async function mfaKeyUses(store: MfaStore): Promise<Map<string, { secrets: number; recoveryCodes: number; ssoSecrets: number }>> {
  const uses = new Map<string, { secrets: number; recoveryCodes: number; ssoSecrets: number }>();
  const use = (kid: string) => uses.get(kid) ?? uses.set(kid, { secrets: 0, recoveryCodes: 0, ssoSecrets: 0 }).get(kid)!;
  for (const totp of await store.mfa.scanTotp()) {
    const kid = sealedKid(totp.sealedSecret);
    if (kid !== undefined) use(kid).secrets += 1;
    if (totp.recoveryKid !== undefined) use(totp.recoveryKid).recoveryCodes += 1;
  }
  for (const connection of await store.sso.listConnections()) {
    const kid = sealedKid(connection.sealedClientSecret);
    if (kid !== undefined) use(kid).ssoSecrets += 1;
  }
  return uses;
}

const describeUse = ({ secrets, recoveryCodes, ssoSecrets }: { secrets: number; recoveryCodes: number; ssoSecrets: number }) =>
  `${secrets} TOTP secret(s), ${recoveryCodes} recovery-code set(s)${ssoSecrets > 0 ? `, ${ssoSecrets} SSO client secret(s)` : ''}`;

async function run(args: Args, store: RingStore, ring: RingName, mfaStore: () => Promise<MfaStore>): Promise<string> {
  const now = new Date();
  const existing = () => existingRing(store, ring);
  const event = RINGS[ring].event;
  if (args.command === 'reseal' && ring !== 'mfa') throw new UsageError('reseal is for the MFA ring: --ring mfa');
  switch (args.command) {
    case 'seal': {
      if (!store.seal) throw new UsageError('seal is for a ring in AWS (--aws): a local ring file is never sealed');
      return store.seal();
    }
    case 'restore': {
      if (!store.restore) throw new UsageError('restore is for a ring in AWS (--aws)');
      return store.restore();
    }
    case 'init': {
      if ((await store.read()) !== undefined) throw new KeyRingError(`A key ring already exists at ${store.where}; use rotate to change it`);
      const kid = newKid(now, new Set());
      await store.write(formatRing([[kid, newSecret()]]), { create: true });
      audit('keys-cli', `${event}_created`, { kid, where: store.where });
      return `Created the key ring at ${store.where} with key ${kid}.`;
    }
    case 'list': {
      const entries = await existing();
      const uses = ring === 'mfa' ? new Map([...(await mfaKeyUses(await mfaStore()))].map(([kid, use]) => [kid, describeUse(use)])) : undefined;
      return `${store.where}\n${describeRing(entries, ring, uses)}`;
    }
    case 'rotate': {
      const entries = rotate(await existing(), now);
      await store.write(formatRing(entries), { create: false });
      const [kid] = entries[0]!;
      audit('keys-cli', `${event}_rotated`, { kid, previous: entries.slice(1).map(([previous]) => previous), where: store.where });
      const next = ring === 'signing' ? '' : ' Then `reseal` to move every TOTP secret to it.';
      return `Key ${kid} now ${ring === 'signing' ? 'signs' : 'seals'}; ${entries.length - 1} previous key(s) still ${ring === 'signing' ? 'verify' : 'open'}. ${store.afterChange}${next}\n${describeRing(entries, ring)}`;
    }
    case 'reseal': {
      const keys = parseSigningKeys(formatRing(await existing()), store.where);
      const { mfa } = await mfaStore();
      let resealed = 0;
      let unreadable = 0;
      for (const totp of await mfa.scanTotp()) {
        if (sealedKid(totp.sealedSecret) === keys.currentKid) continue;
        const secret = open(keys, totp.sealedSecret, totp.userId);
        if (secret === undefined) {
          unreadable += 1;
          continue;
        }
        // Only over the sealed form read: a setup or a reset meanwhile is left as it is.
        if (await mfa.reseal(totp.userId, totp.sealedSecret, seal(keys, secret, totp.userId))) resealed += 1;
      }
      // The SSO connections' client secrets, under the ring's own key for them (lib/auth/identity-providers.ts).
      const { sso } = await mfaStore();
      let ssoResealed = 0;
      const ssoLost: string[] = [];
      for (const connection of await sso.listConnections()) {
        if (sealedKid(connection.sealedClientSecret) === keys.currentKid) continue;
        const secret = openClientSecret(keys, connection.sealedClientSecret, connection.domain);
        if (secret === undefined) ssoLost.push(connection.domain);
        else if (await sso.resealClientSecret(connection, sealClientSecret(keys, secret, connection.domain))) ssoResealed += 1;
      }
      audit('keys-cli', 'mfa_secrets_resealed', { kid: keys.currentKid, resealed, unreadable, ssoResealed, ssoUnreadable: ssoLost.length, where: store.where });
      const lost = unreadable > 0 ? ` ${unreadable} secret(s) are sealed under a key the ring no longer holds: those users need \`npm run users -- mfa-reset\`.` : '';
      const ssoNote = ssoResealed > 0 ? ` Resealed ${ssoResealed} SSO client secret(s).` : '';
      const ssoLostNote = ssoLost.length > 0 ? ` The SSO client secrets of ${ssoLost.join(', ')} cannot be opened: \`sso remove\` and \`sso add\` them again.` : '';
      return `Resealed ${resealed} TOTP secret(s) under ${keys.currentKid}.${lost}${ssoNote}${ssoLostNote}`;
    }
    case 'retire': {
      const kid = args.options.get('kid');
      if (kid === true) throw new UsageError('--kid needs a value');
      // The last token an old key can sign is signed just before the last container's cache
      // expires and its background refresh lands; it is accepted until its exp plus the leeway.
      // A deployed stage's timings are its params (what its Lambdas run with); a local ring's, the environment's.
      const timings = store.stage === undefined ? process.env : { ACCESS_TOKEN_TTL_SECONDS: String(stageParam(store.stage, 'accessTokenTtlSeconds') ?? ''), JWT_SECRET_CACHE_SECONDS: String(stageParam(store.stage, 'jwtSecretCacheSeconds') ?? '') };
      const { accessTokenTtlSeconds: ttl, keyCacheSeconds: cache } = loadKeyTimings(timings);
      if (ring === 'mfa') {
        // A container seals with the key it holds until its cache runs out: nothing is signed, so the cache alone counts.
        const minAgeSeconds = cache + MIN_REFETCH_SECONDS + CLOCK_TOLERANCE_SECONDS;
        return retireMfaKeys(store, await existing(), { kid, now, minAgeSeconds, force: args.options.has('force') }, await mfaStore());
      }
      const minAgeSeconds = ttl + cache + MIN_REFETCH_SECONDS + CLOCK_TOLERANCE_SECONDS;
      const assumed = store.stage === undefined
        ? `(assuming ACCESS_TOKEN_TTL_SECONDS=${ttl} and JWT_SECRET_CACHE_SECONDS=${cache}, as the local stack runs)`
        : `(the stage's params: accessTokenTtlSeconds=${ttl}, jwtSecretCacheSeconds=${cache})`;
      let result: ReturnType<typeof retire>;
      try {
        result = retire(await existing(), { kid, now, minAgeSeconds, force: args.options.has('force') });
      } catch (error) {
        if (error instanceof KeyRingError && /may be valid until|Cannot tell when/.test(error.message)) throw new KeyRingError(`${error.message} ${assumed}`);
        throw error;
      }
      await store.write(formatRing(result.entries), { create: false });
      audit('keys-cli', 'signing_key_retired', { kids: result.removed, forced: args.options.has('force'), where: store.where });
      return `Retired ${result.removed.join(', ')}. ${store.afterChange}\n${describeRing(result.entries, ring)}`;
    }
    default:
      throw new UsageError(args.command === undefined ? 'A command is required' : `Unknown command "${args.command}"`);
  }
}

/**
 * MFA keys leave the ring only when nothing needs them: a TOTP secret sealed under one would no
 * longer open (its user locked out of their second factor), a recovery-code set kept under one
 * would no longer match. And not before every container has the current key: until its cache runs
 * out, a container still seals new secrets and keeps new codes under the key it holds (the scan
 * would miss what it writes after). `--force` skips both checks.
 */
async function retireMfaKeys(
  store: RingStore,
  entries: RingEntries,
  options: { kid: string | undefined; now: Date; minAgeSeconds: number; force: boolean },
  mfaStore: MfaStore,
): Promise<string> {
  const result = retire(entries, { kid: options.kid, now: options.now, minAgeSeconds: 0, force: true });
  const uses = await mfaKeyUses(mfaStore);
  const needed = result.removed.filter((kid) => uses.has(kid));
  if (needed.length > 0 && !options.force) {
    const detail = needed.map((kid) => `${kid}: ${describeUse(uses.get(kid)!)}`).join('; ');
    throw new KeyRingError(`Still needed (${detail}). Run \`reseal\` first; recovery codes under an old key last until their users replace them (or --force: those users then need \`npm run users -- mfa-reset\`)`);
  }
  const since = kidCreatedAt(entries[0]![0]);
  const safeAt = since && new Date(since.getTime() + options.minAgeSeconds * 1000);
  if (!options.force && (!safeAt || options.now < safeAt)) {
    throw new KeyRingError(
      `Running Lambdas may still seal with the previous keys ${safeAt ? `until ${safeAt.toISOString()}` : '(the current key\'s kid does not say when it was made)'}` +
        ` (JWT_SECRET_CACHE_SECONDS after the rotation): retire then, after \`list\` shows them unused, or with --force`,
    );
  }
  await store.write(formatRing(result.entries), { create: false });
  audit('keys-cli', 'mfa_key_retired', { kids: result.removed, forced: options.force, where: store.where });
  return `Retired ${result.removed.join(', ')}. ${store.afterChange}\n${describeRing(result.entries, 'mfa')}`;
}

runCli({
  usage: USAGE,
  spec: ARGS,
  refusals: [KeyRingError, ConfigError],
  run: async (args) => {
    if (args.options.has('stage') && !args.options.has('aws')) throw new UsageError('--stage goes with --aws (the local stack has one key ring)');
    if (args.options.has('file') && args.options.has('aws')) throw new UsageError('--file is for a local ring, not with --aws');
    const stage = (args.options.get('stage') as string | undefined) ?? (process.env.STAGE?.trim() || 'dev');
    const ring = (args.options.get('ring') as string | undefined) ?? 'signing';
    if (ring !== 'signing' && ring !== 'mfa') throw new UsageError(`--ring must be signing or mfa, got "${ring}"`);
    const aws = args.options.has('aws');
    // The MFA ring's users table, opened only by the commands that need it, and closed after.
    let db: DynamoDBDocumentClient | undefined;
    let owned: RunningDynalite | undefined;
    const mfaStore = async (): Promise<MfaStore> => {
      let endpoint = aws ? undefined : dynamodbEndpointFrom();
      if (!aws && !endpoint) ({ endpoint, owned } = await localStoreEndpoint(stage));
      const config = loadStoreConfig({ ...process.env, STAGE: stage, DYNAMODB_ENDPOINT: endpoint ?? '' });
      db = createDocumentClient(config);
      return { mfa: new MfaRepository(db, config.usersTable), sso: new SsoRepository(db, config.usersTable, config.attemptsTable) };
    };
    try {
      return await run(args, aws ? ssmStore(stage, ring) : localStore(ring, args.options.get('file') as string | undefined), ring, mfaStore);
    } finally {
      db?.destroy();
      await owned?.close();
    }
  },
});
