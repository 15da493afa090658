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
import { isDomain, isEmail } from '../lib/http/validation.js';
import { UsageError, audit, required, runCli, type ArgSpec, type Args } from './cli.js';
import { localMfaKey, localStoreEndpoint, type RunningDynalite } from './local-stack.js';
import { createKeyRing } from '../lib/app.js';
import { BACKCHANNEL_LOGOUT_PATH, CALLBACK_PATH } from '../lib/auth/sso-service.js';
import { IdentityProviders, issuerProblem, sealClientSecret } from '../lib/auth/identity-providers.js';
import type { KeyRing } from '../lib/auth/signing-keys.js';
import { isProductionStage, loadMfaPolicy, type KeySource } from '../lib/platform/config.js';
import { ConnectionTakenError, SsoRepository, type Connection } from '../lib/store/sso.js';
import { mfaKeyAlias, mfaKeyParameter } from '../infra/signing-keys.js';
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
  sso add --domain D --issuer URL --client-id ID --client-secret-stdin [--enforce] [--admin-group NAME] [--groups-claim groups]
                             connect an email domain to its company's OpenID Connect provider (docs/sso.md); the
                             issuer is discovered and checked, the secret sealed; prints the URIs to register
  sso list                   the connections (never a secret)
  sso remove --domain D      remove a domain's connection (its users keep their accounts)
  sso unlink --email E       remove the user's links to IdP identities (issuer, sub): the next federated
                             sign-in with that email links whichever identity the IdP then sends

Options:
  --stage S          stage whose tables to use (default: $STAGE or dev)
  --aws              use DynamoDB in AWS (AWS_REGION, AWS credentials) instead of the local store
  --password-stdin   read the password from the first line of standard input
  --json             print JSON instead of a table
Without --password-stdin the password is asked for at a hidden prompt; it is never an argument.
New passwords are held to the password policy (README, "Password policy"); the command fails
with the rule a refused one breaks.`;

const ARGS: ArgSpec = {
  values: new Set(['email', 'name', 'role', 'stage', 'id', 'domain', 'issuer', 'client-id', 'admin-group', 'groups-claim']),
  flags: new Set(['password-stdin', 'aws', 'help', 'json', 'include-api-keys', 'client-secret-stdin', 'enforce']),
  withSubcommand: new Set(['sso']),
  refused: {
    password: 'Passwords are never given on the command line: use --password-stdin or the prompt',
    'client-secret': 'Client secrets are never given on the command line: use --client-secret-stdin',
  },
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
  /** Where the stage's API is reached (its publicBaseUrl), for the URIs an IdP must know. */
  publicBaseUrl: string;
  /** The MFA ring, which seals SSO client secrets; opened only when a command needs it. */
  mfaRing: () => KeyRing;
  allowLoopbackIssuers: boolean;
}

function domainOption(args: Args): string {
  const domain = required(args, 'domain').toLowerCase();
  if (!isDomain(domain)) throw new UsageError(`"${domain}" is not a domain name`);
  return domain;
}

function describeConnection(connection: Connection): string {
  return `${connection.domain}  ${connection.issuer}  client ${connection.clientId}  ${connection.enforce ? 'enforced' : 'optional'}  admin group ${connection.adminGroup ? JSON.stringify(connection.adminGroup) : '-'}  groups claim ${connection.groupsClaim}  created ${connection.createdAt}`;
}

/** `sso add|list|remove`: a domain's OpenID Connect provider (docs/sso.md). */
async function sso(args: Args, sub: string | undefined, db: DynamoDBDocumentClient, store: StoreConfig, settings: StageSettings, now: Date): Promise<string> {
  const repository = new SsoRepository(db, store.usersTable, store.attemptsTable);
  switch (sub) {
    case 'add': {
      const domain = domainOption(args);
      const issuer = required(args, 'issuer').replace(/\/$/, '');
      const problem = issuerProblem(issuer, { allowLoopback: settings.allowLoopbackIssuers });
      if (problem) throw new UsageError(`--issuer ${problem}`);
      const clientId = required(args, 'client-id');
      if (!args.options.has('client-secret-stdin')) throw new UsageError('--client-secret-stdin is required: the client secret is read from standard input, never from the command line');
      const secret = (await readPasswordFromStdin()).trim();
      if (secret === '') throw new UsageError('No client secret on standard input');
      const groupsClaim = (args.options.get('groups-claim') as string | undefined)?.trim() || 'groups';
      const adminGroup = (args.options.get('admin-group') as string | undefined)?.trim() || undefined;
      // Discovery, checked by openid-client: the document's issuer must be the one given.
      let discovered;
      try {
        discovered = await new IdentityProviders({ clock: () => new Date(), allowLoopback: settings.allowLoopbackIssuers }).discover(issuer);
      } catch (error) {
        throw new SsoSetupError(`The issuer's discovery failed (${issuer}/.well-known/openid-configuration): ${(error as Error).message}`);
      }
      if (!discovered.authorization_endpoint || !discovered.token_endpoint || !discovered.jwks_uri) throw new SsoSetupError('The issuer publishes no authorization, token or JWKS endpoint');
      const ring = await settings.mfaRing().current();
      await repository.addConnection({ domain, issuer, clientId, sealedClientSecret: sealClientSecret(ring, secret, domain), enforce: args.options.has('enforce'), adminGroup, groupsClaim, createdAt: now.toISOString() });
      audit('users-cli', 'sso_connection_added', { domain, issuer, clientId, enforce: args.options.has('enforce'), adminGroup });
      const logout = discovered.backchannel_logout_supported ? '' : '\n  (the issuer does not say it supports back-channel logout: see docs/sso.md for an instant cut-off)';
      return [
        `Connected ${domain} to ${issuer}${args.options.has('enforce') ? ' (password sign-in refused for this domain)' : ''}.`,
        'Register at the identity provider:',
        `  redirect URI (web):        ${settings.publicBaseUrl}${CALLBACK_PATH}`,
        `  back-channel logout URI:   ${settings.publicBaseUrl}${BACKCHANNEL_LOGOUT_PATH}${logout}`,
        `  scopes: openid email profile${adminGroup ? `; a "${groupsClaim}" claim in the ID token` : ''}`,
      ].join('\n');
    }
    case 'list': {
      const all = await repository.listConnections();
      audit('users-cli', 'sso_connections_listed', { count: all.length });
      if (args.options.has('json')) return JSON.stringify(all.map(({ sealedClientSecret: _sealed, ...rest }) => rest), null, 2);
      return all.length === 0 ? 'No SSO connections.' : all.map(describeConnection).join('\n');
    }
    case 'remove': {
      const domain = domainOption(args);
      if (!(await repository.removeConnection(domain))) throw new SsoSetupError(`No SSO connection for ${domain}`);
      audit('users-cli', 'sso_connection_removed', { domain });
      return `Removed the SSO connection of ${domain}; its users keep their accounts and sessions (users revoke-sessions ends them).`;
    }
    case 'unlink': {
      const email = emailOption(args);
      const user = await new UsersRepository(db, store.usersTable).findByEmail(email);
      if (!user) throw new SsoSetupError(`No user ${email}`);
      const removed = await repository.unlinkUser(user.id);
      audit('users-cli', 'sso_user_unlinked', { userId: user.id, links: removed });
      return `Removed ${removed} identity link(s) of ${email}.`;
    }
    default:
      throw new UsageError(sub === undefined ? 'sso needs a subcommand: add, list, remove or unlink' : `Unknown sso subcommand "${sub}"`);
  }
}

