import { EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mfaKeyAlias, mfaKeyParameter, ringEncryptionContext, signingKeyAlias, signingKeyParameter, type RingName } from '../../infra/signing-keys.js';
import { openSealedRing } from '../../lib/auth/sealed-ring.js';
import { KeyManagement } from '../../lib/platform/key-management.js';
import { ParameterStore } from '../../lib/platform/parameter-store.js';
import { LOCAL_CREDENTIALS, Sha256 } from './fake-ssm.js';

/** Where the fakes answer (the e2e stack's, or a test's own). */
export interface AwsFakes {
  ssm: string;
  kms: string;
  region?: string;
}

export const ringParameter = (stage: string, ring: RingName) => (ring === 'mfa' ? mfaKeyParameter(stage) : signingKeyParameter(stage));
export const ringAlias = (stage: string, ring: RingName) => (ring === 'mfa' ? mfaKeyAlias(stage) : signingKeyAlias(stage));

/**
 * A ring's JSON sealed by KMS, base64: as `npm run keys -- … --aws` seals it (the stage's alias and
 * the ring's context) unless the test names another key or context, to forge one.
 */
export async function sealRing(fakes: AwsFakes, stage: string, ring: RingName, text: string, forged: { keyId?: string; context?: Record<string, string> } = {}): Promise<string> {
  const kms = new KMSClient({ region: fakes.region ?? 'us-east-1', endpoint: fakes.kms, credentials: LOCAL_CREDENTIALS });
  try {
    const { CiphertextBlob } = await kms.send(
      new EncryptCommand({ KeyId: forged.keyId ?? ringAlias(stage, ring), Plaintext: Buffer.from(text), EncryptionContext: forged.context ?? ringEncryptionContext(stage, ring) }),
    );
    return Buffer.from(CiphertextBlob!).toString('base64');
  } finally {
    kms.destroy();
  }
}

/** What `npm run keys -- init --aws [--ring mfa]` writes: the sealed ring, in a SecureString under the stage's key. */
export async function putSealedRing(fakes: AwsFakes, stage: string, ring: RingName, text: string): Promise<void> {
  const ssm = new SSMClient({ region: fakes.region ?? 'us-east-1', endpoint: fakes.ssm, credentials: LOCAL_CREDENTIALS });
  try {
    await ssm.send(new PutParameterCommand({ Name: ringParameter(stage, ring), Value: await sealRing(fakes, stage, ring, text), Type: 'SecureString', KeyId: ringAlias(stage, ring), Overwrite: true }));
  } finally {
    ssm.destroy();
  }
}

/** The ring's JSON as a stage's Lambdas read it (SSM, then KMS naming the stage's key and the ring's context). */
export async function readSealedRing(fakes: AwsFakes, stage: string, ring: RingName): Promise<string> {
  const aws = { region: fakes.region ?? 'us-east-1', credentials: async () => LOCAL_CREDENTIALS, sha256: Sha256 };
  const value = await new ParameterStore({ ...aws, endpoint: fakes.ssm }).get(ringParameter(stage, ring));
  return openSealedRing(value, new KeyManagement({ ...aws, endpoint: fakes.kms }), { kmsKeyId: ringAlias(stage, ring), encryptionContext: ringEncryptionContext(stage, ring) }, ringParameter(stage, ring));
}
