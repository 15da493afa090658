/**
 * `npm run example`: the local API as `npm start` runs it (scripts/local-api.ts), with CORS_ORIGINS
 * set to the example page's origin, and the page (examples/web/) served there. Ctrl-C stops both.
 */
import { portFrom, startLocalApi, stopTogether } from './local-api.js';
import { serveExample } from './example-server.js';

const COMMAND = 'npm run example';
const HOST = '127.0.0.1';

async function main(): Promise<void> {
  const pagePort = portFrom(COMMAND, process.env, 'EXAMPLE_PORT', 5173);
  const origin = `http://${HOST}:${pagePort}`;
  // The page's origin is known before anything starts: the API is started allowing it alone, and
  // the page's URL as a place an SSO sign-in may end ("Sign in with your company").
  const ssoRedirectUris = [process.env.SSO_REDIRECT_URIS?.trim(), `${origin}/`].filter(Boolean).join(',');
  const api = await startLocalApi({ command: COMMAND, env: { ...process.env, CORS_ORIGINS: origin, SSO_REDIRECT_URIS: ssoRedirectUris } });
  const apiBase = `${api.offline.url}/v1`;
  let page;
  try {
    page = await serveExample({ host: HOST, port: pagePort, apiBase });
  } catch (error) {
    await api.stop();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      console.error(`${COMMAND}: port ${pagePort} is taken: set EXAMPLE_PORT to a free port`);
      process.exit(1);
    }
    throw error;
  }
  console.log(`
  The example page is at ${page.origin}/
  It calls the local API at ${apiBase} (CORS_ORIGINS=${origin})
${api.demo ? `  Demo user: ${api.demo.email} / ${api.demo.password}\n` : ''}
  Ctrl-C stops both.
`);
  stopTogether(api, async () => {
    await page.close();
    await api.stop();
  }, 'the page, serverless-offline and dynalite');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
