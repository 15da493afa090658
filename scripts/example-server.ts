/**
 * The example page (examples/web/) bundled with esbuild and served on its own origin: what
 * `npm run example` and the browser tests (tests/support/client-stack-setup.ts) serve.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { build } from 'esbuild';
import { PROJECT_ROOT } from './local-stack.js';

export const EXAMPLE_DIR = join(PROJECT_ROOT, 'examples', 'web');

/** main.ts and what it imports, for browsers: the client's `browser` entry, qrcode's browser build. */
export async function bundleExample(): Promise<{ script: string; sourceMap: string }> {
  const result = await build({
    entryPoints: [join(EXAMPLE_DIR, 'main.ts')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    sourcemap: 'external',
    outfile: join(EXAMPLE_DIR, 'main.js'),
    write: false,
    logLevel: 'silent',
  });
  const file = (suffix: string) => result.outputFiles.find((output) => output.path.endsWith(suffix))!.text;
  return { script: file('main.js'), sourceMap: file('main.js.map') };
}

export interface ExampleServer {
  /** `http://127.0.0.1:5173`: what CORS_ORIGINS must list. */
  origin: string;
  close(): Promise<void>;
}

/**
 * Serve the page on `host:port` (0: a free port), its <meta name="auth-api"> set to `apiBase` when
 * given (else the page's default, `?api=` overriding either). Bundled once, here: a change to
 * main.ts needs a restart.
 */
export async function serveExample(options: { host: string; port: number; apiBase?: string }): Promise<ExampleServer> {
  const [{ script, sourceMap }, template] = await Promise.all([bundleExample(), readFile(join(EXAMPLE_DIR, 'index.html'), 'utf8')]);
  const escaped = options.apiBase?.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  const html = escaped === undefined ? template : template.replace(/(<meta name="auth-api" content=")[^"]*(")/, `$1${escaped}$2`);
  const files: Record<string, [string, string]> = {
    '/': ['text/html; charset=utf-8', html],
    '/index.html': ['text/html; charset=utf-8', html],
    '/main.js': ['text/javascript; charset=utf-8', script],
    '/main.js.map': ['application/json', sourceMap],
  };
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://page').pathname;
    const file = request.method === 'GET' || request.method === 'HEAD' ? files[path] : undefined;
    if (!file) {
      response.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found\n');
      return;
    }
    response.writeHead(200, { 'Content-Type': file[0], 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    response.end(request.method === 'HEAD' ? undefined : file[1]);
  });
  await new Promise<void>((listening, fail) => {
    server.once('error', fail);
    server.listen(options.port, options.host, () => listening());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://${options.host}:${port}`,
    close: () => new Promise<void>((closed) => server.close(() => closed())),
  };
}
