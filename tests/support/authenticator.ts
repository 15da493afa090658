import { TOTP_PERIOD_SECONDS, totpCode, totpStep } from '../../lib/mfa/totp.js';

/**
 * What an authenticator app shows, computed from the secret the API returned. Each code is of a
 * later step than the last one used (the API never accepts a step twice), from one step back to
 * one step ahead of now; never in a step's last 2 s, so that the server reads the same "now".
 */
export class Authenticator {
  private lastStep = -Infinity;
  constructor(readonly secret: string) {}

  async next(): Promise<string> {
    const intoStep = Date.now() % (TOTP_PERIOD_SECONDS * 1000);
    if (intoStep > (TOTP_PERIOD_SECONDS - 2) * 1000) await new Promise((done) => setTimeout(done, TOTP_PERIOD_SECONDS * 1000 - intoStep + 50));
    const now = totpStep(new Date());
    const step = Math.max(this.lastStep + 1, now - 1);
    if (step > now + 1) throw new Error('no unused step within the window: wait for the next one');
    this.lastStep = step;
    return totpCode(this.secret, new Date(step * TOTP_PERIOD_SECONDS * 1000));
  }

  /** A code of the window that is certainly not this secret's now (one step out of it). */
  wrong(): string {
    return totpCode(this.secret, new Date((totpStep(new Date()) + 5) * TOTP_PERIOD_SECONDS * 1000));
  }
}
