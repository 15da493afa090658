/**
 * `npm start`: the whole API on this machine, no Docker, no Java, no AWS account.
 * dynalite (data kept in .data/) behind the local IAM check -> tables -> demo user ->
 * serverless-offline, stopped together (scripts/local-api.ts).
 */
import { startLocalApi, stopTogether } from './local-api.js';

async function main(): Promise<void> {
  const api = await startLocalApi({ command: 'npm start' });
  const { base, demo, external, stage } = api;
  console.log(`
  VPN Enterprise auth API (stage ${stage}) is running
  Base URL:  ${base}/auth/{login,refresh,logout,me,sessions,password,mfa/...}
  DynamoDB:  ${api.dynamodbEndpoint}${external ? ` (in front of ${external})` : ` (dynalite, data in .data/dynamodb-${stage})`}, each Lambda held to its role (infra/iam.js)
${demo ? `  Demo user: ${demo.email} / ${demo.password}\n` : ''}${api.ssoDemoBanner ?? ''}
  Try it:
    curl -s -X POST ${base}/auth/login -H 'Content-Type: application/json' \\
      -d '{"email":"${demo?.email ?? 'you@example.com'}","password":"${demo?.password ?? '…'}"}'

  Ctrl-C stops everything.
`);
  stopTogether(api, api.stop);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
