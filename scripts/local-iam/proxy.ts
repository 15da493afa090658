/**
 * The local stack's IAM: a loopback proxy in front of dynalite (which checks no permission) that
 * holds every Lambda's DynamoDB call to that function's role (./policy.ts, from infra/iam.js) and
 * refuses what the role does not allow exactly as DynamoDB does: HTTP 400,
 * `com.amazon.coral.service#AccessDeniedException`, AWS's message. The SDK does not retry that, and
 * our code answers it with a 500 `internal_error`, as in AWS. Calls from anything but a Lambda
 * (placeholder credentials without a function: the CLIs, the seeding, the tests' own set-up) pass
 * unchecked. What each function was allowed is recorded, so a run can tell which grants no path used.
 */
import { randomBytes } from 'node:crypto';
import { Agent, createServer, request as forward, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import { lambdaOfAccessKeyId } from '../../lib/platform/local-credentials.js';
import { callerOf, definedAccess, denialMessage, isAllowed, needsOf, resourceKey, type Access, type Need } from './policy.js';

/** A call refused: which function asked what, and what it was told. */
export interface Denial {
  functionName: string;
  /** The function's key in ACCESS, when its name is one of ours. */
  fn: string | undefined;
  action: string;
  /** ACCESS's key for the resource (`AttemptsTable`), else the table's name. */
  resource: string;
  message: string;
}

/** One line for a person: `mfaVerify (vpn-auth-test-mfaVerify) was refused dynamodb:GetItem on AttemptsTable`. */
export function describeDenial(denial: Denial): string {
  const who = denial.fn === undefined ? `${denial.functionName} (no role in infra/iam.js)` : `${denial.fn} (${denial.functionName})`;
  return `${who} was refused ${denial.action} on ${denial.resource}`;
}

/** `<function> <resource> <action>`: one grant of ACCESS (`mfaVerify AttemptsTable dynamodb:GetItem`). */
export const grantId = (fn: string, resource: string, action: string) => `${fn} ${resource} ${action}`;

export interface IamProxy {
  /** Where the Lambdas (and everyone else) reach DynamoDB. */
  endpoint: string;
  port: number;
  /** Every grant some call was allowed by, as grantId. */
  used: ReadonlySet<string>;
  denials: readonly Denial[];
  close(): Promise<void>;
}

export interface IamProxyOptions {
  /** dynalite's endpoint. */
  target: string;
  /** 0 (default) for a free port. */
  port?: number;
  /** The roles; infra/iam.js's ACCESS as it is at each call unless a test narrows them. */
  access?: () => Access;
  /** Told of each denial as it happens (npm start prints it). */
  onDenial?: (denial: Denial) => void;
}

const CREDENTIAL = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\//;

/** DynamoDB's own request ids: 52 characters of A-Z and 0-9. */
const requestId = () => Array.from(randomBytes(52), (byte) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'[byte % 36]).join('');

export async function startIamProxy(options: IamProxyOptions): Promise<IamProxy> {
  const target = new URL(options.target);
  const access = options.access ?? definedAccess;
  const agent = new Agent({ keepAlive: true });
  const used = new Set<string>();
  const denials: Denial[] = [];

  /** A Lambda's call refused for the first need its role does not allow (AWS names one); else undefined, its grants recorded as used. */
  function refusal(headers: IncomingHttpHeaders, body: Buffer): Denial | undefined {
    const [, accessKeyId = '', region = 'us-east-1'] = CREDENTIAL.exec(String(headers.authorization ?? '')) ?? [];
    const functionName = lambdaOfAccessKeyId(accessKeyId);
    const operation = String(headers['x-amz-target'] ?? '');
    if (functionName === undefined || !operation.startsWith('DynamoDB_')) return undefined;
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return undefined; // DynamoDB's SerializationException, from dynalite
    }
    const caller = callerOf(functionName);
    const roles = access();
    const needs = needsOf(operation, input ?? {});
    const denied = needs.find((need) => !isAllowed(roles, caller, need));
    if (denied) return denialOf(functionName, denied, region);
    for (const need of needs) used.add(grantId(caller!.fn, resourceKey(caller!, need)!, need.action));
    return undefined;
  }

  function denialOf(functionName: string, need: Need, region: string): Denial {
    const caller = callerOf(functionName);
    const resource = (caller && resourceKey(caller, need)) ?? need.table ?? '*';
    return { functionName, fn: caller?.fn, action: need.action, resource, message: denialMessage(functionName, need, region) };
  }

  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const denial = refusal(request.headers, body);
      if (denial) {
        denials.push(denial);
        options.onDenial?.(denial);
        const payload = JSON.stringify({ __type: 'com.amazon.coral.service#AccessDeniedException', Message: denial.message });
        response.writeHead(400, {
          'content-type': 'application/x-amz-json-1.0',
          'content-length': Buffer.byteLength(payload),
          'x-amzn-requestid': requestId(),
          'x-amz-crc32': String(crc32(payload)),
        });
        response.end(payload);
        return;
      }
      const upstream = forward(
        { hostname: target.hostname, port: target.port, path: request.url, method: request.method, headers: request.headers, agent },
        (reply) => {
          response.writeHead(reply.statusCode ?? 502, reply.headers);
          reply.pipe(response);
        },
      );
      // dynalite gone: the client sees the connection drop, as it would DynamoDB's.
      upstream.on('error', () => response.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((listening, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => listening());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    used,
    denials,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((closed) => server.close(() => closed()));
      agent.destroy();
    },
  };
}
