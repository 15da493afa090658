import { afterAll, describe, expect, it } from 'vitest';
import { definedAccess, type Access } from '../../scripts/local-iam/policy.js';
import { startIamProxy } from '../../scripts/local-iam/proxy.js';
import { dynamoEndpoint } from '../support/context.js';
import { call, e2eApp } from '../support/http.js';
import { stageApi } from '../support/stage-api.js';
import { createUser } from '../support/store.js';

/** infra/iam.js's roles with one grant taken away, as a slip in editing it would. */
function without(access: Access, fn: string, resource: string, action: string): Access {
  return { ...access, [fn]: { ...access[fn], [resource]: access[fn]![resource]!.filter((granted) => granted !== action) } };
}

// A check of its own in front of the run's, whose roles lack one grant: the run's own check (which
// fails the run on any denial) never sees the refused call.
const narrowed = await startIamProxy({ target: dynamoEndpoint(), access: () => without(definedAccess(), 'me', 'SessionsTable', 'dynamodb:BatchGetItem') });
afterAll(() => narrowed.close());

describe('each Lambda held to its role (infra/iam.js) by the local stack, as IAM holds it in AWS', () => {
  const api = stageApi('iam', { DYNAMODB_ENDPOINT: narrowed.endpoint });

  it('answers 500 internal_error, as in AWS, when a grant the path needs is missing; the check records the denial, the Lambda logs it', async () => {
    // Prepare: a user signed in (login's role is whole)
    const user = await createUser(api.app());
    const signIn = await fetch(`${api.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: user.email, password: user.password }) });
    expect(signIn.status).toBe(200);
    const { token } = (await signIn.json()) as { token: string };
    const denialsBefore = narrowed.denials.length;

    // Act: /auth/me reads the session and the user in one BatchGetItem
    const me = await fetch(`${api.url}/v1/auth/me`, { headers: { authorization: `Bearer ${token}` } });

    // Assess: a 500, not a 503 (the SDK did not retry it: one denial, and the store is not "unavailable")
    expect(me.status).toBe(500);
    expect(await me.json()).toEqual({ success: false, error: { code: 'internal_error', message: expect.any(String) } });
    expect(narrowed.denials.slice(denialsBefore)).toEqual([
      {
        functionName: 'vpn-auth-iam-me',
        fn: 'me',
        action: 'dynamodb:BatchGetItem',
        resource: 'SessionsTable',
        message:
          'User: arn:aws:sts::000000000000:assumed-role/vpn-auth-iam-MeRole/vpn-auth-iam-me is not authorized to perform: dynamodb:BatchGetItem ' +
          'on resource: arn:aws:dynamodb:us-east-1:000000000000:table/vpn-auth-iam-sessions because no identity-based policy allows the dynamodb:BatchGetItem action',
      },
    ]);
    expect(api.output()).toMatch(/"message":"unhandled_error".*AccessDeniedException/);
  });

  it('serves the same request under the whole role', async () => {
    // Prepare
    const user = await createUser(e2eApp());
    const { body } = await call('POST', '/login', { body: { email: user.email, password: user.password } });

    // Act: the run's own API, whose check holds its Lambdas to infra/iam.js as it is
    const me = await call('GET', '/me', { token: body.token });

    // Assess
    expect(me.status).toBe(200);
  });
});
