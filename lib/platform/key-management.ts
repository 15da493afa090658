import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AwsCallError, AwsJsonClient, sharedWith, type AwsJsonOptions } from './aws-json.js';

/** A KMS call that failed; `code` is KMS's error type (IncorrectKeyException, InvalidCiphertextException, ...). */
export class KeyManagementError extends AwsCallError {
  constructor(code: string, message: string, retryable: boolean) {
    super(code, message, retryable);
    this.name = 'KeyManagementError';
  }
}

const KMS = {
  service: 'kms',
  targetPrefix: 'TrentService',
  label: 'KMS',
  // KMS's own transient faults (HTTP 500 as well, but named in case a proxy changes the status).
  retryableCodes: new Set(['KMSInternalException', 'DependencyTimeoutException', 'KeyUnavailableException']),
  errorType: KeyManagementError,
};

export interface DecryptRequest {
  ciphertext: Uint8Array;
  /**
   * The key the ciphertext must have been made with. KMS refuses (IncorrectKeyException) a
   * ciphertext of any other key; without it, KMS would use whatever key the ciphertext names,
   * one its maker chose, whose policy may well let us decrypt.
   */
  keyId: string;
  /** The encryption context it was made with; any other context fails (InvalidCiphertextException). */
  context: Readonly<Record<string, string>>;
}

/** KMS Decrypt, signed by hand (lib/platform/aws-json.ts): how the Lambdas open their sealed key rings. */
export class KeyManagement {
  private readonly client: AwsJsonClient;

  constructor(options: AwsJsonOptions) {
    this.client = new AwsJsonClient(KMS, options);
  }

  /** KMS through the DynamoDB client's credential chain and region. */
  static sharingCredentialsWith(db: DynamoDBDocumentClient, region: string, endpoint?: string): KeyManagement {
    return new KeyManagement(sharedWith(db, region, endpoint));
  }

  async decrypt({ ciphertext, keyId, context }: DecryptRequest): Promise<Uint8Array> {
    const reply = await this.client.call('Decrypt', {
      CiphertextBlob: Buffer.from(ciphertext).toString('base64'),
      KeyId: keyId,
      EncryptionContext: context,
    });
    if (typeof reply.Plaintext !== 'string') throw new KeyManagementError('InvalidResponse', 'KMS returned no plaintext', false);
    return new Uint8Array(Buffer.from(reply.Plaintext, 'base64'));
  }
}
