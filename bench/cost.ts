/**
 * `npm run bench:cost`: what this stack costs on AWS per month for 1,000, 10,000 and 100,000 users
 * under the usage profile below, next to Amazon Cognito's and Auth0's published per-MAU prices.
 * us-east-1 list prices, no free tier applied (the account is shared with the other VPN Enterprise
 * APIs). Every price is a named constant with its source; docs/performance.md's "What it costs per month"
 * section gives the dates and what could not be confirmed. Nothing here calls AWS.
 */

// ---- Usage profile: per user per day; every user active every month (MAU = users) ------------
const DAYS_PER_MONTH = 30;
const PER_USER_PER_DAY = { login: 2, refresh: 10, me: 2, authorizer: 300 };
const USER_COUNTS = [1_000, 10_000, 100_000];

// ---- What one call uses (docs/performance.md "Lambda sizing", docs/design.md "A request, in DynamoDB calls"; items < 1 KB) -------------
type Fn = keyof typeof PER_USER_PER_DAY;
interface Call { memoryMb: number; durationMs: number; rru: number; wru: number; logKb: number; viaApiGateway: boolean }
const CALLS: Record<Fn, Call> = {
  // BatchGetItem of up to 5 items, strongly consistent (5 RRU); 4 UpdateItem + BatchWriteItem of 4 (8 WRU),
  // plus the new session's entry in the sessions table's by-user index (1 WRU)
  login: { memoryMb: 1769, durationMs: 441, rru: 5, wru: 9, logKb: 0.5, viaApiGateway: true },
  // The rotation's UpdateItem, and its index entry again (last_used_at is projected): 2 WRU
  refresh: { memoryMb: 1024, durationMs: 11.2, rru: 3, wru: 2, logKb: 0.5, viaApiGateway: true },
  me: { memoryMb: 1024, durationMs: 6.3, rru: 3, wru: 0, logKb: 0.5, viaApiGateway: true },
  // The request it authorizes is the other API's: no API Gateway charge here. As long as /auth/me (the
  // same check, one item fewer); its log is the platform's lines and one metrics (EMF) line.
  authorizer: { memoryMb: 1024, durationMs: 6.3, rru: 2, wru: 0, logKb: 0.6, viaApiGateway: false },
};
/** Lambda bills whole milliseconds: each duration is rounded up. */
const billedMs = (call: Call) => Math.ceil(call.durationMs);

// ---- AWS prices, USD, us-east-1 -----------------------------------------------------------------
// aws.amazon.com/lambda/pricing (arm64, first 7.5 billion GB-s), as quoted by cloudchipr.com/blog/aws-lambda-pricing
const LAMBDA_ARM64_PER_GB_SECOND = 0.0000133334;
// aws.amazon.com/lambda/pricing ("$0.20 per million requests"), as transcribed by api-evangelist 2026-09-20
const LAMBDA_PER_MILLION_REQUESTS = 0.2;
// docs.aws.amazon.com whitepaper "Best Practices for ... API Gateway Private APIs", Table 4: HTTP APIs, first 300 M
const HTTP_API_PER_MILLION_REQUESTS = 1.0;
// aws.amazon.com/dynamodb/pricing/on-demand, after the 50 % on-demand cut of 1 Nov 2024 (was $0.25 / $1.25);
// figures as quoted by airbyte.com (2025-07-21) and AWS Price List values used in public code
const DYNAMODB_PER_MILLION_RRU = 0.125;
const DYNAMODB_PER_MILLION_WRU = 0.625;
// aws.amazon.com/cloudwatch/pricing, Logs, Standard class ingestion, as quoted by c3x.dev (us-east-1, June 2026)
const LOGS_INGESTION_PER_GB = 0.5;
// aws.amazon.com/kms/pricing: $1/month per customer managed key; $0.03 per 10,000 requests (wring.co, 2026-03-15)
const KMS_KEY_PER_MONTH = 1;
const KMS_PER_10K_REQUESTS = 0.03;
/** Each warm container re-reads the signing keys every 300 s: two KMS Decrypts (SSM's of the SecureString, then the sealed ring's own). */
const KEY_CACHE_SECONDS = 300;
const DECRYPTS_PER_READ = 2;
/** Warm containers sized for this multiple of the average concurrency (daily peaks, bursts). */
const PEAK_TO_AVERAGE = 10;

