'use strict';
// What tells operators something is wrong, in production stages: CloudWatch alarms to an SNS topic
// (the `alarmEmail` param subscribes an address) and a dashboard. Thresholds and their reasons are
// in docs/operating.md; every alarm also notifies when it recovers. The service's own metrics come
// from lib/platform/metrics.ts (namespace VpnEnterprise/Auth, dimension service).
const { SERVICE, isProductionStage } = require('./tables.js');

const NAMESPACE = 'VpnEnterprise/Auth';
const FUNCTIONS = [
  'login', 'refresh', 'logout', 'me', 'listSessions', 'endSession', 'changePassword',
  'mfaSetup', 'mfaActivate', 'mfaVerify', 'mfaRecoveryCodes', 'mfaTurnOff', 'createApiKey', 'listApiKeys', 'revokeApiKey',
  'ssoAuthorize', 'ssoCallback', 'ssoToken', 'ssoBackchannelLogout',
  'authorizer', 'notFound',
];
const TABLES = ['UsersTable', 'SessionsTable', 'AttemptsTable'];
const FIVE_MINUTES = 300;

/** Thresholds: a param of the stage may change each (`--param="name=value"`). */
const DEFAULT_THRESHOLDS = {
  // Sign-in failures in 5 minutes across the stage: ~5x what 100k users' normal mistyping gives.
  signInFailureAlarmThreshold: 100,
  // Lockouts (429 from a limit) in 5 minutes: a few users hammering their own lock is normal.
  lockoutAlarmThreshold: 20,
  // Wrong second-factor codes in 5 minutes: each follows a right password, so a surge means
  // someone holding passwords is guessing codes.
  secondFactorFailureAlarmThreshold: 20,
  // 5xx answers of the API in 5 minutes (our 503s included).
  serverErrorAlarmThreshold: 10,
  // The authorizer's p99 duration, ms, three 5-minute periods in a row: it runs on every request
  // of every other API; warm it takes ~5 ms, a cold start ~330 ms.
  authorizerP99AlarmMs: 500,
};

/** The service's own metrics of this stage (a dev stage in the same account never feeds prod's alarms). */
const serviceMetric = (stage, name) => ({ Namespace: NAMESPACE, MetricName: name, Dimensions: [{ Name: 'service', Value: SERVICE }, { Name: 'stage', Value: stage }] });
const functionName = (stage, fn) => `${SERVICE}-${stage}-${fn}`;

function alarm(description, metric, { threshold, statistic = 'Sum', periods = 1 }) {
  return {
    Type: 'AWS::CloudWatch::Alarm',
    Properties: {
      AlarmDescription: description,
      ...metric,
      // A metric-math alarm carries its statistic and period in its Metrics, and may not have them here.
      ...(metric.Metrics ? {} : statistic.startsWith('p') ? { ExtendedStatistic: statistic, Period: FIVE_MINUTES } : { Statistic: statistic, Period: FIVE_MINUTES }),
      EvaluationPeriods: periods,
      DatapointsToAlarm: periods,
      Threshold: threshold,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: 'AlarmsTopic' }],
      OKActions: [{ Ref: 'AlarmsTopic' }],
    },
  };
}

function metricMath(id, expression, metrics) {
  return {
    Metrics: [
      { Id: id, Expression: expression, ReturnData: true },
      ...metrics.map(([metricId, metric]) => ({ Id: metricId, MetricStat: { Metric: metric, Period: FIVE_MINUTES, Stat: 'Sum' }, ReturnData: false })),
    ],
  };
}

