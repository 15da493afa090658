export const ACCESS: Record<string, Record<string, string[]>> & { me: Record<string, string[]>; authorizer: Record<string, string[]> };
export const KEY_READERS: string[];
export function roleName(fn: string): string;
export function roleResources(service: string, stage: string): Record<string, unknown>;
