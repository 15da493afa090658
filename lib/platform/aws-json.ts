import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider, ChecksumConstructor, HashConstructor } from '@smithy/types';

/**
 * The one SigV4-signed JSON 1.1 call (POST, X-Amz-Target) the Lambdas make to SSM and KMS. The
 * SDK's clients would add about 210 kB (SSM) and as much again (KMS) to every bundle for one read
 * and one decryption each, so these calls are signed here with the SDK's own signer, using the
 * credentials and SHA-256 the DynamoDB client has already resolved. The CLIs use the SDK's clients.
 */
export interface AwsJsonOptions {
  region: string;
  /** A compatible endpoint (the tests' fakes); unset means the regional AWS endpoint. */
  endpoint?: string;
  credentials: AwsCredentialIdentityProvider;
  sha256: ChecksumConstructor | HashConstructor;
  /** Per attempt (default 1 s): each call is one small request, and a cold start waits for it. */
  timeoutMs?: number;
  /** Attempts in all (default 2): a call is retried after throttling, a 5xx or a network failure. */
  maxAttempts?: number;
}

/** The region, credentials and SHA-256 of the DynamoDB client, for another service's calls. */
export function sharedWith(db: DynamoDBDocumentClient, region: string, endpoint?: string): AwsJsonOptions {
  return { region, endpoint, credentials: db.config.credentials, sha256: db.config.sha256 };
}

/** A call that failed; `code` is the service's error type (ParameterNotFound, IncorrectKeyException, ...). */
export class AwsCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'AwsCallError';
  }
}

type ErrorType = new (code: string, message: string, retryable: boolean) => AwsCallError;

export interface AwsJsonService {
  /** The signing name and host prefix: `ssm`, `kms`. */
  service: string;
  /** What X-Amz-Target starts with: `AmazonSSM`, `TrentService`. */
  targetPrefix: string;
  /** What the errors are called in messages: `SSM`, `KMS`. */
  label: string;
  /** Error types, besides throttling and 5xx, that are worth another attempt. */
  retryableCodes: ReadonlySet<string>;
  errorType: ErrorType;
}

export class AwsJsonClient {
  private readonly signer: SignatureV4;
  private readonly url: URL;

  constructor(
    private readonly service: AwsJsonService,
    private readonly options: AwsJsonOptions,
  ) {
    this.signer = new SignatureV4({ credentials: options.credentials, region: options.region, service: service.service, sha256: options.sha256 });
    this.url = new URL(options.endpoint ?? `https://${service.service}.${options.region}.amazonaws.com/`);
  }

  /** One call, retried on any transient failure. */
  async call(action: string, input: Record<string, unknown>): Promise<Record<string, unknown>> {
    const maxAttempts = this.options.maxAttempts ?? 2;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(action, input);
      } catch (error) {
        const retryable = !(error instanceof AwsCallError) || error.retryable;
        if (!retryable || attempt >= maxAttempts) throw error instanceof AwsCallError ? error : this.networkError(error);
        // Full jitter on 50 ms, 100 ms, ...: what the SDK's standard retry strategy does.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 50 * 2 ** (attempt - 1)));
      }
    }
  }

  private async attempt(action: string, input: Record<string, unknown>): Promise<Record<string, unknown>> {
    const body = JSON.stringify(input);
    const signed = await this.signer.sign({
      method: 'POST',
      protocol: this.url.protocol,
      hostname: this.url.hostname,
      port: this.url.port ? Number(this.url.port) : undefined,
      path: this.url.pathname,
      query: {},
      headers: {
        host: this.url.host,
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `${this.service.targetPrefix}.${action}`,
      },
      body,
    });
    // fetch sets Host itself, from the same URL.
    const { host: _host, ...headers } = signed.headers;
    const response = await fetch(this.url, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 1000),
    });
    const text = await response.text();
    let reply: Record<string, unknown> = {};
    try {
      reply = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      // An HTML error page from a proxy, say; judged by its status below.
    }
    if (response.ok) return reply;
    // "__type": "ParameterNotFound" or "com.amazonaws.ssm#ParameterNotFound"
    const code = String(reply.__type ?? `Http${response.status}`).split('#').pop()!;
    const message = String(reply.message ?? reply.Message ?? `${this.service.label} ${action} failed with HTTP ${response.status}`);
    const retryable = response.status >= 500 || response.status === 429 || code === 'ThrottlingException' || this.service.retryableCodes.has(code);
    throw new this.service.errorType(code, `${code}: ${message}`, retryable);
  }

  private networkError(error: unknown): AwsCallError {
    const name = (error as Error | undefined)?.name;
    const reason = name === 'TimeoutError' ? 'timed out' : (error as Error | undefined)?.message ?? String(error);
    const code = name === 'TimeoutError' ? 'TimeoutError' : 'NetworkError';
    return Object.assign(new this.service.errorType(code, `${this.service.label} unreachable: ${reason}`, true), { cause: error });
  }
}
