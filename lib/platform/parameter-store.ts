import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider, ChecksumConstructor, HashConstructor } from '@smithy/types';

export interface ParameterStoreOptions {
  region: string;
  /** An SSM-compatible endpoint (tests); unset means the regional AWS endpoint. */
  endpoint?: string;
  credentials: AwsCredentialIdentityProvider;
  sha256: ChecksumConstructor | HashConstructor;
  /** Per attempt (default 1 s): a parameter read is one small request, and a cold start waits for it. */
  timeoutMs?: number;
  /** Attempts in all (default 2): a read is retried after throttling, a 5xx or a network failure. */
  maxAttempts?: number;
}

/** An SSM call that failed; `code` is SSM's error type (ParameterNotFound, AccessDeniedException, ...). */
export class ParameterStoreError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'ParameterStoreError';
  }
}

const RETRYABLE_CODES = new Set(['ThrottlingException', 'TooManyUpdates', 'InternalServerError', 'ServiceUnavailable']);

/**
 * GetParameter of SSM Parameter Store over its JSON protocol, signed (SigV4) with the credentials
 * and SHA-256 the DynamoDB client has already resolved: the one call the Lambdas make (they read
 * their signing keys), for which `@aws-sdk/client-ssm` would add about 210 kB (+40 %) to every
 * bundle. Writing the ring is the keys CLI's, with the SDK's client (scripts/keys.ts).
 */
export class ParameterStore {
  private readonly signer: SignatureV4;
  private readonly url: URL;

  constructor(private readonly options: ParameterStoreOptions) {
    this.signer = new SignatureV4({ credentials: options.credentials, region: options.region, service: 'ssm', sha256: options.sha256 });
    this.url = new URL(options.endpoint ?? `https://ssm.${options.region}.amazonaws.com/`);
  }

  /** A parameter store using the DynamoDB client's credential chain and region. */
  static sharingCredentialsWith(db: DynamoDBDocumentClient, region: string, endpoint?: string): ParameterStore {
    return new ParameterStore({ region, endpoint, credentials: db.config.credentials, sha256: db.config.sha256 });
  }

  /** The decrypted value of a (SecureString) parameter. */
  async get(name: string): Promise<string> {
    const reply = (await this.call('GetParameter', { Name: name, WithDecryption: true })) as { Parameter?: { Value?: unknown } };
    const value = reply.Parameter?.Value;
    if (typeof value !== 'string') throw new ParameterStoreError('InvalidResponse', `SSM returned no value for ${name}`, false);
    return value;
  }

  /** One SSM read, retried on any transient failure. */
  private async call(action: string, input: Record<string, unknown>): Promise<unknown> {
    const maxAttempts = this.options.maxAttempts ?? 2;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(action, input);
      } catch (error) {
        const retryable = !(error instanceof ParameterStoreError) || error.retryable;
        if (!retryable || attempt >= maxAttempts) throw error instanceof ParameterStoreError ? error : networkError(error);
        // Full jitter on 50 ms, 100 ms, ...: what the SDK's standard retry strategy does.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 50 * 2 ** (attempt - 1)));
      }
    }
  }

  private async attempt(action: string, input: Record<string, unknown>): Promise<unknown> {
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
        'x-amz-target': `AmazonSSM.${action}`,
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
    const message = String(reply.message ?? reply.Message ?? `SSM ${action} failed with HTTP ${response.status}`);
    throw new ParameterStoreError(code, `${code}: ${message}`, response.status >= 500 || response.status === 429 || RETRYABLE_CODES.has(code));
  }
}

function networkError(error: unknown): ParameterStoreError {
  const name = (error as Error | undefined)?.name;
  const reason = name === 'TimeoutError' ? 'timed out' : (error as Error | undefined)?.message ?? String(error);
  return Object.assign(new ParameterStoreError(name === 'TimeoutError' ? 'TimeoutError' : 'NetworkError', `SSM unreachable: ${reason}`, true), { cause: error });
}
