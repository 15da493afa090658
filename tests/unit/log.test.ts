import { describe, expect, it } from 'vitest';
import { logLevelFrom } from '../../lib/platform/log.js';
import { auditLine, runScript } from '../support/cli.js';

const lines = (output: string) => output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);

describe('log level and shape', () => {
  it.each([
    [{}, 'INFO'],
    [{ POWERTOOLS_LOG_LEVEL: 'DEBUG' }, 'DEBUG'],
    [{ POWERTOOLS_LOG_LEVEL: 'debug' }, 'DEBUG'],
    [{ LOG_LEVEL: 'warn' }, 'WARN'],
    [{ LOG_LEVEL: 'silent' }, 'SILENT'],
    [{ POWERTOOLS_LOG_LEVEL: 'ERROR', LOG_LEVEL: 'debug' }, 'ERROR'],
    [{ POWERTOOLS_LOG_LEVEL: 'loud' }, 'INFO'],
  ])('reads %j as %s', (env, level) => {
    expect(logLevelFrom(env)).toBe(level);
  });

  it('honours POWERTOOLS_LOG_LEVEL=DEBUG and POWERTOOLS_SERVICE_NAME in a fresh process, as a Lambda starts', async () => {
    // Act
    const debug = await runScript('tests/support/log-probe.ts', [], { env: { POWERTOOLS_LOG_LEVEL: 'DEBUG', LOG_LEVEL: undefined, POWERTOOLS_SERVICE_NAME: 'vpn-auth' } });
    const warn = await runScript('tests/support/log-probe.ts', [], { env: { POWERTOOLS_LOG_LEVEL: undefined, LOG_LEVEL: 'warn' } });

    // Assess
    expect(lines(debug.stdout + debug.stderr).map((line) => line.message)).toEqual(['probe_debug', 'probe_info', 'probe_warn']);
    expect(lines(warn.stdout + warn.stderr).map((line) => line.message)).toEqual(['probe_warn']);
    expect(lines(debug.stdout)[0]).toMatchObject({ level: 'DEBUG', message: 'probe_debug', service: 'vpn-auth', timestamp: expect.any(String), n: 1 });
  }, 30_000);

  it("writes the CLIs' audit lines in the Lambdas' shape, so one query finds both", async () => {
    // Prepare: a Lambda's line, and a CLI's
    const lambda = lines((await runScript('tests/support/log-probe.ts', [], { env: { LOG_LEVEL: 'info' } })).stdout)[0]!;
    const cli = await runScript('scripts/keys.ts', ['init', '--file', `/tmp/vpn-auth-log-shape-${process.pid}-${Date.now()}`]);

    // Assess
    const audit = auditLine(cli.stderr, 'signing_key_created');
    for (const key of ['level', 'message', 'timestamp', 'service']) expect(typeof audit[key], key).toBe(typeof lambda[key]);
    expect(audit.service).toBe(lambda.service);
  }, 30_000);
});
