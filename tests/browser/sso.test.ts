import { randomBytes } from 'node:crypto';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Authenticator } from '../support/authenticator.js';
import { errorShown, openPage, showing, useChromium } from '../support/browser.js';

/**
 * "Sign in with your company" in Chromium, through the stack's demo corporate IdP for @sso.example
 * (oidc-provider's development login form: any name signs in) and back to the page.
 */
const newEmail = (label: string) => `${label}-${randomBytes(6).toString('hex')}@sso.example`;

/** From the sign-in view to the IdP's login form. */
async function leaveForIdp(page: Page, email: string): Promise<void> {
  await showing(page, 'signin');
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Sign in with your company' }).click();
  await page.locator('input[name="login"]').waitFor();
}

/** The IdP's development login (any name, any password), and its consent the first time; back on the page. */
async function signInAtIdp(page: Page, email: string): Promise<void> {
  await page.locator('input[name="login"]').fill(email);
  await page.locator('input[name="password"]').fill('any');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  const consent = page.getByRole('button', { name: 'Continue' });
  const back = page.locator('#account-view, #mfa-view, #enroll-view, #error');
  await consent.or(back).first().waitFor({ state: 'visible' });
  if (await consent.isVisible()) await consent.click();
}

/** The page's URL holds its settings again, and nothing of the IdP's answer. */
function cleaned(page: Page): void {
  const url = new URL(page.url());
  expect(url.origin + url.pathname).toBe(inject('clientStack').pageUrl);
  expect([...url.searchParams.keys()]).toEqual(['api']);
}

describe('the example page in Chromium: "Sign in with your company"', () => {
  const chromium = useChromium();

  it('goes to the IdP, signs in there, and lands back signed in as the new account, its session federated', async () => {
    // Prepare
    const email = newEmail('page-sso');
    const context = await chromium.browser.newContext();
    const { page, errors, requests } = await openPage(context);

    // Act
    await leaveForIdp(page, email);
    const atIdp = new URL(page.url()).origin;
    await signInAtIdp(page, email);
    await showing(page, 'account');
    const current = page.locator('[data-testid="session"][data-current="true"]');
    await current.waitFor();

    // Assess
    expect(atIdp).not.toBe(new URL(inject('clientStack').pageUrl).origin);
    expect(await page.getByTestId('user-email').textContent()).toBe(email);
    expect(await page.locator('#user-role').textContent()).toBe('user');
    expect(await current.getAttribute('data-amr')).toBe('fed');
    expect(await current.textContent()).toContain('with your company');
    expect(requests).toContain('POST /v1/auth/sso/token 200');
    cleaned(page);
    expect(await page.getByTestId('error').isHidden()).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  });

  it("goes on to our second factor when the account owes one: an admin by the IdP's group enrols at sign-in", async () => {
    // Prepare: the demo IdP puts names starting with "admin" in vpn-admins, which the connection maps to admin;
    // the stack requires TOTP of admins (MFA_REQUIRED_ROLES).
    const email = newEmail('admin-page-sso');
    const context = await chromium.browser.newContext();
    const { page, errors } = await openPage(context);

    // Act
    await leaveForIdp(page, email);
    await signInAtIdp(page, email);
    await showing(page, 'enroll');
    const secret = ((await page.getByTestId('enroll-secret').textContent()) ?? '').trim();
    await page.locator('#enroll-code').fill(await new Authenticator(secret).next());
    await page.locator('#enroll-submit').click();
    await showing(page, 'recovery');
    await page.getByRole('button', { name: 'I have saved them' }).click();
    await showing(page, 'account');
    const current = page.locator('[data-testid="session"][data-current="true"]');
    await current.waitFor();

    // Assess
    expect(await page.getByTestId('user-email').textContent()).toBe(email);
    expect(await page.locator('#user-role').textContent()).toBe('admin');
    expect(await current.getAttribute('data-amr')).toBe('fed otp');
    cleaned(page);
    expect(errors).toEqual([]);
    await context.close();
  });

  it("shows the server's words when the login is cancelled at the IdP, and signs no one in", async () => {
    // Prepare
    const context = await chromium.browser.newContext();
    const { page, errors, requests } = await openPage(context);
    await leaveForIdp(page, newEmail('page-sso-cancel'));

    // Act
    await page.getByRole('link', { name: '[ Cancel ]' }).click();
    const shown = await errorShown(page);

    // Assess
    expect(shown).toBe('The identity provider did not sign you in.');
    expect(await page.getByTestId('error').getAttribute('data-code')).toBe('access_denied');
    await showing(page, 'signin');
    cleaned(page);
    expect(requests.filter((line) => line.startsWith('POST'))).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('asks for the email first, and goes nowhere without one', async () => {
    // Prepare
    const context = await chromium.browser.newContext();
    const { page, errors } = await openPage(context);
    await showing(page, 'signin');

    // Act
    await page.getByRole('button', { name: 'Sign in with your company' }).click();
    const shown = await errorShown(page);

    // Assess
    expect(shown).toBe('Enter your work email first: its domain finds your company.');
    cleaned(page);
    expect(errors).toEqual([]);
    await context.close();
  });
});
