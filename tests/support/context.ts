import { readFileSync } from 'node:fs';
import { inject } from 'vitest';

/** What the global setups hand to the test files. */
declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
    apiUrl: string;
    /** The environment the running Lambdas were started with. */
    apiEnv: Record<string, string>;
    /** The file the running Lambdas' output (logs, EMF metrics) is appended to as it comes. */
    apiOutputFile: string;
  }
}

export const TEST_BCRYPT_COST = 4;
export const DEMO_USER = { email: 'user@company.com', password: 'secure_password' } as const;

export function dynamoEndpoint(): string {
  return inject('dynamoEndpoint');
}

export function apiUrl(): string {
  return inject('apiUrl');
}

export function apiEnv(): Record<string, string> {
  return inject('apiEnv');
}

/** The metric records (CloudWatch EMF) the running Lambdas have written so far. */
export function emittedMetrics(): Array<Record<string, unknown>> {
  return readFileSync(inject('apiOutputFile'), 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes('"_aws"'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}
