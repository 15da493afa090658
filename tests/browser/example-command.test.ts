import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DATA_DIR, PROJECT_ROOT, freePort } from '../../scripts/local-stack.js';
import { TEST_BCRYPT_COST } from '../support/context.js';
import { showing, signIn, useChromium } from '../support/browser.js';

/** A stage of its own, so that its data (.data/dynamodb-<stage>) and .env file meet no one else's. */
const STAGE = `example${process.pid}`;

describe('npm run example', () => {
  const chromium = useChromium();
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child?.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    rmSync(join(DATA_DIR, `dynamodb-${STAGE}`), { recursive: true, force: true });
    rmSync(join(PROJECT_ROOT, `.esbuild-${STAGE}`), { recursive: true, force: true });
  });

  it('serves the page beside the local API, which allows that origin alone, and stops both on Ctrl-C', async () => {
    // Prepare
    const [port, dynamoPort, examplePort, idpPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    child = spawn(process.execPath, [join(PROJECT_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'scripts/example.ts'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, STAGE, PORT: String(port), DYNAMODB_PORT: String(dynamoPort), EXAMPLE_PORT: String(examplePort), SSO_DEMO_PORT: String(idpPort), BCRYPT_COST: String(TEST_BCRYPT_COST), ESBUILD_WORK_FOLDER: `.esbuild-${STAGE}` },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((done) => child!.once('exit', (code) => done(code)));
    const origin = `http://127.0.0.1:${examplePort}`;
    for (const started = Date.now(); !output.includes('Ctrl-C stops both'); ) {
      if (Date.now() - started > 90_000 || child.exitCode !== null) throw new Error(`npm run example did not start:\n${output}`);
      await new Promise((done) => setTimeout(done, 200));
    }

    // Act
    const html = await (await fetch(`${origin}/`)).text();
    const preflight = (from: string) =>
      fetch(`http://127.0.0.1:${port}/v1/auth/login`, { method: 'OPTIONS', headers: { origin: from, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    const [ours, theirs] = await Promise.all([preflight(origin), preflight('http://localhost:5173')]);
    const context = await chromium.browser.newContext();
    // The page as served, with no `?api=`: it calls the API its <meta> names.
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    await signIn(page, { email: 'user@company.com', password: 'secure_password' });
    await showing(page, 'account', 30_000);
    const email = await page.getByTestId('user-email').textContent();
    await context.close();
    process.kill(-child.pid!, 'SIGINT');
    const code = await exited;

    // Assess
    expect(output).toContain(`The example page is at ${origin}/`);
    expect(output).toContain(`It calls the local API at http://127.0.0.1:${port}/v1 (CORS_ORIGINS=${origin})`);
    expect(html).toContain(`<meta name="auth-api" content="http://127.0.0.1:${port}/v1">`);
    expect(ours.headers.get('access-control-allow-origin')).toBe(origin);
    expect(theirs.headers.get('access-control-allow-origin')).toBeNull();
    expect(email).toBe('user@company.com');
    expect(code).toBe(0);
    await expect(fetch(`${origin}/`)).rejects.toThrow();
    await expect(fetch(`http://127.0.0.1:${port}/v1/auth/me`)).rejects.toThrow();
  });
});
