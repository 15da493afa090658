import { vi } from 'vitest';

/**
 * The JSON lines the service's logger writes from now on, kept off the test output (Powertools
 * writes to stdout and stderr through a Console of its own, so console spies would not see them).
 * `vi.restoreAllMocks()` stops the capture.
 */
export function captureLog(): () => Array<Record<string, unknown>> {
  const lines: string[] = [];
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(...String(chunk).split('\n').filter((line) => line.startsWith('{')));
      return true;
    });
  }
  // Metrics (CloudWatch EMF records) are JSON lines too; they carry `_aws`.
  return () => lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => !('_aws' in line));
}
