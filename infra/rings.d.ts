/** The two rings, as `npm run keys -- --ring` names them. */
export const RING_NAMES: readonly ['signing', 'mfa'];
export type RingName = (typeof RING_NAMES)[number];
/** `{"stage": S, "ring": R}`: the KMS encryption context a ring is sealed with and opened with. */
export function ringEncryptionContext(stage: string, ring: RingName): { stage: string; ring: RingName };
