import { inject } from 'vitest';

/** What the global setups hand to the test files. */
declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
    apiUrl: string;
    /** The environment the running Lambdas were started with. */
    apiEnv: Record<string, string>;
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
