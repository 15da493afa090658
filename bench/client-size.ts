/**
 * The auth client's size in a browser: client/src/browser.ts bundled by esbuild for the browser,
 * minified, then gzipped (what a page downloads). Issue 20's target: <= 8 KiB.
 * `npm run bench` prints it with the rest; `tsx bench/client-size.ts` prints it alone.
 */
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { build } from 'esbuild';
import { PROJECT_ROOT } from '../scripts/local-stack.js';

export const CLIENT_GZIP_TARGET_BYTES = 8 * 1024;

export async function clientBundleSize(): Promise<{ minified: number; gzipped: number }> {
  const result = await build({
    entryPoints: [join(PROJECT_ROOT, 'client', 'src', 'browser.ts')],
    bundle: true,
    minify: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    logLevel: 'error',
  });
  const code = result.outputFiles[0]!.contents;
  return { minified: code.byteLength, gzipped: gzipSync(code, { level: 9 }).byteLength };
}

if (process.argv[1]?.endsWith('client-size.ts')) {
  void clientBundleSize().then(({ minified, gzipped }) =>
    console.log(
      `auth client, browser bundle: ${(minified / 1024).toFixed(1)} KiB minified, ${(gzipped / 1024).toFixed(1)} KiB minified + gzip (target <= ${CLIENT_GZIP_TARGET_BYTES / 1024} KiB)`,
    ),
  );
}
