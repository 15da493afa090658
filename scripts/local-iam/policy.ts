/**
 * The Lambdas' roles as the local stack's IAM check applies them: read from infra/iam.js's ACCESS,
 * the definition the template's roles are made from, at every call (never a copy), with the table
 * names infra/tables.js gives the caller's stage. Only what the roles hold is modelled: identity-based
 * Allow statements of DynamoDB actions on tables and indexes, everything else denied.
 */
import { ACCESS, roleName } from '../../infra/iam.js';
import { SERVICE, tableResources } from '../../infra/tables.js';

/** function key -> table logical id (or `<table>/index/<name>`) -> actions: the shape of ACCESS. */
export type Access = Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;

/** The roles as infra/iam.js defines them now. */
export const definedAccess = (): Access => ACCESS;

/** The account number in the local stack's ARNs (dynalite's own). */
export const LOCAL_ACCOUNT = '000000000000';

/** A Lambda of the local stack. */
export interface Caller {
  /** As Lambda names it, `<service>-<stage>-<function>`: AWS_LAMBDA_FUNCTION_NAME, the role session's name. */
  functionName: string;
  stage: string;
  /** Its key in serverless.yml and in ACCESS (`mfaVerify`). */
  fn: string;
}

/** Which function of which stage a Lambda is. Function keys hold no dash (stages may). */
export function callerOf(functionName: string): Caller | undefined {
  const prefix = `${SERVICE}-`;
  const cut = functionName.lastIndexOf('-');
  if (!functionName.startsWith(prefix) || cut <= prefix.length) return undefined;
  return { functionName, stage: functionName.slice(prefix.length, cut), fn: functionName.slice(cut + 1) };
}

/** One permission a request needs: an action on a table, on one of its indexes, or on `*`. */
export interface Need {
  action: string;
  /** The table's name; undefined for an action on no table (ListTables). */
  table: string | undefined;
  index?: string;
}

/**
 * What IAM checks for a DynamoDB request (JSON protocol: `X-Amz-Target: DynamoDB_20120810.<Action>`):
 * the action on the table it names; for a batch, the action on each table of RequestItems; for a
 * Query or Scan of an index, the action on the index (a grant on its table does not cover it).
 */
export function needsOf(target: string, body: Record<string, unknown>): Need[] {
  const operation = target.slice(target.indexOf('.') + 1);
  const action = `dynamodb:${operation}`;
  if ((operation === 'BatchGetItem' || operation === 'BatchWriteItem') && isObject(body.RequestItems)) {
    return Object.keys(body.RequestItems).map((table) => ({ action, table }));
  }
  const table = typeof body.TableName === 'string' ? body.TableName : undefined;
  const index = (operation === 'Query' || operation === 'Scan') && typeof body.IndexName === 'string' ? body.IndexName : undefined;
  return [{ action, table, ...(index === undefined ? {} : { index }) }];
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The key of ACCESS a table (or index) of the caller's stage is granted under, or undefined for another table. */
export function resourceKey(caller: Caller, need: Need): string | undefined {
  if (need.table === undefined) return undefined;
  const logicalId = Object.entries(tableResources(caller.stage)).find(([, resource]) => resource.Properties.TableName === need.table)?.[0];
  if (logicalId === undefined) return undefined;
  return need.index === undefined ? logicalId : `${logicalId}/index/${need.index}`;
}

/** Whether the caller's role allows what the request needs. A function without a role may do nothing. */
export function isAllowed(access: Access, caller: Caller | undefined, need: Need): boolean {
  const key = caller && resourceKey(caller, need);
  return key !== undefined && (access[caller!.fn]?.[key]?.includes(need.action) ?? false);
}

/** The resource's ARN, as AWS names it in a denial. */
export function resourceArn(need: Need, region: string): string {
  if (need.table === undefined) return '*';
  return `arn:aws:dynamodb:${region}:${LOCAL_ACCOUNT}:table/${need.table}${need.index === undefined ? '' : `/index/${need.index}`}`;
}

/**
 * AWS's message for an action no policy allows, word for word: the caller is the role's session,
 * named by the function (the role's physical name is the stack's `<service>-<stage>-<logical id>`,
 * without CloudFormation's random suffix).
 */
export function denialMessage(functionName: string, need: Need, region: string): string {
  const caller = callerOf(functionName);
  const role = caller ? `${SERVICE}-${caller.stage}-${roleName(caller.fn)}` : 'unknown-role';
  return (
    `User: arn:aws:sts::${LOCAL_ACCOUNT}:assumed-role/${role}/${functionName} is not authorized to perform: ${need.action} ` +
    `on resource: ${resourceArn(need, region)} because no identity-based policy allows the ${need.action} action`
  );
}