// ---- Alternatives' published prices, USD per month ----------------------------------------------
// aws.amazon.com/cognito/pricing, as transcribed by api-evangelist (read 2026-09-20): Essentials $0.015/MAU
// above a free tier of 10,000 MAU; Plus $0.020/MAU, no free tier; Lite 10,000 free, then $0.0055, then $0.0046
const COGNITO_FREE_MAU = 10_000;
const COGNITO_ESSENTIALS_PER_MAU = 0.015;
const COGNITO_PLUS_PER_MAU = 0.02;
const COGNITO_LITE_BANDS = [{ upTo: 100_000, perMau: 0.0055 }, { upTo: 1_000_000, perMau: 0.0046 }];
// auth0.com/pricing (B2C, monthly billing), slider steps as quoted in public docs read Aug-Sep 2026: Essentials
// $35 at 500 MAU, $70 at 1,000, $700 at 10,000, self-serve up to 50,000; Professional $240 at 500, $545 at 2,500,
// $1,600 at 10,000, none at 50,000. Above that: Enterprise, "contact sales".
const AUTH0_B2C: Record<number, { essentials: number | string; professional: number | string }> = {
  1_000: { essentials: 70, professional: 'not confirmed ($240 at 500, $545 at 2,500)' },
  10_000: { essentials: 700, professional: 1_600 },
  100_000: { essentials: 'contact sales', professional: 'contact sales' },
};

// ---- Arithmetic ---------------------------------------------------------------------------------
interface Line { component: string; quantity: number; unit: string; unitPrice: number; cost: number }
const monthly = (users: number, fn: Fn) => users * PER_USER_PER_DAY[fn] * DAYS_PER_MONTH;
const KB_PER_GB = 1024 * 1024;

/** The bill's lines for `users`, for the functions in `fns` (the KMS key only with all of them). */
function bill(users: number, fns: Fn[] = Object.keys(CALLS) as Fn[]): Line[] {
  const sum = (of: (fn: Fn, call: Call) => number) => fns.reduce((total, fn) => total + of(fn, CALLS[fn]), 0);
  const gbSeconds = sum((fn, c) => monthly(users, fn) * (billedMs(c) / 1000) * (c.memoryMb / 1024));
  const invocations = sum((fn) => monthly(users, fn));
  const apiRequests = sum((fn, c) => (c.viaApiGateway ? monthly(users, fn) : 0));
  const rru = sum((fn, c) => monthly(users, fn) * c.rru);
  const wru = sum((fn, c) => monthly(users, fn) * c.wru);
  const logGb = sum((fn, c) => monthly(users, fn) * c.logKb) / KB_PER_GB;
  // Warm containers per function: average concurrency (calls/s x seconds) x PEAK_TO_AVERAGE, at least 1
  const seconds = DAYS_PER_MONTH * 86_400;
  const containers = sum((fn, c) => Math.max(1, Math.ceil((monthly(users, fn) / seconds) * (billedMs(c) / 1000) * PEAK_TO_AVERAGE)));
  const decrypts = containers * (seconds / KEY_CACHE_SECONDS) * DECRYPTS_PER_READ;
  const lines: Line[] = [
    { component: 'Lambda compute', quantity: gbSeconds, unit: 'GB-s', unitPrice: LAMBDA_ARM64_PER_GB_SECOND, cost: 0 },
    { component: 'Lambda requests', quantity: invocations / 1e6, unit: 'M requests', unitPrice: LAMBDA_PER_MILLION_REQUESTS, cost: 0 },
    { component: 'API Gateway (HTTP API)', quantity: apiRequests / 1e6, unit: 'M requests', unitPrice: HTTP_API_PER_MILLION_REQUESTS, cost: 0 },
    { component: 'DynamoDB reads', quantity: rru / 1e6, unit: 'M RRU', unitPrice: DYNAMODB_PER_MILLION_RRU, cost: 0 },
    { component: 'DynamoDB writes', quantity: wru / 1e6, unit: 'M WRU', unitPrice: DYNAMODB_PER_MILLION_WRU, cost: 0 },
    { component: 'CloudWatch Logs ingestion', quantity: logGb, unit: 'GB', unitPrice: LOGS_INGESTION_PER_GB, cost: 0 },
    { component: `KMS decrypts (${containers} warm containers)`, quantity: decrypts / 1e6, unit: 'M requests', unitPrice: KMS_PER_10K_REQUESTS * 100, cost: 0 },
  ];
  if (fns.length === Object.keys(CALLS).length) lines.push({ component: 'KMS key', quantity: 1, unit: 'key-month', unitPrice: KMS_KEY_PER_MONTH, cost: 0 });
  return lines.map((line) => ({ ...line, cost: line.quantity * line.unitPrice }));
}
const total = (lines: Line[]) => lines.reduce((sum, line) => sum + line.cost, 0);

