/**
 * Operators' user management: `npm run users -- <command> [options]`.
 * Works on the local store by default (the running `npm start`, or the .data/ folder directly
 * when it is not running) and on AWS with `--aws` (region and credentials from the usual AWS env).
 */
import { createInterface } from 'node:readline';
import { ConfigError, MAX_REFRESH_TOKEN_TTL_SECONDS, dynamodbEndpointFrom, loadSessionPolicy, loadStoreConfig, type StoreConfig } from '../lib/platform/config.js';
import { parseApiKeyId, sessionIdToBytes } from '../lib/platform/ids.js';
import { ApiKeysRepository, toPublicApiKey, type ApiKey } from '../lib/store/api-keys.js';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../lib/platform/dynamo.js';
import { unlockAccount } from '../lib/store/login-attempts.js';
import { clearCodeFailures } from '../lib/store/mfa.js';
import { passwordPolicyProblem } from '../lib/auth/password-policy.js';
import { hashPassword, verifyPassword } from '../lib/auth/passwords.js';
import { MfaRepository } from '../lib/store/mfa.js';
import { SessionsRepository, toPublicSession, type SessionSummary } from '../lib/store/sessions.js';
import { EmailTakenError, ROLES, UserNotFoundError, UsersRepository, normalizeEmail, type Role, type User } from '../lib/store/users.js';
import { isEmail } from '../lib/http/validation.js';
import { UsageError, audit, required, runCli, type ArgSpec, type Args } from './cli.js';
import { localStoreEndpoint, type RunningDynalite } from './local-stack.js';
import { stageSetting } from './stage-params.js';

const USAGE = `Usage: npm run users -- <command> [options]

Commands:
  create --email E --name N --role admin|user [--password-stdin]
  list
  disable --email E          block sign-in and end all the user's sessions
  enable --email E
  set-password --email E [--password-stdin]   (ends all the user's sessions)
  sessions --email E [--json]  the user's live sessions, newest first
  end-session --id ID        end one session
  revoke-sessions --email E [--include-api-keys]
                             end all the user's sessions (and device tokens); with --include-api-keys,
                             every API key too (an incident: a password change or a global logout leaves keys)
  api-keys --email E [--json]  the user's live API keys, newest first
  revoke-api-key --id ID     revoke one API key (its id, ak_…, as listed)
  unlock --email E           clear the account's brute-force counters (every IP, the hourly cap, its device tokens' locks)
  mfa-reset --email E        remove the user's TOTP and recovery codes (a lost authenticator) and end all
                             their sessions and API keys; a user whose role requires two factors enrols again at the next sign-in

Options:
  --stage S          stage whose tables to use (default: $STAGE or dev)
  --aws              use DynamoDB in AWS (AWS_REGION, AWS credentials) instead of the local store
  --password-stdin   read the password from the first line of standard input
  --json             print JSON instead of a table
Without --password-stdin the password is asked for at a hidden prompt; it is never an argument.
New passwords are held to the password policy (README, "Password policy"); the command fails
with the rule a refused one breaks.`;

const ARGS: ArgSpec = {
  values: new Set(['email', 'name', 'role', 'stage', 'id']),
  flags: new Set(['password-stdin', 'aws', 'help', 'json', 'include-api-keys']),
  refused: { password: 'Passwords are never given on the command line: use --password-stdin or the prompt' },
};

function emailOption(args: Args): string {
  const email = normalizeEmail(required(args, 'email'));
  if (!isEmail(email)) throw new UsageError(`"${email}" is not an email address`);
  return email;
}

async function readPasswordFromStdin(): Promise<string> {
  const lines = createInterface({ input: process.stdin, terminal: false });
  for await (const line of lines) {
    lines.close();
    return line.replace(/\r$/, '');
  }
  return '';
}

/** Ask on the terminal without echoing what is typed. */
/** Ask each prompt in turn on the terminal, one readline for all (so typed-ahead lines are kept), echoing nothing typed. */
async function promptPasswords(prompts: string[]): Promise<string[]> {
  if (!process.stdin.isTTY) throw new UsageError('No terminal to prompt on: use --password-stdin');
  const output = process.stdout;
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  const writer = rl as unknown as { _writeToOutput: (s: string) => void };
  let muted = false;
  writer._writeToOutput = (text: string) => {
    if (!muted) output.write(text);
    else if (text.includes('\n') || text.includes('\r')) output.write('\n');
  };
  const answers: string[] = [];
  try {
    for (const prompt of prompts) {
      muted = false;
      answers.push(
        await new Promise<string>((resolveAnswer) => {
          rl.question(prompt, resolveAnswer);
          muted = true;
        }),
      );
    }
  } finally {
    rl.close();
  }
  return answers;
}

