'use strict';
// The encryption context each key ring is sealed with (infra/signing-keys.js, scripts/keys.ts) and
// opened with (lib/auth/sealed-ring.ts). A module of its own, so that the Lambdas' bundles carry
// these few lines and not the key policies.

/** The two rings, as `npm run keys -- --ring` names them. */
const RING_NAMES = ['signing', 'mfa'];

/**
 * The encryption context a ring is sealed with and must be opened with: `{"stage": S, "ring": R}`.
 * Each ring has a key of its own already; the context also ties a ciphertext to its place, so that
 * one ring's ciphertext is refused as the other's, or another stage's, and CloudTrail's Decrypt
 * records say which ring was read.
 */
function ringEncryptionContext(stage, ring) {
  if (!RING_NAMES.includes(ring)) throw new Error(`unknown ring "${ring}"`);
  return { stage, ring };
}

module.exports = { RING_NAMES, ringEncryptionContext };
