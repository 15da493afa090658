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
 * The placeholder credentials the local stack's own clients sign with (lib/platform/local-credentials.ts;
 * a Lambda's name its function). The fake checks every signature against the placeholder secret.
 */
export const LOCAL_CREDENTIALS = placeholderCredentials();

export interface FakeSsm {
  endpoint: string;
  /** The stored parameters, by name, with the KMS key each was encrypted with (SSM's default: alias/aws/ssm). */
  parameters: Map<string, { value: string; version: number; keyId: string }>;
  /** Every value ever stored, including overwritten ones (for the tests' leak scan). */
  history: string[];
  /** Store a parameter directly, as an operator's earlier PutParameter would have. */
  put(name: string, value: string): void;
  /** The headers of the last request received. */
  lastHeaders(): Record<string, string | string[] | undefined>;
  /** Requests answered, by action (GetParameter, PutParameter). */
  calls: Map<string, number>;
  /** Answer the next `count` requests with this error instead (throttling, outage). */
  failNext(count: number, status: number, type: string): void;
  close(): Promise<void>;
}

/**
 * SSM Parameter Store's GetParameter and PutParameter for SecureStrings, on 127.0.0.1, as the
 * service speaks them (JSON 1.1 over HTTP, X-Amz-Target), refusing any request whose SigV4
 * signature, region or service is wrong. What dynalite is to DynamoDB, for our two calls.
 */
export async function startFakeSsm(options: { region?: string; port?: number } = {}): Promise<FakeSsm> {
  const region = options.region ?? 'us-east-1';
  const parameters = new Map<string, { value: string; version: number; keyId: string }>();
  const calls = new Map<string, number>();
  const history: string[] = [];
  let lastHeaders: Record<string, string | string[] | undefined> = {};
  const put = (name: string, value: string, keyId = 'alias/aws/ssm') => {
    parameters.set(name, { value, version: (parameters.get(name)?.version ?? 0) + 1, keyId });
    history.push(value);
    return parameters.get(name)!.version;
  };
  let failures: { count: number; status: number; type: string } = { count: 0, status: 0, type: '' };

  async function signatureProblem(request: IncomingMessage, body: string): Promise<string | undefined> {
    const authorization = request.headers.authorization ?? '';
    const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(authorization);
    if (!match) return 'missing or malformed Authorization';
    const [, accessKeyId, , signedRegion, service, signedHeaders, signature] = match;
    if (!isPlaceholderAccessKeyId(accessKeyId!)) return `unknown access key ${accessKeyId}`;
    if (signedRegion !== region || service !== 'ssm') return `signed for ${signedRegion}/${service}, expected ${region}/ssm`;
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
    const credentials = { accessKeyId: accessKeyId!, secretAccessKey: PLACEHOLDER_SECRET, ...(sessionToken === undefined ? {} : { sessionToken: String(sessionToken) }) };
    const signer = new SignatureV4({ credentials, region, service: 'ssm', sha256: Sha256 });
    const resigned = await signer.sign(
      { method: request.method!, protocol: 'http:', hostname: '127.0.0.1', path: request.url!.split('?')[0]!, query: {}, headers, body },
      { signingDate: new Date(`${date[1]}-${date[2]}-${date[3]}T${date[4]}:${date[5]}:${date[6]}Z`) },
    );
    const expected = /Signature=([0-9a-f]{64})/.exec(resigned.headers.authorization ?? '')?.[1];
    return expected === signature ? undefined : 'signature does not match';
  }

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
      return [200, { Version: put(name, String(input.Value), typeof input.KeyId === 'string' ? input.KeyId : undefined), Tier: 'Standard' }];
    }
    return [400, { __type: 'UnknownOperationException' }];
  }

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
      const action = String(request.headers['x-amz-target'] ?? '').replace(/^AmazonSSM\./, '');
      calls.set(action, (calls.get(action) ?? 0) + 1);
      if (failures.count > 0) {
        failures.count--;
        return reply(failures.status, { __type: failures.type, message: 'injected failure' });
      }
      const problem = await signatureProblem(request, body);
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
    server.listen(options.port ?? 0, '127.0.0.1', () => resolveListen());
  });
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    parameters,
    history,
    put,
    lastHeaders: () => lastHeaders,
    calls,
    failNext(count, status, type) {
      failures = { count, status, type };
    },
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}
