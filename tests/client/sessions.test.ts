import { describe, expect, it } from 'vitest';
import { AuthError, createAuthClient, type AuthEvent } from '@vpn-enterprise/auth-client';
import { Authenticator } from '../support/authenticator.js';
import { apiBase, newUser } from '../support/client-stack.js';

describe('the client against the local stack', () => {
  it('signs in with a second factor: real TOTP codes, then a recovery code', async () => {
    // Prepare
    const user = await newUser('mfa');
    const auth = createAuthClient({ baseUrl: apiBase() });
    try {
      expect((await auth.signIn(user)).status).toBe('signed_in');
      const { secret, otpauthUrl } = await auth.mfa.setup({ currentPassword: user.password });
      expect(otpauthUrl).toContain(`secret=${secret}`);
      const app = new Authenticator(secret);
      const { recoveryCodes } = await auth.mfa.activate(await app.next());
      expect(recoveryCodes).toHaveLength(10);
      await auth.signOut();

      // Act
      const challenged = await auth.signIn(user);
      if (challenged.status !== 'mfa_required') throw new Error(`expected mfa_required, got ${challenged.status}`);
      const wrong = await challenged.verify({ code: app.wrong() }).catch((error: unknown) => error);
      const signedIn = await challenged.verify({ code: await app.next() });
      const me = await auth.me();
      await auth.signOut();
      const recovering = await auth.signIn(user);
      if (recovering.status !== 'mfa_required') throw new Error(`expected mfa_required, got ${recovering.status}`);
      const recovered = await recovering.verify({ recoveryCode: recoveryCodes[0]! });

      // Assess
      expect(wrong).toBeInstanceOf(AuthError);
      expect(wrong).toMatchObject({ status: 401, code: 'invalid_mfa_code' });
      expect(signedIn).toMatchObject({ status: 'signed_in', user: { email: user.email, mfa_enabled: true } });
      expect(me.mfa_enabled).toBe(true);
      expect(recovered.status).toBe('signed_in');
      expect(auth.session?.user.email).toBe(user.email);
    } finally {
      auth.close();
    }
  });

  it('enrols at sign-in when the role requires a second factor', async () => {
    // Prepare
    const admin = await newUser('enrol', 'admin');
    const auth = createAuthClient({ baseUrl: apiBase() });
    try {
      // Act
      const result = await auth.signIn(admin);
      if (result.status !== 'mfa_enrollment_required') throw new Error(`expected mfa_enrollment_required, got ${result.status}`);
      const { secret } = await result.setup();
      const activated = await result.activate(await new Authenticator(secret).next());

      // Assess
      expect(activated).toMatchObject({ status: 'signed_in', user: { email: admin.email } });
      expect(activated.recoveryCodes).toHaveLength(10);
      expect((await auth.me()).mfa_enabled).toBe(true);
    } finally {
      auth.close();
    }
  });

  it('ends this client with session_ended when another signs out everywhere', async () => {
    // Prepare: another device (it hears nothing from this one: no channel between devices).
    const user = await newUser('global-sign-out');
    const here = createAuthClient({ baseUrl: apiBase() });
    const elsewhere = createAuthClient({ baseUrl: apiBase() });
    here.close();
    elsewhere.close();
    expect((await here.signIn(user)).status).toBe('signed_in');
    expect((await elsewhere.signIn(user)).status).toBe('signed_in');
    const events: AuthEvent[] = [];
    here.onChange((event) => events.push(event));

    // Act
    await elsewhere.signOut({ scope: 'global' });
    const [first, second] = await Promise.all([here.me().catch((error: unknown) => error), here.me().catch((error: unknown) => error)]);
    const after = await here.me().catch((error: unknown) => error);

    // Assess
    expect(events).toEqual(['session_ended']);
    expect(here.session).toBeNull();
    for (const error of [first, second]) {
      expect(error).toBeInstanceOf(AuthError);
      expect(['invalid_token', 'invalid_refresh_token', 'refresh_token_reused']).toContain((error as AuthError).code);
    }
    expect(after).toMatchObject({ code: 'not_signed_in' });
  });
});
