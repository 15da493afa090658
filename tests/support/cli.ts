import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';
import { PROJECT_ROOT } from '../../scripts/local-stack.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** An operator script (`npm run users|keys -- …`) run as operators run it: tsx, a fresh process. */
export function runScript(script: string, args: string[], options: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<CliResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), script, ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

/**
 * The audit line a CLI wrote to stderr for `event`, checked to have the Lambdas' log shape
 * (Powertools: level, message = the event, timestamp, service), so one log query finds both.
 */
export function auditLine(stderr: string, event: string): Record<string, unknown> {
  const lines = stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
  const line = lines.find((candidate) => candidate.message === event);
  if (!line) throw new Error(`no audit line "${event}" in:\n${stderr}`);
  expect(line).toMatchObject({ level: 'INFO', message: event, timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), service: 'vpn-auth' });
  return line;
}
