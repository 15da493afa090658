/**
 * One JSON line per event on stdout/stderr, which CloudWatch keeps as structured fields.
 * Callers pass identifiers only: never a password, a token, a hash or a secret.
 */
type Fields = Record<string, unknown>;
type Level = 'info' | 'warn' | 'error';

const RANK: Record<Level | 'silent', number> = { info: 0, warn: 1, error: 2, silent: 3 };
/** LOG_LEVEL: info (default), warn, error or silent; an unknown value logs everything. */
const threshold = RANK[(process.env.LOG_LEVEL?.trim().toLowerCase() ?? 'info') as Level] ?? 0;

function write(level: Level, event: string, fields: Fields): void {
  if (RANK[level] < threshold) return;
  const line = JSON.stringify({ level, event, time: new Date().toISOString(), ...fields });
  if (level === 'error') console.error(line);
  else console.log(line);
}

export const log = {
  info: (event: string, fields: Fields = {}) => write('info', event, fields),
  warn: (event: string, fields: Fields = {}) => write('warn', event, fields),
  error: (event: string, fields: Fields = {}) => write('error', event, fields),
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
