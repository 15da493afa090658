import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AwsCallError, AwsJsonClient, sharedWith, type AwsJsonOptions } from './aws-json.js';

export type ParameterStoreOptions = AwsJsonOptions;

/** An SSM call that failed; `code` is SSM's error type (ParameterNotFound, AccessDeniedException, ...). */
export class ParameterStoreError extends AwsCallError {
  constructor(code: string, message: string, retryable: boolean) {
    super(code, message, retryable);
    this.name = 'ParameterStoreError';
  }
}

const SSM = {
  service: 'ssm',
  targetPrefix: 'AmazonSSM',
  label: 'SSM',
  retryableCodes: new Set(['TooManyUpdates', 'InternalServerError', 'ServiceUnavailable']),
  errorType: ParameterStoreError,
};

/**
 * GetParameter of SSM Parameter Store, signed by hand (lib/platform/aws-json.ts): the Lambdas read
 * their key rings with it. Writing a ring is the keys CLI's, with the SDK's client (scripts/keys.ts).
 */
export class ParameterStore {
  private readonly client: AwsJsonClient;

  constructor(options: ParameterStoreOptions) {
    this.client = new AwsJsonClient(SSM, options);
  }

  /** A parameter store using the DynamoDB client's credential chain and region. */
  static sharingCredentialsWith(db: DynamoDBDocumentClient, region: string, endpoint?: string): ParameterStore {
    return new ParameterStore(sharedWith(db, region, endpoint));
  }

  /** The decrypted value of a (SecureString) parameter. */
  async get(name: string): Promise<string> {
    const reply = (await this.client.call('GetParameter', { Name: name, WithDecryption: true })) as { Parameter?: { Value?: unknown } };
    const value = reply.Parameter?.Value;
    if (typeof value !== 'string') throw new ParameterStoreError('InvalidResponse', `SSM returned no value for ${name}`, false);
    return value;
  }
}
