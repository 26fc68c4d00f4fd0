/**
 * The handshake's key schedule and signed data (docs/spec/handshake.md, §8):
 * labels, transcript hash, handshake and application keys. Pure functions of
 * their inputs; the state machine in handshake.ts decides when to call them.
 */
import { concatBytes, utf8 } from '../core/bytes.ts';
import { KEY_BYTES } from '../core/limits.ts';
import { encodeCbor } from '../wire/cbor.ts';
import { SIG_IDS, type SigAlg } from './algorithms.ts';
import type { CryptoProvider } from './provider.ts';

// ---- Spec constants (labels are ASCII, no terminator). ----
export const TRANSCRIPT_LABEL = utf8('pqnet/1 transcript');
export const HS_KEY_LABEL_R2I = utf8('pqnet/1 hs r->i');
export const HS_KEY_LABEL_I2R = utf8('pqnet/1 hs i->r');
export const APP_KEY_LABEL_R2I = utf8('pqnet/1 app r->i');
export const APP_KEY_LABEL_I2R = utf8('pqnet/1 app i->r');
export const SESSION_ID_LABEL = utf8('pqnet/1 session id');
export const AUTH_R_LABEL = utf8('pqnet/1 auth-r');
export const AUTH_I_LABEL = utf8('pqnet/1 auth-i');
/** Handshake records are each sealed once under their own key: nonce 0. */
export const HS_NONCE = new Uint8Array(12);

export interface KeySchedule {
  readonly ikm: Uint8Array;
  readonly th2: Uint8Array;
  readonly hsKeyR2I: Uint8Array;
  readonly hsKeyI2R: Uint8Array;
}

/** th = SHA3-256("pqnet/1 transcript" || records as on the wire). */
export function transcriptHash(provider: CryptoProvider, records: readonly Uint8Array[]): Uint8Array {
  return provider.sha3_256(concatBytes(TRANSCRIPT_LABEL, ...records));
}

/** What an AUTH signature covers: label || th || SHA3-256(CBOR[alg_id, pubkey, identify]). */
export function authSignedData(provider: CryptoProvider, label: Uint8Array, th: Uint8Array, alg: SigAlg, publicKey: Uint8Array, identify: Uint8Array): Uint8Array {
  return concatBytes(label, th, provider.sha3_256(encodeCbor([SIG_IDS[alg], publicKey, identify])));
}

/** Handshake keys from the KEM output and th2 (HELLO_I, HELLO_R). */
export function deriveKeySchedule(provider: CryptoProvider, ikm: Uint8Array, th2: Uint8Array): KeySchedule {
  return {
    ikm,
    th2,
    hsKeyR2I: provider.hkdfSha3_256(ikm, th2, HS_KEY_LABEL_R2I, KEY_BYTES),
    hsKeyI2R: provider.hkdfSha3_256(ikm, th2, HS_KEY_LABEL_I2R, KEY_BYTES),
  };
}

/** Application keys per direction and the session id, from the full transcript hash th4. */
export function deriveSessionKeys(provider: CryptoProvider, ikm: Uint8Array, th4: Uint8Array): { i2r: Uint8Array; r2i: Uint8Array; sessionId: Uint8Array } {
  return {
    i2r: provider.hkdfSha3_256(ikm, th4, APP_KEY_LABEL_I2R, KEY_BYTES),
    r2i: provider.hkdfSha3_256(ikm, th4, APP_KEY_LABEL_R2I, KEY_BYTES),
    sessionId: provider.hkdfSha3_256(ikm, th4, SESSION_ID_LABEL, KEY_BYTES),
  };
}
