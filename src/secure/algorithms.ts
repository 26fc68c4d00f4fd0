/**
 * Algorithm identifiers. The numeric ids are spec values (docs/spec/handshake.md):
 * they appear in HELLO offers, in the policy encoding and in peer-id derivation.
 */

export const KEM_IDS = { 'x25519-ml-kem-768': 1, 'ml-kem-768': 2, x25519: 3 } as const;
export const AEAD_IDS = { 'chacha20-poly1305': 1, 'aes-256-gcm': 2 } as const;
export const SIG_IDS = { 'ml-dsa-65': 1, 'slh-dsa-shake-128s': 2, ed25519: 3 } as const;

export type KemAlg = keyof typeof KEM_IDS;
export type AeadAlg = keyof typeof AEAD_IDS;
export type SigAlg = keyof typeof SIG_IDS;

export const KEM_ALGS = Object.keys(KEM_IDS) as KemAlg[];
export const AEAD_ALGS = Object.keys(AEAD_IDS) as AeadAlg[];
export const SIG_ALGS = Object.keys(SIG_IDS) as SigAlg[];

function invert<K extends string>(table: Record<K, number>): Map<number, K> {
  return new Map(Object.entries(table).map(([k, v]) => [v as number, k as K]));
}
const kemById = invert(KEM_IDS);
const aeadById = invert(AEAD_IDS);
const sigById = invert(SIG_IDS);

export const kemFromId = (id: number): KemAlg | undefined => kemById.get(id);
export const aeadFromId = (id: number): AeadAlg | undefined => aeadById.get(id);
export const sigFromId = (id: number): SigAlg | undefined => sigById.get(id);

/** Which ephemeral keys a KEM needs. */
export function kemUsesX25519(k: KemAlg): boolean {
  return k !== 'ml-kem-768';
}
export function kemUsesMlKem(k: KemAlg): boolean {
  return k !== 'x25519';
}

/** Sizes fixed by the standards (FIPS 203, FIPS 204, FIPS 205, RFC 7748, RFC 8032). */
export const X25519_KEY_BYTES = 32;
export const ML_KEM_768_PUBLIC_BYTES = 1_184;
export const ML_KEM_768_CIPHERTEXT_BYTES = 1_088;
export const ML_KEM_768_SEED_BYTES = 64;
export const ML_KEM_SHARED_BYTES = 32;

export interface SigSizes {
  readonly publicKey: number;
  /** The private form kept in key files: the seed where the standard defines one. */
  readonly privateKey: number;
  readonly signature: number;
}

export const SIG_SIZES: Readonly<Record<SigAlg, SigSizes>> = {
  'ml-dsa-65': { publicKey: 1_952, privateKey: 32, signature: 3_309 },
  'slh-dsa-shake-128s': { publicKey: 32, privateKey: 64, signature: 7_856 },
  ed25519: { publicKey: 32, privateKey: 32, signature: 64 },
};