/** A new password from stdin or the prompt, held to the policy (the same rules as POST /auth/password). */
async function newPassword(args: Args, store: StoreConfig, email: string, current?: User): Promise<string> {
  let password: string;
  if (args.options.has('password-stdin')) {
    password = await readPasswordFromStdin();
  } else {
    const [first, again] = await promptPasswords(['Password: ', 'Repeat password: ']);
    if (first !== again) throw new UsageError('The passwords do not match');
    password = first!;
  }
  const problem = passwordPolicyProblem(password, { minLength: store.passwordMinLength, email });
  if (problem) throw new UsageError(problem);
  if (current && (await verifyPassword(password, current.passwordHash, store.bcryptCost))) throw new UsageError('The new password must differ from the current one.');
  return password;
}

/** TOTP on, set up but not yet activated, or none. */
function totpOf(user: User): string {
  return user.totp?.status === 'active' ? 'totp' : user.totp?.status === 'pending' ? 'totp-pending' : 'no-totp';
}

function describe(user: User): string {
  return `${user.id}  ${user.email}  ${JSON.stringify(user.name)}  ${user.role}  ${user.status}  ${totpOf(user)}  created ${user.createdAt}  last login ${user.lastLogin ?? 'never'}`;
}

async function userByEmail(users: UsersRepository, email: string): Promise<User> {
  const user = await users.findByEmail(email);
  if (!user) throw new UserNotFoundError(`with email ${email}`);
  return user;
}

function sessionTable(sessions: SessionSummary[]): string {
  const rows = [['ID', 'CREATED', 'LAST USED', 'IP', 'USER AGENT'], ...sessions.map((s) => [s.id, s.createdAt, s.lastUsedAt, s.sourceIp ?? '-', s.userAgent ?? '-'])];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')).join('\n');
}

function apiKeyTable(keys: ApiKey[]): string {
  const rows = [['ID', 'NAME', 'ROLE', 'CREATED', 'EXPIRES', 'LAST USED', 'HINT'], ...keys.map((key) => {
    const view = toPublicApiKey(key);
    return [view.id, JSON.stringify(view.name), view.role, view.created_at, view.expires_at, view.last_used_at ?? 'never', key.hint];
  })];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')).join('\n');
}

/** The stage's settings the commands need beyond the store's. */
interface StageSettings {
  sessionIdleSeconds: number;
}

