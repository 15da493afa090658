import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../lib/platform/errors.js';
import { loginService } from '../../lib/auth/login-service.js';
import { hashPassword } from '../../lib/auth/passwords.js';
import { testApp, uniqueEmail } from '../support/store.js';

const COST = 10;
const SAMPLES = 9;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe('login timing does not tell whether an account exists', () => {
  it(`takes about as long for an unknown email as for a wrong password or a disabled user (medians within 2x, bcrypt cost ${COST})`, async () => {
    // Prepare: real hashes at the configured cost, a fresh source IP per attempt (no lockout)
    const app = await testApp(undefined, { BCRYPT_COST: String(COST) });
    const passwordHash = await hashPassword('the-real-password', COST);
    const known = await app.users.create({ email: uniqueEmail('known'), name: 'Known', role: 'user', passwordHash }, app.clock());
    const disabled = await app.users.create({ email: uniqueEmail('disabled'), name: 'Off', role: 'user', passwordHash }, app.clock());
    await app.users.setStatus(disabled.id, 'disabled', app.clock());
    let ip = 0;
    const timed = async (email: string, password: string): Promise<number> => {
      const started = performance.now();
      const error = await loginService(app).login(email, password, { requestId: 't', sourceIp: `192.0.2.${++ip}`, userAgent: 'vitest' }).catch((e: unknown) => e);
      const elapsed = performance.now() - started;
      expect((error as ApiError).code).toBe('invalid_credentials');
      return elapsed;
    };
    await timed(uniqueEmail('warm-up'), 'whatever-password');

    // Act: interleaved, so that a slow moment of the machine hits every path alike
    const unknown: number[] = [];
    const wrong: number[] = [];
    const off: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      unknown.push(await timed(uniqueEmail('ghost'), 'the-real-password'));
      wrong.push(await timed(known.email, 'a-wrong-password'));
      off.push(await timed(disabled.email, 'the-real-password'));
    }

    // Assess
    const medians = [median(unknown), median(wrong), median(off)];
    expect(Math.max(...medians) / Math.min(...medians), `medians (ms): ${medians.map((m) => m.toFixed(1)).join(', ')}`).toBeLessThan(2);
    // And each path really paid for bcrypt: cost 10 is tens of milliseconds, a lookup alone is not.
    expect(Math.min(...medians)).toBeGreaterThan(10);
  }, 60_000);
});
