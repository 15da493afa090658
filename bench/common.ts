/** What `npm run bench` and `npm run bench:sizing` share. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HttpEvent, HttpResult } from '../lib/http/http.js';
import { PROJECT_ROOT } from '../scripts/local-stack.js';

/** A function's handler, invoked directly as Lambda would. */
export type Handler = (event: HttpEvent, context: unknown) => Promise<HttpResult>;

/** Operations per second of `op` over `seconds`. */
export async function rate(op: () => Promise<unknown>, seconds: number): Promise<number> {
  let count = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    await op();
    count++;
  }
  return count / ((performance.now() - started) / 1000);
}

export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** The committed API Gateway v2 event for `fn` (events/<fn>.json), changed by `change`. */
export function event(fn: string, change: (event: any) => void = () => {}): HttpEvent {
  const value = JSON.parse(readFileSync(join(PROJECT_ROOT, 'events', `${fn}.json`), 'utf8'));
  change(value);
  return value as HttpEvent;
}
