import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The one logger: AWS Lambda Powertools Logger, one JSON line per event, carrying the service,
 * the function name, the request id and the cold-start flag (`injectLambdaContext` in lib/http.ts
 * and the authorizer). The event name is the line's `message`; callers add identifiers only:
 * never a password, a token, a hash or a secret.
 */
type Fields = Record<string, unknown>;

const LEVELS = { info: 'INFO', warn: 'WARN', error: 'ERROR', silent: 'SILENT' } as const;

/** LOG_LEVEL: info (default), warn, error or silent; an unknown value logs everything (INFO). */
function levelFromEnv(): (typeof LEVELS)[keyof typeof LEVELS] {
  const raw = process.env.LOG_LEVEL?.trim().toLowerCase() ?? '';
  return LEVELS[raw as keyof typeof LEVELS] ?? 'INFO';
}

export const logger = new Logger({ serviceName: 'vpn-auth', logLevel: levelFromEnv() });

export const log = {
  info: (event: string, fields: Fields = {}) => logger.info(event, fields),
  warn: (event: string, fields: Fields = {}) => logger.warn(event, fields),
  error: (event: string, fields: Fields = {}) => logger.error(event, fields),
};

/** The parts of an error worth logging; SDK errors carry their request metadata in $metadata. */
export function describeError(error: unknown): Fields {
  if (!(error instanceof Error)) return { error: String(error) };
  const cause = (error as { cause?: unknown }).cause;
  return {
    error: { name: error.name, message: error.message, stack: error.stack },
    ...(cause instanceof Error ? { cause: { name: cause.name, message: cause.message } } : {}),
  };
}
