import { randomBytes } from 'node:crypto';
import { createApp, type App } from '../../lib/app.js';
import { loadConfig } from '../../lib/platform/config.js';
import { hashPassword } from '../../lib/auth/passwords.js';
import type { Role, User } from '../../lib/store/users.js';
import { ensureTables } from '../../scripts/local-stack.js';
import { TEST_BCRYPT_COST, dynamoEndpoint } from './context.js';
import { recordSecret } from './secrets.js';

/** A clock the test moves by hand. */
export class TestClock {
  constructor(public current = new Date('2026-01-15T10:30:00.000Z')) {}
  readonly now = () => new Date(this.current);
  advance(seconds: number): void {
    this.current = new Date(this.current.getTime() + seconds * 1000);
  }
}

/**
 * The real app against the integration dynalite, on tables of its own (a fresh stage name, unless
 * `env` names one), so test files never see each other's data.
 */
export async function testApp(clock = new TestClock(), env: Record<string, string> = {}): Promise<App & { testClock: TestClock }> {
  const stage = env.STAGE || `t${randomBytes(5).toString('hex')}`;
  await ensureTables(dynamoEndpoint(), stage);
  const config = loadConfig({
    DYNAMODB_ENDPOINT: dynamoEndpoint(),
    JWT_SECRET: randomBytes(32).toString('base64url'),
    BCRYPT_COST: String(TEST_BCRYPT_COST),
    ...env,
    STAGE: stage,
  });
  return { ...createApp(config, clock.now), testClock: clock };
}

export function uniqueEmail(label = 'user'): string {
  return `${label}.${randomBytes(6).toString('hex')}@example.com`;
}

export async function createUser(app: App, overrides: { email?: string; password?: string; role?: Role; name?: string } = {}): Promise<User & { password: string }> {
  const password = overrides.password ?? `pw-${randomBytes(6).toString('hex')}`;
  recordSecret(password);
  const user = await app.users.create(
    {
      email: overrides.email ?? uniqueEmail(),
      name: overrides.name ?? 'Test User',
      role: overrides.role ?? 'user',
      passwordHash: await hashPassword(password, TEST_BCRYPT_COST),
    },
    app.clock(),
  );
  return { ...user, password };
}

/**
 * Every DynamoDB command the app's client sends from now on, retries included, counted at the
 * SDK boundary; `reset` starts the count again.
 */
export function countCalls(app: App): { calls: string[]; reset(): void } {
  const calls: string[] = [];
  app.db.middlewareStack.add(
    (next, context) => async (args) => {
      calls.push(context.commandName ?? 'unknown');
      return next(args);
    },
    { step: 'finalizeRequest', name: 'count-calls' },
  );
  return { calls, reset: () => calls.splice(0) };
}