async function run(args: Args, db: DynamoDBDocumentClient, store: StoreConfig, settings: StageSettings): Promise<string> {
  const users = new UsersRepository(db, store.usersTable);
  const now = new Date();
  switch (args.command) {
    case 'create': {
      const email = emailOption(args);
      const name = required(args, 'name');
      if (name.length > 200) throw new UsageError('--name must be at most 200 characters');
      const role = required(args, 'role');
      if (!(ROLES as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}, got "${role}"`);
      const password = await newPassword(args, store, email);
      const user = await users.create({ email, name, role: role as Role, passwordHash: await hashPassword(password, store.bcryptCost) }, now);
      audit('users-cli', 'user_created', { userId: user.id });
      return `Created ${describe(user)}`;
    }
    case 'list': {
      const all = await users.list();
      return all.length === 0 ? 'No users.' : all.map(describe).join('\n');
    }
    case 'disable':
    case 'enable': {
      const user = await userByEmail(users, emailOption(args));
      const updated = await users.setStatus(user.id, args.command === 'disable' ? 'disabled' : 'active', now);
      audit('users-cli', args.command === 'disable' ? 'user_disabled' : 'user_enabled', { userId: user.id });
      return `${args.command === 'disable' ? 'Disabled (all sessions ended)' : 'Enabled'}: ${describe(updated)}`;
    }
    case 'set-password': {
      const user = await userByEmail(users, emailOption(args));
      const password = await newPassword(args, store, user.email, user);
      await users.setPasswordHash(user.id, await hashPassword(password, store.bcryptCost), now);
      audit('users-cli', 'password_changed', { userId: user.id });
      return `Password changed for ${user.email}; all of their sessions have ended.`;
    }
    case 'unlock': {
      const user = await userByEmail(users, emailOption(args));
      const [cleared] = await Promise.all([unlockAccount(db, store, user.email, user.id), clearCodeFailures(db, store.usersTable, user.id)]);
      audit('users-cli', 'account_unlocked', { userId: user.id, counters: cleared.counters, devices: cleared.devices });
      return `Unlocked ${user.email}: ${cleared.counters} counter(s) cleared, ${cleared.devices} device token(s) reset, second-factor locks lifted.`;
    }
    case 'sessions': {
      const user = await userByEmail(users, emailOption(args));
      const sessions = await new SessionsRepository(db, store.sessionsTable, store.usersTable).listLive(user, now, { idleSeconds: settings.sessionIdleSeconds, limit: Infinity, maxAgeSeconds: MAX_REFRESH_TOKEN_TTL_SECONDS });
      audit('users-cli', 'sessions_listed', { userId: user.id, count: sessions.length });
      if (args.options.has('json')) return JSON.stringify(sessions.map(toPublicSession), null, 2);
      return sessions.length === 0 ? `${user.email} has no live session.` : sessionTable(sessions);
    }
    case 'end-session': {
      const id = required(args, 'id');
      const sessions = new SessionsRepository(db, store.sessionsTable, store.usersTable);
      const session = sessionIdToBytes(id) === undefined ? undefined : await sessions.get(id);
      if (!session) throw new UsageError(`No session with id ${JSON.stringify(id)}`);
      await sessions.revoke(session.id, session.userId, now, 'ended_by_operator');
      audit('users-cli', 'session_ended', { userId: session.userId, endedSessionId: session.id });
      return `Session ${session.id} has ended.`;
    }
    case 'mfa-reset': {
      const user = await userByEmail(users, emailOption(args));
      // Whoever took over the second factor may have made keys: they end in the same write.
      const reset = await new MfaRepository(db, store.usersTable).reset(user.id, now);
      if (!reset) throw new UserNotFoundError(`with email ${user.email}`);
      audit('users-cli', 'mfa_reset', { userId: user.id, had: totpOf(user), apiKeysEnded: true });
      return `Two-factor sign-in reset for ${user.email} (was ${totpOf(user)}): TOTP and recovery codes removed, all of their sessions and API keys have ended.`;
    }
    case 'revoke-sessions': {
      const user = await userByEmail(users, emailOption(args));
      const withKeys = args.options.has('include-api-keys');
      await users.revokeAllSessions(user.id, now);
      if (withKeys) await users.revokeAllApiKeys(user.id, now);
      audit('users-cli', 'logout_all', { userId: user.id, apiKeysEnded: withKeys });
      return withKeys ? `All sessions and API keys of ${user.email} have ended.` : `All sessions of ${user.email} have ended (API keys stand: --include-api-keys ends them too).`;
    }
    case 'api-keys': {
      const user = await userByEmail(users, emailOption(args));
      const keys = await new ApiKeysRepository(db, store.attemptsTable, store.usersTable).liveKeys(user, now);
      audit('users-cli', 'api_keys_listed', { userId: user.id, count: keys.length });
      if (args.options.has('json')) return JSON.stringify(keys.map((key) => ({ ...toPublicApiKey(key), hint: key.hint })), null, 2);
      return keys.length === 0 ? `${user.email} has no live API key.` : apiKeyTable(keys);
    }
    case 'revoke-api-key': {
      const id = required(args, 'id');
      const owner = await ((parsed) => parsed && users.get(parsed.userId))(parseApiKeyId(id));
      const wasLive = owner && (await new ApiKeysRepository(db, store.attemptsTable, store.usersTable).revokeById(owner, id, now));
      if (wasLive === undefined) throw new UsageError(`No API key with id ${JSON.stringify(id)}`);
      audit('users-cli', 'api_key_revoked', { userId: owner!.id, keyId: id, by: 'operator', wasLive });
      return wasLive ? `API key ${id} has ended.` : `API key ${id} had already ended.`;
    }
    default:
      throw new UsageError(args.command === undefined ? 'A command is required' : `Unknown command "${args.command}"`);
  }
}

runCli({
  usage: USAGE,
  spec: ARGS,
  refusals: [ConfigError, EmailTakenError, UserNotFoundError],
  run: async (args) => {
    const stage = (args.options.get('stage') as string | undefined) ?? (process.env.STAGE?.trim() || 'dev');
    loadStoreConfig({ STAGE: stage }); // validates the stage before it names a folder under .data/
    let endpoint = dynamodbEndpointFrom();
    let owned: RunningDynalite | undefined;
    if (args.options.has('aws')) endpoint = undefined;
    else if (!endpoint) ({ endpoint, owned } = await localStoreEndpoint(stage));
    try {
      // New hashes at the stage's own cost and under its own policy (serverless.yml params), not whatever the shell says.
      const deployed = { deployed: endpoint === undefined };
      const store = loadStoreConfig({
        ...process.env,
        STAGE: stage,
        DYNAMODB_ENDPOINT: endpoint ?? '',
        BCRYPT_COST: stageSetting(stage, 'BCRYPT_COST', deployed),
        PASSWORD_MIN_LENGTH: stageSetting(stage, 'PASSWORD_MIN_LENGTH', deployed),
      });
      const sessionPolicy = loadSessionPolicy({ SESSION_IDLE_SECONDS: stageSetting(stage, 'SESSION_IDLE_SECONDS', deployed) });
      const db = createDocumentClient(store);
      try {
        return await run(args, db, store, { sessionIdleSeconds: sessionPolicy.idleSeconds });
      } finally {
        db.destroy();
      }
    } finally {
      await owned?.close();
    }
  },
});
