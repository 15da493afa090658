export const DEFAULT_THRESHOLDS: Record<string, number>;
export const NAMESPACE: string;
export function alarmResources(stage: string, thresholds: Record<string, number>, alarmEmail?: string): Record<string, { Type: string; Properties: Record<string, unknown> }>;
