import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, createHmac, type BinaryLike, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { PLACEHOLDER_SECRET, isPlaceholderAccessKeyId, placeholderCredentials } from '../../lib/platform/local-credentials.js';

type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytes = (data: SourceData): BinaryLike => (data instanceof ArrayBuffer ? new Uint8Array(data) : (data as BinaryLike));

/** SHA-256 (or its HMAC) in the shape SignatureV4 expects. */
export class Sha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

/**
 * The placeholder credentials the local stack signs with (lib/platform/dynamo.ts gives them to clients of
 * a local endpoint); the fake checks every signature against them.
 */
export const LOCAL_CREDENTIALS = placeholderCredentials();

/**
 * Why a request's SigV4 signature is not one the local credentials made for this region and
 * service (undefined when it is): what AWS checks before anything else, for the fakes below.
 */
export async function signatureProblem(request: IncomingMessage, body: string, expected: { region: string; service: string }): Promise<string | undefined> {
  const { region, service: expectedService } = expected;
  const authorization = request.headers.authorization ?? '';
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(authorization);
  if (!match) return 'missing or malformed Authorization';
  const [, accessKeyId, , signedRegion, service, signedHeaders, signature] = match;
  if (!isPlaceholderAccessKeyId(accessKeyId!)) return `unknown access key ${accessKeyId}`;
  if (signedRegion !== region || service !== expectedService) return `signed for ${signedRegion}/${service}, expected ${region}/${expectedService}`;
  const amzDate = String(request.headers['x-amz-date'] ?? '');
  const date = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!date) return 'missing X-Amz-Date';
  const contentHash = request.headers['x-amz-content-sha256'];
  if (contentHash !== undefined && contentHash !== createHash('sha256').update(body).digest('hex')) return 'X-Amz-Content-Sha256 is not the hash of the body';
  // Temporary credentials (a Lambda's role) add a session token, which must be signed too.
  const sessionToken = request.headers['x-amz-security-token'];
  if (sessionToken !== undefined && !signedHeaders!.split(';').includes('x-amz-security-token')) return 'X-Amz-Security-Token is not signed';
  const headers: Record<string, string> = {};
  for (const name of signedHeaders!.split(';')) headers[name] = String(request.headers[name] ?? '');
  // Every placeholder (a Lambda's names its function) signs with the same secret.
  const credentials = { accessKeyId: accessKeyId!, secretAccessKey: PLACEHOLDER_SECRET, ...(sessionToken === undefined ? {} : { sessionToken: String(sessionToken) }) };
  const signer = new SignatureV4({ credentials, region, service: expectedService, sha256: Sha256 });
  const resigned = await signer.sign(
    { method: request.method!, protocol: 'http:', hostname: '127.0.0.1', path: request.url!.split('?')[0]!, query: {}, headers, body },
    { signingDate: new Date(`${date[1]}-${date[2]}-${date[3]}T${date[4]}:${date[5]}:${date[6]}Z`) },
  );
  const expectedSignature = /Signature=([0-9a-f]{64})/.exec(resigned.headers.authorization ?? '')?.[1];
  return expectedSignature === signature ? undefined : 'signature does not match';
}

/** A fake AWS JSON-protocol service on loopback: what both fakes (SSM, KMS) share around their own actions. */
export interface FakeAwsServer {
  endpoint: string;
  /** Requests answered, by action. */
  calls: Map<string, number>;
  /** The headers of the last request received. */
  lastHeaders(): Record<string, string | string[] | undefined>;
  /** Answer the next `count` requests with this error instead (throttling, outage). */
  failNext(count: number, status: number, type: string): void;
  close(): Promise<void>;
}

/**
 * Serve `act` on 127.0.0.1 (a free port, or `port`) as AWS serves its JSON 1.1 services: the action
 * from `X-Amz-Target` (less `targetPrefix`), injected failures first, then the request's SigV4
 * signature checked for `service` and `region`, a body that is not JSON refused.
 */
export async function serveFakeAws(
  { service, targetPrefix, region, port }: { service: string; targetPrefix: string; region: string; port?: number },
  act: (action: string, input: Record<string, unknown>) => [number, unknown],
): Promise<FakeAwsServer> {
  const calls = new Map<string, number>();
  let lastHeaders: Record<string, string | string[] | undefined> = {};
  let failures: { count: number; status: number; type: string } = { count: 0, status: 0, type: '' };
  const server: Server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', async () => {
      const reply = (status: number, payload: unknown) => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        response.end(JSON.stringify(payload));
      };
      lastHeaders = request.headers;
      const action = String(request.headers['x-amz-target'] ?? '').replace(targetPrefix, '');
      calls.set(action, (calls.get(action) ?? 0) + 1);
      if (failures.count > 0) {
        failures.count--;
        return reply(failures.status, { __type: failures.type, message: 'injected failure' });
      }
      const problem = await signatureProblem(request, body, { region, service });
      if (problem) return reply(400, { __type: 'InvalidSignatureException', message: problem });
      let input: Record<string, unknown>;
      try {
        input = JSON.parse(body) as Record<string, unknown>;
      } catch {
        return reply(400, { __type: 'SerializationException' });
      }
      reply(...act(action, input));
    });
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port ?? 0, '127.0.0.1', () => resolveListen());
  });
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    lastHeaders: () => lastHeaders,
    failNext(count, status, type) {
      failures = { count, status, type };
    },
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

