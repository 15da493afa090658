import { describe, expect, it } from 'vitest';
import { apiBase, newUser } from '../support/client-stack.js';
import { errorShown, openPage, showing, signIn, useChromium } from '../support/browser.js';

describe('the example page in Chromium: signing in and out', () => {
  const chromium = useChromium();

  it('shows the server\'s words for a wrong password, then signs in and lists this session', async () => {
    // Prepare
    const user = await newUser('page-sign-in');
    const context = await chromium.browser.newContext();
    const { page, errors } = await openPage(context);

    // Act
    await signIn(page, { email: user.email, password: 'not-the-password' });
    const refused = await errorShown(page);
    await signIn(page, user);
    await showing(page, 'account');
    const sessions = page.getByTestId('session');
    await sessions.first().waitFor();

    // Assess
    expect(refused).toBe('Invalid email or password.');
    expect(await page.getByTestId('user-email').textContent()).toBe(user.email);
    expect(await page.getByTestId('mfa-status').textContent()).toBe('off');
    expect(await sessions.count()).toBe(1);
    expect(await sessions.first().getAttribute('data-current')).toBe('true');
    expect(await page.getByTestId('error').isHidden()).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('changes the password, lists and ends another session, and signs out', async () => {
    // Prepare: the user is also signed in elsewhere.
    const user = await newUser('page-account');
    const context = await chromium.browser.newContext();
    const { page, errors } = await openPage(context);
    await signIn(page, user);
    await showing(page, 'account');
    const newPassword = `${user.password}-changed`;

    // Act: a new password the policy refuses is refused in the server's words, a good one is taken.
    await page.locator('#current-password').fill(user.password);
    await page.locator('#new-password').fill(user.password);
    await page.getByRole('button', { name: 'Change password' }).click();
    const weak = await errorShown(page);
    await page.locator('#current-password').fill(user.password);
    await page.locator('#new-password').fill(newPassword);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByTestId('notice').filter({ hasText: 'Password changed' }).waitFor();
    // Another session appears (a sign-in from elsewhere) and is ended from the list.
    const elsewhere = await fetch(`${apiBase()}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'another-device' },
      body: JSON.stringify({ email: user.email, password: newPassword }),
    });
    expect(elsewhere.status).toBe(200);
    // The list is read from an eventually consistent index: reloaded until the new session shows.
    const other = page.getByTestId('session').filter({ hasText: 'another-device' });
    for (let tries = 0; (await other.count()) === 0 && tries < 20; tries++) {
      await page.getByRole('button', { name: 'Reload the list' }).click();
      await page.waitForFunction('!document.getElementById("sessions-reload").disabled');
    }
    await other.getByTestId('end-session').click();
    await other.waitFor({ state: 'detached' });
    // Sign out.
    await page.locator('#signout-button').click();
    await showing(page, 'signin');

    // Assess
    expect(weak).toBe('The new password must differ from the current one.');
    expect(await page.getByTestId('notice').textContent()).toBe('You are signed out.');
    expect(await page.evaluate('localStorage.getItem("vpn-enterprise.auth.session")')).toBeNull();
    expect(errors).toEqual([]);
    await context.close();
  });
});
