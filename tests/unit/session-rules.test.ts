import { describe, expect, it } from 'vitest';
import { isSessionIdle } from '../../lib/store/sessions.js';

const at = (iso: string) => new Date(iso);

describe('isSessionIdle', () => {
  it('counts from the last use and ends the session exactly SESSION_IDLE_SECONDS after it', () => {
    const session = { lastUsedAt: '2026-01-15T10:00:00.000Z' };
    expect(isSessionIdle(session, 600, at('2026-01-15T10:09:59.999Z'))).toBe(false);
    expect(isSessionIdle(session, 600, at('2026-01-15T10:10:00.000Z'))).toBe(true);
    expect(isSessionIdle(session, 600, at('2026-01-22T10:00:00.000Z'))).toBe(true);
  });

  it('never ends a session for idleness when the timeout is 0', () => {
    expect(isSessionIdle({ lastUsedAt: '2000-01-01T00:00:00.000Z' }, 0, at('2026-01-15T10:00:00.000Z'))).toBe(false);
  });
});
