/**
 * `npm run bench:sizing`: what a login costs on Lambda, from the CPU time one bcrypt comparison
 * takes on this machine at BCRYPT_COST 10, 11 and 12. Lambda gives a function CPU in proportion
 * to its memory (1769 MB = one full vCPU), so a CPU-bound step takes cpu_time * 1769 / memory.
 * Prices: AWS Lambda arm64, $0.0000133334 per GB-second and $0.20 per million requests
 * (us-east-1 list price; check yours). Assumes this machine's core is about as fast as a
 * Graviton2 vCPU, which is the rough part of the estimate.
 */
import { performance } from 'node:perf_hooks';
import bcrypt from 'bcryptjs';

const PRICE_PER_GB_SECOND = 0.0000133334;
const PRICE_PER_MILLION_REQUESTS = 0.2;
const FULL_VCPU_MB = 1769;
const MEMORY_SIZES = [512, 1024, 1769];
/** DynamoDB round trips of a login (5) at a few ms each in AWS: waiting, not CPU. */
const LOGIN_IO_MS = 5 * 4;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function compareCpuMs(cost: number): Promise<number> {
  const hash = await bcrypt.hash('a-password-for-sizing', cost);
  await bcrypt.compare('a-password-for-sizing', hash); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const cpu = process.cpuUsage();
    const started = performance.now();
    await bcrypt.compare('a-password-for-sizing', hash);
    const used = process.cpuUsage(cpu);
    samples.push(Math.max((used.user + used.system) / 1000, performance.now() - started));
  }
  return median(samples);
}

async function main(): Promise<void> {
  const rows: string[][] = [['BCRYPT_COST', 'bcrypt CPU here', ...MEMORY_SIZES.flatMap((mb) => [`${mb} MB latency`, `${mb} MB $/1M logins`])]];
  const results: Record<string, unknown> = {};
  for (const cost of [10, 11, 12]) {
    const cpuMs = await compareCpuMs(cost);
    const row = [String(cost), `${cpuMs.toFixed(0)} ms`];
    const perSize: Record<string, { latencyMs: number; dollarsPerMillion: number }> = {};
    for (const mb of MEMORY_SIZES) {
      const share = Math.min(1, mb / FULL_VCPU_MB);
      const latencyMs = cpuMs / share + LOGIN_IO_MS;
      const dollarsPerMillion = (latencyMs / 1000) * (mb / 1024) * PRICE_PER_GB_SECOND * 1e6 + PRICE_PER_MILLION_REQUESTS;
      perSize[mb] = { latencyMs, dollarsPerMillion };
      row.push(`${latencyMs.toFixed(0)} ms`, `$${dollarsPerMillion.toFixed(2)}`);
    }
    results[cost] = { cpuMs, perSize };
    rows.push(row);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  '));
  console.log(JSON.stringify(results));
}

void main();
