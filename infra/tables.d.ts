export interface TableNames {
  users: string;
  sessions: string;
  attempts: string;
}
export const SERVICE: string;
/** `prod` and `production`. */
export function isProductionStage(stage: string): boolean;
export function tableNames(stage: string): TableNames;
export function tableResources(stage: string): Record<string, { Type: string; Properties: Record<string, unknown> }>;
export const TTL_ATTRIBUTE: string;
/** The sessions table's index of a user's sessions (user_id, then created_at). */
export const SESSIONS_BY_USER_INDEX: string;
