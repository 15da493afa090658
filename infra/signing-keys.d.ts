/** `/vpn-auth/<stage>/jwt-signing-keys`: the SSM SecureString holding a stage's JWT signing keys. */
export function signingKeyParameter(stage: string): string;
/** `alias/vpn-auth-<stage>-signing-keys`: the KMS key that parameter is encrypted with. */
export function signingKeyAlias(stage: string): string;
/** The KMS key and alias resources; `readers` are the logical ids of the roles that may decrypt. */
export function signingKeyResources(stage: string, readers: string[], operators?: string[]): Record<string, { Type: string; Properties: Record<string, unknown> }>;
/** `/vpn-auth/<stage>/mfa-keys`: the SSM SecureString holding a stage's MFA keys. */
export function mfaKeyParameter(stage: string): string;
/** `alias/vpn-auth-<stage>-mfa-keys`: the KMS key that parameter is encrypted with. */
export function mfaKeyAlias(stage: string): string;
/** The MFA keys' KMS key and alias resources; `readers` are the logical ids of the roles that may decrypt. */
export function mfaKeyResources(stage: string, readers: string[], operators?: string[]): Record<string, { Type: string; Properties: Record<string, unknown> }>;
/** The `signingKeyOperators` param: comma-separated IAM role or user ARNs. */
export function parseOperators(raw: unknown): string[];
export { RING_NAMES, ringEncryptionContext, type RingName } from './rings.js';
