export const ACCESS: Record<string, Record<string, string[]>> & { me: Record<string, string[]>; authorizer: Record<string, string[]> };
export const KEY_READERS: string[];
export const MFA_KEY_READERS: string[];
export const MFA_RING_READERS: string[];
export const SSO_SECRET_READERS: string[];
export function roleName(fn: string): string;
export function roleResources(service: string, stage: string): Record<string, unknown>;
/** The sessions table's by-user index, as a key of ACCESS. */
export const SESSIONS_BY_USER: string;
/** The ARN of a table, or of one of its indexes (`<table>/index/<name>`), as CloudFormation. */
export function tableArn(name: string): unknown;
