import { afterEach, describe, expect, it, vi } from 'vitest';
import { METRIC, METRICS_NAMESPACE, countMetric, metrics } from '../../lib/platform/metrics.js';

/** The EMF records written to stdout while `act` runs. */
function emitted(act: () => void): Array<Record<string, any>> {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    act();
  } finally {
    spy.mockRestore();
  }
  return lines.flatMap((chunk) => chunk.split('\n')).filter((line) => line.includes('_aws')).map((line) => JSON.parse(line));
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('metrics (CloudWatch embedded metric format)', () => {
  it('counts an event in VpnEnterprise/Auth with the service and the stage as its dimensions', () => {
    // Act
    const records = emitted(() => {
      countMetric(METRIC.signInSucceeded);
      countMetric(METRIC.tokenRefreshed);
      metrics.publishStoredMetrics();
    });

    // Assess
    expect(records).toHaveLength(1);
    const [record] = records;
    expect(record!._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: METRICS_NAMESPACE, Dimensions: [['service', 'stage']] });
    expect(record!._aws.CloudWatchMetrics[0].Metrics.map((metric: { Name: string }) => metric.Name).sort()).toEqual(['SignInSucceeded', 'TokenRefreshed']);
    expect(record).toMatchObject({ service: 'vpn-auth', stage: 'dev', SignInSucceeded: 1, TokenRefreshed: 1 });
  });

  it('counts an event with a reason, a limit or a scope in total and, in a record of its own, by it; nothing else is a dimension', () => {
    // Act
    const records = emitted(() => {
      countMetric(METRIC.signInFailed, { name: 'reason', value: 'bad_password' });
      countMetric(METRIC.signInLockedOut, { name: 'limit', value: 'device' });
      metrics.publishStoredMetrics();
    });

    // Assess
    expect(records.map((record) => [record._aws.CloudWatchMetrics[0].Dimensions, record.reason ?? record.limit ?? null])).toEqual([
      [[['service', 'stage', 'reason']], 'bad_password'],
      [[['service', 'stage', 'limit']], 'device'],
      [[['service', 'stage']], null],
    ]);
    expect(records[2]).toMatchObject({ SignInFailed: 1, SignInLockedOut: 1 });
    const allowed = new Set(['_aws', 'service', 'stage', 'reason', 'limit', 'scope', ...Object.values(METRIC)]);
    for (const record of records) for (const key of Object.keys(record)) expect(allowed.has(key), key).toBe(true);
  });

  it('keeps the dimension on every record when the same value is counted again (its emitter is reused)', () => {
    // Act
    const records = emitted(() => {
      for (const value of ['api_key', 'session', 'api_key']) countMetric(METRIC.authorizerAllowed, { name: 'authMethod', value });
      metrics.publishStoredMetrics();
    });

    // Assess
    expect(records.slice(0, 3).map((record) => [record.authMethod, record.AuthorizerAllowed, record._aws.CloudWatchMetrics[0].Dimensions])).toEqual([
      ['api_key', 1, [['service', 'stage', 'authMethod']]],
      ['session', 1, [['service', 'stage', 'authMethod']]],
      ['api_key', 1, [['service', 'stage', 'authMethod']]],
    ]);
    expect(records[3]).toMatchObject({ AuthorizerAllowed: [1, 1, 1] });
    expect(records[3]).not.toHaveProperty('authMethod');
  });
});
