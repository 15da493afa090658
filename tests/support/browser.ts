import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { pageUrl, type TestUser } from './client-stack.js';

/** Debian's chromium (.ci/run installs it with apt): Playwright's own download cannot work here. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** One headless Chromium for a test file (registers its beforeAll and afterAll). */
export function useChromium(): { readonly browser: Browser } {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'], headless: true });
  });
  afterAll(async () => {
    await browser?.close();
  });
  return {
    get browser() {
      if (!browser) throw new Error('Chromium has not started');
      return browser;
    },
  };
}

export type View = 'signin' | 'mfa' | 'enroll' | 'recovery' | 'account';

export interface OpenedPage {
  page: Page;
  /** Errors thrown in the page: a test expects none. */
  errors: string[];
  /** The API requests the page made, as `METHOD /path STATUS`. */
  requests: string[];
}

/** The example page in a tab of `context`, pointed at this stack; `settings` go to its query string. */
export async function openPage(context: BrowserContext, settings: Record<string, string> = {}): Promise<OpenedPage> {
  const page = await context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('response', (response) => {
    const url = new URL(response.url());
    if (url.pathname.startsWith('/v1/') && response.request().method() !== 'OPTIONS') requests.push(`${response.request().method()} ${url.pathname} ${response.status()}`);
  });
  await page.goto(pageUrl(settings));
  return { page, errors, requests };
}

/** Wait until `view` is the one shown. */
export async function showing(page: Page, view: View, timeout = 15_000): Promise<void> {
  await page.locator(`#${view}-view`).waitFor({ state: 'visible', timeout });
}

export async function signIn(page: Page, user: Pick<TestUser, 'email' | 'password'>): Promise<void> {
  await showing(page, 'signin');
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** The error box's text once shown. */
export async function errorShown(page: Page): Promise<string> {
  const box = page.getByTestId('error');
  await box.waitFor({ state: 'visible' });
  return (await box.textContent()) ?? '';
}