function alarmResources(stage, thresholds, alarmEmail) {
  const t = { ...DEFAULT_THRESHOLDS, ...thresholds };
  const resources = {
    // Not encrypted with the AWS-managed aws/sns key: CloudWatch could not publish to it.
    AlarmsTopic: { Type: 'AWS::SNS::Topic', Properties: { TopicName: `${SERVICE}-${stage}-alarms` } },
    RefreshTokenReusedAlarm: alarm('A spent refresh token came back: a stolen token, or a client bug. Any at all is worth a look.', serviceMetric(stage, 'RefreshTokenReused'), { threshold: 1 }),
    SignInFailuresAlarm: alarm(`A surge of failed sign-ins (${t.signInFailureAlarmThreshold} in 5 minutes): password guessing or credential stuffing.`, serviceMetric(stage, 'SignInFailed'), { threshold: t.signInFailureAlarmThreshold }),
    LockoutsAlarm: alarm(`Many sign-ins refused by the brute-force limits (${t.lockoutAlarmThreshold} in 5 minutes).`, serviceMetric(stage, 'SignInLockedOut'), { threshold: t.lockoutAlarmThreshold }),
    SecondFactorFailuresAlarm: alarm(
      `Many wrong second-factor codes or refused mfa_tokens (${t.secondFactorFailureAlarmThreshold} in 5 minutes): each came after a right password, so passwords are known to someone guessing codes.`,
      serviceMetric(stage, 'SecondFactorFailed'),
      { threshold: t.secondFactorFailureAlarmThreshold },
    ),
    SecondFactorLockedAlarm: alarm(
      "An account's second factor was locked (MFA_MAX_FAILURES wrong codes in a row): someone holding its password has been guessing codes. The audit line second_factor_locked names the account; reset its password.",
      serviceMetric(stage, 'SecondFactorLocked'),
      { threshold: 1 },
    ),
    ServiceUnavailableAlarm: alarm('The service answered 503: DynamoDB or SSM throttled, slow or unreachable.', serviceMetric(stage, 'ServiceUnavailable'), { threshold: 5 }),
    ApiServerErrorsAlarm: alarm(
      `The API answered ${t.serverErrorAlarmThreshold} 5xx in 5 minutes.`,
      { Namespace: 'AWS/ApiGateway', MetricName: '5xx', Dimensions: [{ Name: 'ApiId', Value: { Ref: 'HttpApi' } }, { Name: 'Stage', Value: '$default' }] },
      { threshold: t.serverErrorAlarmThreshold },
    ),
    AuthorizerLatencyAlarm: alarm(
      `The shared authorizer's p99 duration is ${t.authorizerP99AlarmMs} ms or more for 15 minutes: every other API waits on it.`,
      { Namespace: 'AWS/Lambda', MetricName: 'Duration', Dimensions: [{ Name: 'FunctionName', Value: functionName(stage, 'authorizer') }] },
      { threshold: t.authorizerP99AlarmMs, statistic: 'p99', periods: 3 },
    ),
  };
  for (const fn of FUNCTIONS) {
    resources[`${fn.charAt(0).toUpperCase()}${fn.slice(1)}ErrorsAlarm`] = alarm(
      `The ${fn} function failed (an unhandled error or a timeout: our handlers answer every error themselves, so any is a bug or an outage).`,
      { Namespace: 'AWS/Lambda', MetricName: 'Errors', Dimensions: [{ Name: 'FunctionName', Value: functionName(stage, fn) }] },
      { threshold: 1 },
    );
  }
  for (const table of TABLES) {
    const dimension = [{ Name: 'TableName', Value: { Ref: table } }];
    resources[`${table}ThrottlingAlarm`] = alarm(
      `DynamoDB throttled requests to ${table} (on-demand tables throttle past their previous peak x2).`,
      metricMath('throttled', 'reads + writes', [
        ['reads', { Namespace: 'AWS/DynamoDB', MetricName: 'ReadThrottleEvents', Dimensions: dimension }],
        ['writes', { Namespace: 'AWS/DynamoDB', MetricName: 'WriteThrottleEvents', Dimensions: dimension }],
      ]),
      { threshold: 1 },
    );
  }
  if (alarmEmail) {
    resources.AlarmsEmailSubscription = { Type: 'AWS::SNS::Subscription', Properties: { TopicArn: { Ref: 'AlarmsTopic' }, Protocol: 'email', Endpoint: alarmEmail } };
  }
  resources.OperationsDashboard = { Type: 'AWS::CloudWatch::Dashboard', Properties: { DashboardName: `${SERVICE}-${stage}`, DashboardBody: dashboardBody(stage) } };
  return resources;
}

