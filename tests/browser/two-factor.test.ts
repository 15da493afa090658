import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { Authenticator } from '../support/authenticator.js';
import { newUser } from '../support/client-stack.js';
import { errorShown, openPage, showing, signIn, useChromium } from '../support/browser.js';

/** The enrolment view's QR code: a PNG that has loaded, and the secret shown beside it. */
async function enrolment(page: Page): Promise<{ secret: string; qr: { src: string; width: number } }> {
  await showing(page, 'enroll');
  const image = page.getByTestId('enroll-qr');
  await page.waitForFunction('document.getElementById("enroll-qr").complete && document.getElementById("enroll-qr").naturalWidth > 0');
  const qr = { src: (await image.getAttribute('src')) ?? '', width: Number(await page.evaluate('document.getElementById("enroll-qr").naturalWidth')) };
  return { secret: ((await page.getByTestId('enroll-secret').textContent()) ?? '').trim(), qr };
}

async function recoveryCodes(page: Page): Promise<string[]> {
  await showing(page, 'recovery');
  return page.getByTestId('recovery-codes').locator('li').allTextContents();
}

describe('the example page in Chromium: two-factor authentication', () => {
  const chromium = useChromium();

  it('turns on TOTP from the account (QR code, secret, recovery codes once), then signs in again with a code', async () => {
    // Prepare
    const user = await newUser('page-totp');
    const context = await chromium.browser.newContext();
    const { page, errors } = await openPage(context);
    await signIn(page, user);
    await showing(page, 'account');

    // Act: turn it on, with the current password, then a code computed from the secret on the page.
    await page.locator('#enable-mfa-password').fill(user.password);
    await page.locator('#enable-mfa-submit').click();
    const { secret, qr } = await enrolment(page);
    const app = new Authenticator(secret);
    await page.locator('#enroll-code').fill(app.wrong());
    await page.locator('#enroll-submit').click();
    const wrongCode = await errorShown(page);
    await page.locator('#enroll-code').fill(await app.next());
    await page.locator('#enroll-submit').click();
    const codes = await recoveryCodes(page);
    await page.getByRole('button', { name: 'I have saved them' }).click();
    await showing(page, 'account');
    // The page asks the server for the user again: TOTP is on now.
    await page.getByTestId('mfa-status').filter({ hasText: /^on$/ }).waitFor({ timeout: 5_000 });
    const status = await page.getByTestId('mfa-status').textContent();
    // Sign out and in again: the second step, with a code.
    await page.locator('#signout-button').click();
    await signIn(page, user);
    await showing(page, 'mfa');
    await page.locator('#mfa-code').fill(await app.next());
    await page.getByRole('button', { name: 'Verify' }).click();
    await showing(page, 'account');

    // Assess
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(qr.src).toMatch(/^data:image\/png;base64,/);
    expect(qr.width).toBeGreaterThan(50);
    expect(wrongCode.length).toBeGreaterThan(0);
    expect(codes).toHaveLength(10);
    for (const code of codes) expect(code).toMatch(/^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$/);
    expect(status).toBe('on');
    expect(await page.getByTestId('user-email').textContent()).toBe(user.email);
    expect(await page.getByTestId('recovery-codes').locator('li').count()).toBe(0);
    expect(errors).toEqual([]);

    // And with a recovery code instead.
    await page.locator('#signout-button').click();
    await signIn(page, user);
    await showing(page, 'mfa');
    await page.getByLabel('Or a recovery code').fill(codes[0]!);
    await page.getByRole('button', { name: 'Verify' }).click();
    await showing(page, 'account');
    await context.close();
  });

  it('enrols at sign-in when the role requires it: the QR code shown, then the recovery codes, then signed in', async () => {
    // Prepare: admins must sign in with TOTP on this stack (MFA_REQUIRED_ROLES=admin).
    const admin = await newUser('page-enrol', 'admin');
    const context = await chromium.browser.newContext();
    const { page, errors } = await openPage(context);

    // Act
    await signIn(page, admin);
    const { secret, qr } = await enrolment(page);
    const reason = await page.locator('#enroll-reason').textContent();
    await page.locator('#enroll-code').fill(await new Authenticator(secret).next());
    await page.locator('#enroll-submit').click();
    const codes = await recoveryCodes(page);
    await page.getByRole('button', { name: 'I have saved them' }).click();
    await showing(page, 'account');

    // Assess
    expect(qr.src).toMatch(/^data:image\/png;base64,/);
    expect(qr.width).toBeGreaterThan(50);
    expect(reason).toBe('Your account needs two-factor authentication before you can sign in.');
    expect(codes).toHaveLength(10);
    expect(await page.getByTestId('user-email').textContent()).toBe(admin.email);
    await page.getByTestId('mfa-status').filter({ hasText: /^on$/ }).waitFor({ timeout: 5_000 });
    expect(errors).toEqual([]);
    await context.close();
  });
});
