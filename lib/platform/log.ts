import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The one logger: AWS Lambda Powertools Logger, one JSON line per event, carrying the service,
 * the function name, the request id and the cold-start flag (`injectLambdaContext` in lib/http/http.ts
 * and the authorizer). The event name is the line's `message`; callers add identifiers only:
 * never a password, a token, a hash or a secret.
 */
type Fields = Record<string, unknown>;

const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'] as const;
type Level = (typeof LEVELS)[number];

/**
 * POWERTOOLS_LOG_LEVEL (Powertools' own variable; the template sets it from the stage's `logLevel`
 * param), or LOG_LEVEL as an alias: TRACE, DEBUG, INFO (default), WARN, ERROR, CRITICAL or SILENT,
 * any case. An unknown value logs everything from INFO up. (Lambda's AWS_LAMBDA_LOG_LEVEL, when set,
 * is applied by Powertools itself.)
 */
export function logLevelFrom(env: Record<string, string | undefined>): Level {
  const raw = (env.POWERTOOLS_LOG_LEVEL?.trim() || env.LOG_LEVEL?.trim() || 'INFO').toUpperCase();
  return (LEVELS as readonly string[]).includes(raw) ? (raw as Level) : 'INFO';
}

/** The service every line names: POWERTOOLS_SERVICE_NAME (the template sets it from the service name). */
export const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME?.trim() || 'vpn-auth';

export const logger = new Logger({ serviceName: SERVICE_NAME, logLevel: logLevelFrom(process.env) });

export const log = {
  debug: (event: string, fields: Fields = {}) => logger.debug(event, fields),
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