export interface FakeSsm {
  endpoint: string;
  /** The stored parameters, by name, with the KMS key each was encrypted with (SSM's default: alias/aws/ssm). */
  parameters: Map<string, StoredParameter>;
  /** Every value ever stored, including overwritten ones (for the tests' leak scan). */
  history: string[];
  /**
   * Store a parameter directly, as an earlier PutParameter would have: by default under SSM's
   * alias/aws/ssm, by someone other than the tests' CLI runs (what a principal allowed only
   * ssm:PutParameter can do).
   */
  put(name: string, value: string, options?: { keyId?: string; user?: string }): void;
  /** The headers of the last request received. */
  lastHeaders(): Record<string, string | string[] | undefined>;
  /** Requests answered, by action (GetParameter, PutParameter). */
  calls: Map<string, number>;
  /** Answer the next `count` requests with this error instead (throttling, outage). */
  failNext(count: number, status: number, type: string): void;
  close(): Promise<void>;
}

export interface StoredParameter {
  value: string;
  version: number;
  keyId: string;
  lastModifiedUser: string;
  lastModifiedDate: Date;
}

/** Who the fake says wrote a parameter over the API: every request is signed with the local credentials. */
export const LOCAL_USER_ARN = `arn:aws:iam::123456789012:user/${LOCAL_CREDENTIALS.accessKeyId}`;

/**
 * SSM Parameter Store's GetParameter, PutParameter, GetParameterHistory and DescribeParameters (by name) for SecureStrings,
 * on 127.0.0.1, as the service speaks them (JSON 1.1 over HTTP, X-Amz-Target), refusing any request whose SigV4
 * signature, region or service is wrong. What dynalite is to DynamoDB, for the calls we make.
 */
export async function startFakeSsm(options: { region?: string; port?: number } = {}): Promise<FakeSsm> {
  const region = options.region ?? 'us-east-1';
  const parameters = new Map<string, StoredParameter>();
  // Every version of each parameter, oldest first, as GetParameterHistory lists them.
  const versions = new Map<string, StoredParameter[]>();
  const history: string[] = [];
  const put = (name: string, value: string, { keyId = 'alias/aws/ssm', user = 'arn:aws:iam::123456789012:user/someone-else' }: { keyId?: string; user?: string } = {}) => {
    const stored = { value, version: (parameters.get(name)?.version ?? 0) + 1, keyId, lastModifiedUser: user, lastModifiedDate: new Date() };
    parameters.set(name, stored);
    versions.set(name, [...(versions.get(name) ?? []), stored]);
    history.push(value);
    return parameters.get(name)!.version;
  };

  function act(action: string, input: Record<string, unknown>): [number, unknown] {
    const name = String(input.Name ?? '');
    if (action === 'GetParameter') {
      const stored = parameters.get(name);
      if (!stored) return [400, { __type: 'ParameterNotFound', message: `Parameter ${name} not found.` }];
      if (input.WithDecryption !== true) return [400, { __type: 'ValidationException', message: 'this fake only serves decrypted SecureStrings' }];
      return [200, { Parameter: { Name: name, Type: 'SecureString', Value: stored.value, Version: stored.version } }];
    }
    if (action === 'PutParameter') {
      if (input.Type !== 'SecureString') return [400, { __type: 'ValidationException', message: 'Type must be SecureString' }];
      const stored = parameters.get(name);
      if (stored && input.Overwrite !== true) return [400, { __type: 'ParameterAlreadyExists', message: 'The parameter already exists.' }];
      return [200, { Version: put(name, String(input.Value), { keyId: typeof input.KeyId === 'string' ? input.KeyId : undefined, user: LOCAL_USER_ARN }), Tier: 'Standard' }];
    }
    if (action === 'DescribeParameters') {
      // Only what the keys CLI asks: one parameter by name.
      const filters = (input.ParameterFilters ?? []) as Array<{ Key?: string; Option?: string; Values?: string[] }>;
      const wanted = filters.find((filter) => filter.Key === 'Name' && (filter.Option ?? 'Equals') === 'Equals')?.Values ?? [];
      const found = wanted.flatMap((wantedName) => {
        const stored = parameters.get(wantedName);
        if (!stored) return [];
        return [{ Name: wantedName, Type: 'SecureString', KeyId: stored.keyId, Version: stored.version, LastModifiedUser: stored.lastModifiedUser, LastModifiedDate: stored.lastModifiedDate.getTime() / 1000, Tier: 'Standard', DataType: 'text' }];
      });
      return [200, { Parameters: found }];
    }
    if (action === 'GetParameterHistory') {
      const all = versions.get(name);
      if (!all) return [400, { __type: 'ParameterNotFound', message: `Parameter ${name} not found.` }];
      if (input.WithDecryption !== true) return [400, { __type: 'ValidationException', message: 'this fake only serves decrypted SecureStrings' }];
      // Pages of MaxResults (SSM: at most 50), oldest first; the token is the index of the next.
      const pageSize = Math.min(Number(input.MaxResults ?? 50), 50);
      const from = Number(input.NextToken ?? 0);
      const page = all.slice(from, from + pageSize).map((stored) => ({
        Name: name, Type: 'SecureString', KeyId: stored.keyId, Value: stored.value, Version: stored.version,
        LastModifiedUser: stored.lastModifiedUser, LastModifiedDate: stored.lastModifiedDate.getTime() / 1000, Tier: 'Standard', DataType: 'text',
      }));
      return [200, { Parameters: page, ...(from + pageSize < all.length ? { NextToken: String(from + pageSize) } : {}) }];
    }
    return [400, { __type: 'UnknownOperationException' }];
  }

  const server = await serveFakeAws({ service: 'ssm', targetPrefix: 'AmazonSSM.', region, port: options.port }, act);
  return { ...server, parameters, history, put };
}
