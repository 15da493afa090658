/**
 * `npm run events`: fresh credentials in the committed API Gateway events, so that
 * `npx serverless invoke local -f <fn> -p events/<fn>.json` works for every function against the
 * running `npm start`. Signs the demo user in over HTTP (PORT, DEMO_USER_EMAIL, DEMO_USER_PASSWORD
 * as `npm start` takes them) and writes the new access token into the Authorization header of
 * me, logout, list-sessions, end-session, change-password, the MFA endpoints that take one, the three
 * API-key endpoints and the authorizer, the refresh token
 * into refresh's body, a second sign-in's session id into end-session's path, and what the
 * authorizer would pass on into the example route's context. change-password's event asks for the
 * demo password as the new one, so invoking it is refused by the policy (400 weak_password) after
 * every check but the write, and the demo user keeps its password; edit `new_password` to really
 * change it. The MFA events are answered without changing the demo user's sign-in: setup (its
 * `current_password` the demo password, as change-password's is) leaves a pending secret,
 * activate's code and verify's token are placeholders (401), and with no TOTP on there are no
 * recovery codes to replace (its `code` a placeholder) and nothing to turn off (409). Invoking
 * create-api-key makes a real key for the demo user (revoke it with revoke-api-key's event, its id
 * filled in by hand, or `npm run users -- revoke-api-key --id ID`); revoke-api-key's committed id
 * is a placeholder (404).
 * (`git checkout events/` puts the placeholders back.)
 * `npm start` writes `.env.<stage>`, which the framework loads (`useDotenv`), so invoke local reads
 * the same tables and key as the running stack.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { UsageError, runCli } from './cli.js';
import { PROJECT_ROOT } from './local-stack.js';

const USAGE = `Usage: npm run events [-- --dir D]

Signs the demo user in against the running npm start (PORT, default 3000) and writes fresh tokens
into the API Gateway events in events/ (or D), for \`npx serverless invoke local -f <fn> -p events/<fn>.json\`.`;

type Event = { headers: Record<string, string>; body?: string; identitySource?: string[]; requestContext: Record<string, any> };

function edit(dir: string, fn: string, change: (event: Event) => void): void {
  const file = join(dir, `${fn}.json`);
  const event = JSON.parse(readFileSync(file, 'utf8')) as Event;
  change(event);
  writeFileSync(file, `${JSON.stringify(event, null, 2)}\n`);
}

runCli({
  usage: USAGE,
  spec: { values: new Set(['dir']), flags: new Set(['help']) },
  refusals: [],
  run: async (args) => {
    if (args.command !== undefined) throw new UsageError(`Unexpected argument "${args.command}"`);
    const dir = (args.options.get('dir') as string | undefined) ?? join(PROJECT_ROOT, 'events');
    const port = process.env.PORT?.trim() || '3000';
    const email = process.env.DEMO_USER_EMAIL?.trim() || 'user@company.com';
    const password = process.env.DEMO_USER_PASSWORD || 'secure_password';
    const signIn = async () => {
      const response = await fetch(`http://127.0.0.1:${port}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password }),
        signal: AbortSignal.timeout(20_000),
      }).catch(() => {
        throw new UsageError(`No API answers on http://127.0.0.1:${port}: start it with npm start (or set PORT)`);
      });
      const reply = (await response.json()) as { token?: string; refresh_token?: string; user?: { id: string; role: string }; error?: { code: string } };
      if (!response.ok || !reply.token) throw new Error(`Signing ${email} in failed: ${response.status} ${reply.error?.code ?? ''}`);
      return reply;
    };
    const body = await signIn();
    const other = await signIn();
    const bearer = `Bearer ${body.token}`;
    for (const fn of ['me', 'logout', 'list-sessions', 'change-password', 'mfa-setup', 'mfa-activate', 'mfa-recovery-codes', 'mfa-turn-off', 'create-api-key', 'list-api-keys', 'revoke-api-key']) {
      edit(dir, fn, (event) => (event.headers.authorization = bearer));
    }
    edit(dir, 'end-session', (event) => {
      const id = decodeJwt(other.token!).sid as string;
      event.headers.authorization = bearer;
      (event as Event & { pathParameters: Record<string, string> }).pathParameters = { id };
      event.requestContext.http.path = `/v1/auth/sessions/${id}`;
      (event as Event & { rawPath: string }).rawPath = `/v1/auth/sessions/${id}`;
    });
    edit(dir, 'authorizer', (event) => {
      event.headers.authorization = bearer;
      event.identitySource = [bearer];
    });
    edit(dir, 'refresh', (event) => (event.body = JSON.stringify({ refresh_token: body.refresh_token })));
    edit(dir, 'example-protected', (event) => {
      event.headers.authorization = bearer;
      const claims = decodeJwt(body.token!);
      event.requestContext.authorizer = { lambda: { sub: body.user!.id, sid: claims.sid, role: body.user!.role, amr: (claims.amr as string[]).join(',') } };
    });
    return `Fresh tokens for ${email} in ${dir}: me, logout, list-sessions, end-session, change-password, mfa-*, *-api-key(s), authorizer, refresh, example-protected.\n` +
      'Try: npx serverless invoke local -f me -p events/me.json';
  },
});