class SsoSetupError extends Error {}

async function run(args: Args, db: DynamoDBDocumentClient, store: StoreConfig, settings: StageSettings): Promise<string> {
  const users = new UsersRepository(db, store.usersTable);
  const now = new Date();
  switch (args.command) {
    case 'sso':
      return sso(args, args.subcommand, db, store, settings, now);
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

/**
 * Where the MFA ring (which seals SSO client secrets) comes from: the environment's MFA_KEY or
 * MFA_KEY_PARAMETER when set (as the Lambdas read it), else the stage's SSM parameter with --aws,
 * else the local stack's own key (.data/mfa-key).
 */
function mfaRingSource(stage: string, aws: boolean): KeySource {
  const fromEnv = process.env.MFA_KEY?.trim() || process.env.MFA_KEY_PARAMETER?.trim();
  const env = fromEnv
    ? { ...process.env, STAGE: stage }
    : aws
      ? { STAGE: stage, MFA_KEY_PARAMETER: mfaKeyParameter(stage), MFA_KEY_KMS_KEY: mfaKeyAlias(stage) }
      : { STAGE: stage, MFA_KEY: localMfaKey() };
  const source = loadMfaPolicy(env).keySource;
  if (!source) throw new ConfigError('MFA_KEY', 'is required to seal the client secret (or MFA_KEY_PARAMETER)');
  return source;
}

runCli({
  usage: USAGE,
  spec: ARGS,
  refusals: [ConfigError, EmailTakenError, UserNotFoundError, ConnectionTakenError, SsoSetupError],
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
        const publicBaseUrl = stageSetting(stage, 'PUBLIC_BASE_URL', deployed) || `http://localhost:${process.env.PORT?.trim() || '3000'}`;
        const mfaRing = () => {
          const source = mfaRingSource(stage, args.options.has('aws'));
          return createKeyRing(source, 'MFA_KEY_PARAMETER', 'mfa_keys', store, db, () => new Date());
        };
        return await run(args, db, store, { sessionIdleSeconds: sessionPolicy.idleSeconds, publicBaseUrl, mfaRing, allowLoopbackIssuers: !isProductionStage(stage) });
      } finally {
        db.destroy();
      }
    } finally {
      await owned?.close();
    }
  },
});
