import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { unavailable } from './errors.js';

export interface DynamoOptions {
  region: string;
  /** The local stack's dynalite; unset in AWS. */
  dynamodbEndpoint: string | undefined;
}

export function createDocumentClient(options: DynamoOptions): DynamoDBDocumentClient {
  const client = new DynamoDBClient({
    region: options.region,
    ...(options.dynamodbEndpoint
      ? {
          endpoint: options.dynamodbEndpoint,
          // dynalite checks that credentials are present, not what they are.
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        }
      : {}),
    maxAttempts: 3,
    // DynamoDB answers in milliseconds; a stuck connection must fail (and be retried) well
    // inside the Lambda timeout, not hold the request until the Lambda is killed.
    // (Without throwOnRequestTimeout this SDK only logs a warning and keeps waiting.)
    requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
  });
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true },
  });
}

const UNAVAILABLE_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
]);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

export function isConditionalCheckFailed(error: unknown): boolean {
  return (error as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}

/**
 * Repositories call the store through this, so that a throttled or unreachable DynamoDB
 * becomes a 503 the client may retry, and never a 500 carrying an SDK message.
 */
export async function storeCall<T>(operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (error) {
    const { name, code } = (error ?? {}) as { name?: string; code?: string };
    if ((name && UNAVAILABLE_ERRORS.has(name)) || (code && NETWORK_CODES.has(code))) {
      throw Object.assign(unavailable(), { cause: error });
    }
    throw error;
  }
}
