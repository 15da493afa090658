import { describe, expect, it } from 'vitest';
import { createAuthClient } from '@vpn-enterprise/auth-client';
import { ACCESS_TOKEN_TTL_SECONDS, apiBase, newUser, sleep } from '../support/client-stack.js';
import { errorShown, openPage, showing, signIn, useChromium } from '../support/browser.js';

/** Checks that the session stands only when a test wants them (the default is every 5 s). */
const RARELY = { poll: '600000' };

describe('the example page in Chromium: a session over time and across tabs and devices', () => {
  const chromium = useChromium();

  it('survives an access token\'s expiry without the user noticing', async () => {
    // Prepare: a client that refreshes only once the token has expired (margin 0).
    const user = await newUser('page-expiry');
    const context = await chromium.browser.newContext();
    const { page, errors, requests } = await openPage(context, { ...RARELY, margin: '0' });
    await signIn(page, user);
    await showing(page, 'account');
    await page.getByTestId('session').first().waitFor();
    await sleep((ACCESS_TOKEN_TTL_SECONDS + 1) * 1000);
    requests.length = 0;

    // Act
    await page.getByRole('button', { name: 'Reload the list' }).click();
    await page.waitForFunction('!document.getElementById("sessions-reload").disabled');

    // Assess
    expect(await page.getByTestId('error').isHidden()).toBe(true);
    expect(await page.getByTestId('session').count()).toBe(1);
    expect(requests).toEqual(['POST /v1/auth/refresh 200', 'GET /v1/auth/sessions 200']);
    expect(await page.locator('#account-view').isVisible()).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('keeps a second tab in step: it follows a sign-in and a sign-out made in the first, without asking the API', async () => {
    // Prepare: two tabs of one browser (one localStorage, one BroadcastChannel).
    const user = await newUser('page-tabs');
    const context = await chromium.browser.newContext();
    const first = await openPage(context, RARELY);
    const second = await openPage(context, RARELY);
    await showing(second.page, 'signin');

    // Act
    await signIn(first.page, user);
    await showing(second.page, 'account', 5_000);
    const followedIn = await second.page.getByTestId('user-email').textContent();
    second.requests.length = 0;
    await first.page.locator('#signout-button').click();
    await showing(second.page, 'signin', 5_000);

    // Assess
    expect(followedIn).toBe(user.email);
    // Its only requests are the account view's reads after the sign-in (they may land late): the
    // sign-out came through the channel, not from a refused request or one of its own.
    expect(second.requests.filter((request) => !/^GET \/v1\/auth\/(me|sessions) 200$/.test(request))).toEqual([]);
    expect(await second.page.getByTestId('notice').textContent()).toBe('You are signed out.');
    expect([...first.errors, ...second.errors]).toEqual([]);
    await context.close();
  });

  it('returns to sign-in when the session is ended from another device', async () => {
    // Prepare: the page checks every second; another device signs in as the same user.
    const user = await newUser('page-ended');
    const context = await chromium.browser.newContext();
    const { page, errors } = await openPage(context, { poll: '1000' });
    await signIn(page, user);
    await showing(page, 'account');
    const device = createAuthClient({ baseUrl: apiBase() });
    device.close();
    expect((await device.signIn(user)).status).toBe('signed_in');
    // The list is read from an eventually consistent index: asked again until the page's session shows.
    let theirs;
    for (let tries = 0; !theirs && tries < 20; tries++) {
      if (tries > 0) await sleep(250);
      theirs = (await device.sessions.list()).find((session) => !session.current);
    }

    // Act
    await device.sessions.end(theirs!.id);
    await showing(page, 'signin', 10_000);

    // Assess
    expect(await page.getByTestId('notice').textContent()).toBe('Your session has ended. Please sign in again.');
    // No token is left in storage (the client may leave a note that the session ended, for other tabs).
    expect(String(await page.evaluate('localStorage.getItem("vpn-enterprise.auth.session")'))).not.toMatch(/"(access_token|refresh_token)"|eyJ|rt_[A-Za-z0-9_-]{20}/);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('returns to sign-in on focus after a sign-out everywhere from another device', async () => {
    // Prepare: no periodic check in time: the page asks when it gets the focus.
    const user = await newUser('page-global');
    const context = await chromium.browser.newContext();
    const { page, errors } = await openPage(context, RARELY);
    await signIn(page, user);
    await showing(page, 'account');
    const device = createAuthClient({ baseUrl: apiBase() });
    device.close();
    expect((await device.signIn(user)).status).toBe('signed_in');

    // Act
    await device.signOut({ scope: 'global' });
    await page.evaluate('window.dispatchEvent(new Event("focus"))');
    await showing(page, 'signin', 10_000);

    // Assess
    expect(await page.getByTestId('notice').textContent()).toBe('Your session has ended. Please sign in again.');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('shows a locked sign-in\'s wait, as the server words the refusal', async () => {
    // Prepare: LOGIN_MAX_FAILURES (5) wrong passwords from this address lock the pair.
    const user = await newUser('page-locked');
    const context = await chromium.browser.newContext();
    const { page, errors } = await openPage(context, RARELY);
    for (let attempt = 1; attempt <= 5; attempt++) {
      await signIn(page, { email: user.email, password: `wrong-${attempt}` });
      await page.getByTestId('error').filter({ hasText: 'Invalid email or password.' }).waitFor();
      await page.waitForFunction('!document.getElementById("signin-submit").disabled');
    }

    // Act
    await signIn(page, user);
    await page.getByTestId('error').filter({ hasText: 'Too many' }).waitFor();
    const refused = await errorShown(page);

    // Assess
    expect(refused).toMatch(/^Too many failed sign-in attempts\. Try again later\. \(Wait \d+ (seconds|minutes)\.\)$/);
    expect(await page.getByTestId('error').getAttribute('data-code')).toBe('too_many_attempts');
    expect(errors).toEqual([]);
    await context.close();
  });
});