/** The graphs an on-call engineer looks at first, top to bottom: is it failing, is it attacked, is it slow. */
function dashboardBody(stage) {
  const service = (name, stat = 'Sum') => [NAMESPACE, name, 'service', SERVICE, 'stage', stage, { stat }];
  const byDimension = (name, dimension, values) => values.map((value) => [NAMESPACE, name, 'service', SERVICE, 'stage', stage, dimension, value, { stat: 'Sum' }]);
  const lambda = (metric, stat) => FUNCTIONS.map((fn) => ['AWS/Lambda', metric, 'FunctionName', functionName(stage, fn), { stat }]);
  const widget = (x, y, title, metrics, extra = {}) => ({
    type: 'metric',
    x,
    y,
    width: 12,
    height: 6,
    properties: { title, metrics, region: '${AWS::Region}', period: FIVE_MINUTES, view: 'timeSeries', ...extra },
  });
  const body = {
    widgets: [
      { type: 'alarm', x: 0, y: 0, width: 24, height: 3, properties: { title: 'Alarms', alarms: ['${AlarmArns}'] } },
      widget(0, 3, 'API 5xx and 503s', [['AWS/ApiGateway', '5xx', 'ApiId', '${HttpApi}', 'Stage', '$default', { stat: 'Sum' }], service('ServiceUnavailable')]),
      widget(12, 3, 'Function errors', lambda('Errors', 'Sum')),
      widget(0, 9, 'Sign-ins: succeeded, failed by reason', [service('SignInSucceeded'), ...byDimension('SignInFailed', 'reason', ['unknown_user', 'bad_password', 'disabled'])]),
      widget(12, 9, 'Lockouts by limit', byDimension('SignInLockedOut', 'limit', ['pair', 'ip', 'account', 'device'])),
      widget(0, 33, 'Second factors: required, succeeded, failed by reason', [
        ...byDimension('SecondFactorRequired', 'reason', ['verify', 'enroll']),
        service('SecondFactorSucceeded'),
        ...byDimension('SecondFactorFailed', 'reason', ['code', 'recovery_code', 'token']),
      ]),
      widget(12, 33, 'Second factors: activated, turned off, recovery codes replaced', byDimension('SecondFactorChanged', 'reason', ['activated', 'turned_off', 'recovery_codes_replaced'])),
      widget(0, 15, 'Refreshes, refresh-token reuse, logouts', [service('TokenRefreshed'), service('RefreshTokenReused'), service('Logout')]),
      widget(12, 15, 'Authorizer: allowed, denied, by session or API key', [
        service('AuthorizerAllowed'),
        service('AuthorizerDenied'),
        ...byDimension('AuthorizerAllowed', 'authMethod', ['session', 'api_key']),
        ...byDimension('AuthorizerDenied', 'authMethod', ['session', 'api_key']),
      ]),
      widget(12, 27, 'API keys: created, revoked', [service('ApiKeyCreated'), service('ApiKeyRevoked')]),
      widget(0, 21, 'Authorizer duration p50 / p99 (ms)', [
        ['AWS/Lambda', 'Duration', 'FunctionName', functionName(stage, 'authorizer'), { stat: 'p50' }],
        ['AWS/Lambda', 'Duration', 'FunctionName', functionName(stage, 'authorizer'), { stat: 'p99' }],
      ]),
      widget(12, 21, 'Concurrent executions and throttles', [...lambda('ConcurrentExecutions', 'Maximum'), ...lambda('Throttles', 'Sum')]),
      widget(0, 27, 'DynamoDB throttle events', TABLES.flatMap((table) => [
        ['AWS/DynamoDB', 'ReadThrottleEvents', 'TableName', `\${${table}}`, { stat: 'Sum' }],
        ['AWS/DynamoDB', 'WriteThrottleEvents', 'TableName', `\${${table}}`, { stat: 'Sum' }],
      ])),
    ],
  };
  const alarmArns = ['RefreshTokenReusedAlarm', 'SignInFailuresAlarm', 'LockoutsAlarm', 'SecondFactorFailuresAlarm', 'SecondFactorLockedAlarm', 'ServiceUnavailableAlarm', 'ApiServerErrorsAlarm', 'AuthorizerLatencyAlarm'];
  const text = JSON.stringify(body).replace('"${AlarmArns}"', alarmArns.map((id) => `"\${${id}.Arn}"`).join(','));
  return { 'Fn::Sub': text };
}

module.exports = { DEFAULT_THRESHOLDS, NAMESPACE, alarmResources, isProductionStage };
