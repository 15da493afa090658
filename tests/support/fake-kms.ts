import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { serveFakeAws } from './fake-ssm.js';

/** The account the fake's keys belong to. */
export const FAKE_ACCOUNT = '123456789012';

export interface FakeKmsKey {
  keyId: string;
  arn: string;
}

export interface FakeKms {
  endpoint: string;
  /**
   * The key an alias names; a deployed stage's alias (`alias/vpn-auth-<stage>-signing-keys` or
   * `-mfa-keys`) exists as soon as it is named, as if the stage had been deployed.
   */
  keyFor(alias: string): FakeKmsKey;
  /** A key of someone else's making (what CreateKey answers), for the tests' forged rings. */
  createKey(): FakeKmsKey;
  /** Every plaintext encrypted or decrypted (for the tests' leak scan). */
  plaintexts: string[];
  /** Requests answered, by action (Encrypt, Decrypt, CreateKey). */
  calls: Map<string, number>;
  /** The inputs of every Decrypt received, in order (what the Lambdas named as key and context). */
  decrypts: Array<{ KeyId?: string; EncryptionContext?: Record<string, string> }>;
  /** Answer the next `count` requests with this error instead (throttling, outage). */
  failNext(count: number, status: number, type: string): void;
  close(): Promise<void>;
}

// A ciphertext blob of this fake: version, the key's ARN, IV, GCM tag, ciphertext. Real KMS blobs
// are as opaque and, as these, name their key and are bound to their encryption context (AAD).
const VERSION = 1;

/** The encryption context as authenticated data: its pairs in key order, as KMS canonicalizes it. */
function aad(context: Record<string, string> | undefined): Buffer {
  return Buffer.from(JSON.stringify(Object.entries(context ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

/**
 * AWS KMS's Encrypt, Decrypt and CreateKey for symmetric keys, on 127.0.0.1, as the service speaks
 * them (JSON 1.1 over HTTP, X-Amz-Target TrentService.*), refusing any request whose SigV4
 * signature, region or service is wrong. What matters to the rings, KMS's way: a ciphertext is
 * authenticated with its encryption context (any other context: InvalidCiphertextException), and
 * a Decrypt naming a KeyId refuses a ciphertext of any other key (IncorrectKeyException); without
 * a KeyId it uses the key the ciphertext names. It grants every caller every use of every key (no
 * key policies): the worst case, in which only the KeyId and context the caller names protect it.
 */
export async function startFakeKms(options: { region?: string; port?: number } = {}): Promise<FakeKms> {
  const region = options.region ?? 'us-east-1';
  const keys = new Map<string, FakeKmsKey & { material: Buffer }>();
  const aliases = new Map<string, string>();
  const plaintexts: string[] = [];
  const decrypts: FakeKms['decrypts'] = [];

  const createKey = (): FakeKmsKey => {
    const keyId = randomUUID();
    const key = { keyId, arn: `arn:aws:kms:${region}:${FAKE_ACCOUNT}:key/${keyId}`, material: randomBytes(32) };
    keys.set(key.arn, key);
    return { keyId: key.keyId, arn: key.arn };
  };
  const keyFor = (alias: string): FakeKmsKey => {
    if (!aliases.has(alias)) {
      if (!/^alias\/vpn-auth-[a-z][a-z0-9-]*-(signing|mfa)-keys$/.test(alias)) throw new Error(`no such alias in the fake KMS: ${alias}`);
      aliases.set(alias, createKey().arn);
    }
    const { keyId, arn } = keys.get(aliases.get(alias)!)!;
    return { keyId, arn };
  };
  /** The key a KeyId names: key id, key ARN, alias name or alias ARN. */
  const resolve = (keyId: string) => {
    const aliasName = /^arn:aws:kms:[^:]+:\d{12}:(alias\/.+)$/.exec(keyId)?.[1] ?? (keyId.startsWith('alias/') ? keyId : undefined);
    if (aliasName !== undefined) {
      try {
        return keys.get(keyFor(aliasName).arn);
      } catch {
        return undefined;
      }
    }
    return keys.get(keyId) ?? [...keys.values()].find((key) => key.keyId === keyId);
  };

  function act(action: string, input: Record<string, unknown>): [number, unknown] {
    const context = input.EncryptionContext as Record<string, string> | undefined;
    if (action === 'CreateKey') {
      const { keyId, arn } = createKey();
      return [200, { KeyMetadata: { KeyId: keyId, Arn: arn, KeyState: 'Enabled', KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'SYMMETRIC_DEFAULT' } }];
    }
    if (action === 'Encrypt') {
      const key = resolve(String(input.KeyId ?? ''));
      if (!key) return [400, { __type: 'NotFoundException', message: `Key '${String(input.KeyId)}' does not exist` }];
      const plaintext = Buffer.from(String(input.Plaintext ?? ''), 'base64');
      if (plaintext.length < 1 || plaintext.length > 4096) return [400, { __type: 'ValidationException', message: 'Plaintext must be 1 to 4096 bytes' }];
      plaintexts.push(plaintext.toString('utf8'));
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key.material, iv).setAAD(aad(context));
      const sealed = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      const arn = Buffer.from(key.arn);
      const blob = Buffer.concat([Buffer.from([VERSION, arn.length]), arn, iv, cipher.getAuthTag(), sealed]);
      return [200, { CiphertextBlob: blob.toString('base64'), KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }];
    }
    if (action === 'Decrypt') {
      decrypts.push({ KeyId: input.KeyId as string | undefined, EncryptionContext: context });
      const invalid: [number, unknown] = [400, { __type: 'InvalidCiphertextException', message: '' }];
      const blob = Buffer.from(String(input.CiphertextBlob ?? ''), 'base64');
      if (blob.length < 2 || blob[0] !== VERSION || blob.length < 2 + blob[1]! + 28) return invalid;
      const key = keys.get(blob.subarray(2, 2 + blob[1]!).toString());
      if (!key) return invalid;
      if (input.KeyId !== undefined) {
        const named = resolve(String(input.KeyId));
        if (!named) return [400, { __type: 'NotFoundException', message: `Key '${String(input.KeyId)}' does not exist` }];
        if (named !== key) return [400, { __type: 'IncorrectKeyException', message: 'The key ID in the request does not identify a CMK that can perform this operation.' }];
      }
      const rest = blob.subarray(2 + blob[1]!);
      try {
        const decipher = createDecipheriv('aes-256-gcm', key.material, rest.subarray(0, 12)).setAAD(aad(context));
        decipher.setAuthTag(rest.subarray(12, 28));
        const plaintext = Buffer.concat([decipher.update(rest.subarray(28)), decipher.final()]);
        plaintexts.push(plaintext.toString('utf8'));
        return [200, { Plaintext: plaintext.toString('base64'), KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }];
      } catch {
        return invalid;
      }
    }
    return [400, { __type: 'UnknownOperationException' }];
  }

  const server = await serveFakeAws({ service: 'kms', targetPrefix: 'TrentService.', region, port: options.port }, act);
  return { ...server, keyFor, createKey, plaintexts, decrypts };
}
