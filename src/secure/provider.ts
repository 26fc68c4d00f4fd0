/**
 * The crypto interface. Two implementations exist and are byte-compatible:
 * `native` (node:crypto, OpenSSL 3.5) and `portable` (@noble/*). Tests cross them
 * in both directions for every primitive (test/secure/providers.test.ts).
 */
import type { AeadAlg, SigAlg } from './algorithms.ts';

export type ProviderName = 'native' | 'portable';

export interface X25519KeyPair {
  readonly publicKey: Uint8Array;
  /** Shared secret with `peerPublic`; throws HS_BAD_KEY for a low-order point. */
  derive(peerPublic: Uint8Array): Uint8Array;
}

export interface MlKemKeyPair {
  readonly publicKey: Uint8Array;
  /** Implicit rejection: a wrong ciphertext of the right size yields an unrelated secret. */
  decapsulate(ciphertext: Uint8Array): Uint8Array;
}

export interface Encapsulation {
  readonly sharedSecret: Uint8Array;
  readonly ciphertext: Uint8Array;
}

export interface SigningKey {
  readonly alg: SigAlg;
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export interface Aead {
  /**
   * Encrypts the concatenation of `plaintext` parts. Returns a buffer of
   * `reserve` unused leading bytes (for the caller's length prefix), then
   * ciphertext, then the 16-byte tag.
   */
  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array | readonly Uint8Array[], reserve?: number): Uint8Array;
  /** Returns the plaintext, or `null` when authentication fails. */
  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null;
  /** Wipe key material this object holds (where the implementation can). */
  destroy(): void;
}

export interface CryptoProvider {
  readonly name: ProviderName;
  /** Whether `mlKem768Encapsulate` honours a caller-chosen message (portable only). */
  readonly deterministicEncapsulation: boolean;
  sha3_256(data: Uint8Array): Uint8Array;
  hmacSha3_256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** HKDF (RFC 5869) with SHA3-256: extract with `salt`, expand with `info`. */
  hkdfSha3_256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  /** X25519 key pair from 32 random bytes (clamped per RFC 7748). */
  x25519FromPrivate(privateKey: Uint8Array): X25519KeyPair;
  /** ML-KEM-768 key pair from its 64-byte seed (d || z, FIPS 203 §7.1). */
  mlKem768FromSeed(seed: Uint8Array): MlKemKeyPair;
  /**
   * Encapsulate to `publicKey`. `message` (32 bytes) makes the result
   * deterministic; only the portable provider honours it (node:crypto draws its
   * own randomness), so vectors are produced with the portable provider.
   * Throws HS_BAD_KEY for an encapsulation key that fails FIPS 203's checks.
   */
  mlKem768Encapsulate(publicKey: Uint8Array, message?: Uint8Array): Encapsulation;
  /** A signing key from its private form (see SIG_SIZES.privateKey). */
  signingKey(alg: SigAlg, privateKey: Uint8Array): SigningKey;
  /** Never throws: malformed keys or signatures verify as false. */
  verify(alg: SigAlg, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  aead(alg: AeadAlg, key: Uint8Array): Aead;
}
