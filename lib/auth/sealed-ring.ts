/**
 * A key ring as the SSM parameter holds it in AWS: the ring's JSON (`{"kid": "secret", ...}`)
 * encrypted by KMS under the stage's own key, with the encryption context `{"stage", "ring"}`,
 * base64 (what `aws kms encrypt --query CiphertextBlob --output text` prints). The keys CLI seals
 * it (scripts/keys.ts); the Lambdas open it here, naming the key and the context, so KMS refuses a
 * ciphertext of any other key or context. The parameter is a SecureString under the same key as
 * well, which keeps even the ciphertext from whoever may read SSM but not decrypt.
 *
 * Why: SSM encrypts what it is given under any key the writer names, and GetParameter does not say
 * which. A principal allowed ssm:PutParameter, and nothing else, could otherwise store a ring of its
 * own and mint tokens with it once the Lambdas' cache ran out. Only the stage's operators may
 * encrypt under its key (infra/signing-keys.js).
 */
import type { KeyManagement } from '../platform/key-management.js';
import { KeyManagementError } from '../platform/key-management.js';

// Standard base64, whole: KMS ciphertext is binary, and the CLI writes it this way.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * What a sealed ring must be, and who may have sealed it: what the Lambda tells KMS. Decrypt's
 * KeyId makes KMS refuse a ciphertext of any other key; without it KMS would use whichever key the
 * ciphertext names, and a key someone else made may well let our roles decrypt.
 */
export interface RingSeal {
  kmsKeyId: string;
  encryptionContext: Readonly<Record<string, string>>;
}

/**
 * The parameter holds something other than a ring sealed under the stage's key for this ring:
 * plaintext (the format before sealing, or a write by someone who cannot encrypt), a ciphertext of
 * another key, or of another ring or stage. Never used, whatever it holds; the message says why
 * without quoting the value.
 */
export class RingRefusedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RingRefusedError';
  }
}

// KMS's answers about the ciphertext itself (as opposed to KMS being unreachable or the key disabled).
const REFUSALS = new Set(['IncorrectKeyException', 'InvalidCiphertextException', 'AccessDeniedException']);

/** The ring's JSON text from the parameter's value; throws RingRefusedError for anything not sealed as it must be. */
export async function openSealedRing(value: string, kms: KeyManagement, seal: RingSeal, source: string): Promise<string> {
  const text = value.trim();
  if (!BASE64.test(text)) {
    throw new RingRefusedError(
      `${source} does not hold a KMS-sealed ring (${text.startsWith('{') ? 'it holds plaintext JSON' : 'it is not base64'}): ` +
        'an operator seals the ring with `npm run keys -- seal --aws` (docs/deploying.md)',
    );
  }
  let plaintext: Uint8Array;
  try {
    plaintext = await kms.decrypt({ ciphertext: Buffer.from(text, 'base64'), keyId: seal.kmsKeyId, context: seal.encryptionContext });
  } catch (error) {
    if (error instanceof KeyManagementError && REFUSALS.has(error.code)) {
      const why =
        error.code === 'IncorrectKeyException'
          ? `it was not sealed under ${seal.kmsKeyId}`
          : error.code === 'InvalidCiphertextException'
            ? `it is not a ciphertext of ${JSON.stringify(seal.encryptionContext)}`
            : 'KMS denied its decryption';
      throw new RingRefusedError(`${source} is refused: ${why} (${error.code})`, { cause: error });
    }
    throw error;
  }
  return Buffer.from(plaintext).toString('utf8');
}