function cognitoLite(mau: number): number {
  let cost = 0;
  let from = COGNITO_FREE_MAU;
  for (const band of COGNITO_LITE_BANDS) {
    cost += Math.max(0, Math.min(mau, band.upTo) - from) * band.perMau;
    from = band.upTo;
  }
  return cost;
}
const cognitoEssentials = (mau: number) => Math.max(0, mau - COGNITO_FREE_MAU) * COGNITO_ESSENTIALS_PER_MAU;
const cognitoPlus = (mau: number) => mau * COGNITO_PLUS_PER_MAU;

// ---- Output -------------------------------------------------------------------------------------
const usd = (n: number | string) =>
  typeof n === 'string' ? n : `$${n.toLocaleString('en-US', { minimumFractionDigits: n < 100 ? 2 : 0, maximumFractionDigits: n < 100 ? 2 : 0 })}`;
const count = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: n < 1000 ? 2 : 0 });
const price = (n: number) => `$${n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 10 })}`;
const row = (cells: string[]) => console.log(`| ${cells.join(' | ')} |`);

const perUser = Object.entries(PER_USER_PER_DAY).map(([fn, n]) => `${n} ${fn}`).join(', ');
console.log(`Usage per user per day: ${perUser}; ${DAYS_PER_MONTH} days a month; MAU = users. USD per month, us-east-1, no free tier.\n`);
row(['Users (MAU)', 'This stack', 'of which the authorizer', 'Cognito Lite', 'Cognito Essentials', 'Cognito Plus', 'Auth0 B2C Essentials', 'Auth0 B2C Professional']);
row(['---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']);
for (const users of USER_COUNTS) {
  const auth0 = AUTH0_B2C[users]!;
  row([count(users), usd(total(bill(users))), usd(total(bill(users, ['authorizer']))), usd(cognitoLite(users)),
    usd(cognitoEssentials(users)), usd(cognitoPlus(users)), usd(auth0.essentials), usd(auth0.professional)]);
}

const breakdownUsers = 10_000;
console.log(`\nThis stack at ${count(breakdownUsers)} users, line by line:\n`);
row(['Component', 'Quantity per month', 'Unit price', 'Cost']);
row(['---', '---:', '---:', '---:']);
for (const line of bill(breakdownUsers)) {
  row([line.component, `${count(line.quantity)} ${line.unit}`, `${price(line.unitPrice)} per ${line.unit}`, usd(line.cost)]);
}
row(['**Total**', '', '', `**${usd(total(bill(breakdownUsers)))}**`]);
