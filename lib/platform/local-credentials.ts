/**
 * The placeholder credentials clients of the local stack sign with. dynalite checks that a request
 * is signed, not by whom; the local stack's IAM check (scripts/local-iam/) must know which Lambda
 * is calling, as AWS knows it from the role's session, to hold it to that function's role. So a
 * Lambda's access key id carries its function name, and anything else (a CLI, a test's set-up, the
 * seeding) signs as plain `local`, which the check lets through: only Lambdas have roles.
 */

const SECRET = 'local';
const ANONYMOUS = 'local';
// A key id sits in the SigV4 credential scope (`Credential=<id>/<date>/...`): no '/', ',' or space.
// Function names are [A-Za-z0-9_-]: the dot cannot be part of one.
const LAMBDA_PREFIX = 'lambda.';

export interface PlaceholderCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The credentials of a local client: the Lambda's own when `functionName` is set (AWS_LAMBDA_FUNCTION_NAME). */
export function placeholderCredentials(functionName?: string): PlaceholderCredentials {
  return { accessKeyId: functionName ? `${LAMBDA_PREFIX}${functionName}` : ANONYMOUS, secretAccessKey: SECRET };
}

/** The function a local request was signed for, or undefined for any other client. */
export function lambdaOfAccessKeyId(accessKeyId: string): string | undefined {
  return accessKeyId.startsWith(LAMBDA_PREFIX) && accessKeyId.length > LAMBDA_PREFIX.length ? accessKeyId.slice(LAMBDA_PREFIX.length) : undefined;
}

/** Whether an access key id is one of the placeholders (the fake SSM accepts those alone). */
export function isPlaceholderAccessKeyId(accessKeyId: string): boolean {
  return accessKeyId === ANONYMOUS || lambdaOfAccessKeyId(accessKeyId) !== undefined;
}

/** The secret of every placeholder credential (the fake SSM re-signs requests with it). */
export const PLACEHOLDER_SECRET = SECRET;
