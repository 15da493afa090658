import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../scripts/local-stack.js';

/**
 * Every password and token the e2e tests send or receive is noted here, so that the end of the
 * run can prove none of them reached a log line.
 */
const DIR = join(PROJECT_ROOT, '.test-output', 'secrets');

export function resetSecrets(): void {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
}

export function recordSecret(...values: unknown[]): void {
  const strings = values.filter((value): value is string => typeof value === 'string' && value.length >= 6);
  if (strings.length === 0 || !existsSync(DIR)) return;
  appendFileSync(join(DIR, `${process.pid}.txt`), strings.map((value) => JSON.stringify(value)).join('\n') + '\n');
}

function recordedSecrets(): Set<string> {
  const secrets = new Set<string>();
  if (!existsSync(DIR)) return secrets;
  for (const file of readdirSync(DIR)) {
    for (const line of readFileSync(join(DIR, file), 'utf8').split('\n')) if (line) secrets.add(JSON.parse(line) as string);
  }
  return secrets;
}

/** Lines of `log` that carry a recorded secret, the signing key, or anything shaped like a token or hash. */
export function leakedLines(log: string, alsoSecret: string[]): string[] {
  const secrets = [...recordedSecrets(), ...alsoSecret];
  const shapes = [/eyJ[A-Za-z0-9_-]{10,}\.eyJ/, /\b(rt|mt|dt)_[A-Za-z0-9_-]{40,}/, /\$2[aby]\$\d\d\$/, /otpauth:\/\//];
  return log.split('\n').filter((line) => shapes.some((shape) => shape.test(line)) || secrets.some((secret) => line.includes(secret)));
}
