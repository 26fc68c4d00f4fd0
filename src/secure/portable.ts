/**
 * Crypto provider on @noble/* (pure JavaScript): for runtimes without native
 * ML-KEM/ML-DSA, for browsers, and for deterministic test vectors.
 */
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { slh_dsa_shake_128s } from '@noble/post-quantum/slh-dsa.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { sha3_256 } from '@noble/hashes/sha3.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { gcm } from '@noble/ciphers/aes.js';
import { concatBytes, equalBytes } from '../core/bytes.ts';
import { PqnetError } from '../core/errors.ts';
import { KEY_BYTES } from '../core/limits.ts';
import type { Random } from '../core/random.ts';
import type { AeadAlg, SigAlg } from './algorithms.ts';
import { ML_KEM_768_CIPHERTEXT_BYTES, ML_KEM_768_PUBLIC_BYTES, ML_KEM_768_SEED_BYTES, SIG_SIZES, X25519_KEY_BYTES } from './algorithms.ts';
import type { Aead, CryptoProvider, Encapsulation, MlKemKeyPair, SigningKey } from './provider.ts';
import { checkHkdfLength, checkSharedSecret } from './_checks.ts';

export interface PortableOptions {
  /**
   * Where signing draws its hedging randomness. `undefined` keeps the libraries'
   * own CSPRNG; `null` signs deterministically (for test vectors).
   */
  readonly signingRandom?: Random | null;
}

function signWith(alg: SigAlg, privateKey: Uint8Array, random: Random | null | undefined): SigningKey {
  const sizes = SIG_SIZES[alg];
  if (privateKey.length !== sizes.privateKey) throw new PqnetError('INVALID_ARGUMENT', `${alg} private key must be ${sizes.privateKey} bytes`);
  switch (alg) {
    case 'ml-dsa-65': {
      const { secretKey, publicKey } = ml_dsa65.keygen(privateKey);
      return {
        alg,
        publicKey,
        sign: (m) => ml_dsa65.sign(m, secretKey, { extraEntropy: random === null ? false : random?.bytes(32) }),
      };
    }
    case 'slh-dsa-shake-128s': {
      const publicKey = slh_dsa_shake_128s.getPublicKey(privateKey);
      return {
        alg,
        publicKey,
        sign: (m) => slh_dsa_shake_128s.sign(m, privateKey, { extraEntropy: random === null ? false : random?.bytes(16) }),
      };
    }
    case 'ed25519': {
      const publicKey = ed25519.getPublicKey(privateKey);
      return { alg, publicKey, sign: (m) => ed25519.sign(m, privateKey) };
    }
  }
}

function verifyWith(alg: SigAlg, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const sizes = SIG_SIZES[alg];
  if (publicKey.length !== sizes.publicKey || signature.length !== sizes.signature) return false;
  try {
    switch (alg) {
      case 'ml-dsa-65':
        return ml_dsa65.verify(signature, message, publicKey);
      case 'slh-dsa-shake-128s':
        return slh_dsa_shake_128s.verify(signature, message, publicKey);
      case 'ed25519':
        // Strict encodings (zip215: false) and, like OpenSSL, the cofactorless
        // equation: both providers must accept exactly the same signatures.
        return ed25519.verify(signature, message, publicKey, { zip215: false }) && ed25519CofactorlessHolds(signature, message, publicKey);
    }
  } catch {
    return false;
  }
}

const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;

function bytesToBigLE(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

/**
 * RFC 8032 §5.1.7 allows a verifier to check [S]B = R + [k]A (cofactorless) or
 * [8][S]B = [8]R + [8][k]A. noble checks the latter, OpenSSL the former, and
 * OpenSSL also refuses a small-order R; they differ only on crafted signatures
 * with small-order components. The portable provider adds OpenSSL's checks so
 * both providers give the same verdict on every input (the ed25519-speccheck
 * vectors in test/secure/providers.test.ts). Inputs here passed noble's strict checks.
 */
function ed25519CofactorlessHolds(sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean {
  const P = ed25519.Point;
  const R = P.fromBytes(sig.subarray(0, 32));
  const A = P.fromBytes(pub);
  const S = bytesToBigLE(sig.subarray(32));
  const k = bytesToBigLE(sha512(concatBytes(sig.subarray(0, 32), pub, msg))) % ED25519_L;
  // OpenSSL refuses small-order R; any honest R is in the prime-order subgroup.
  if (R.isSmallOrder()) return false;
  // As OpenSSL does: recompute R' = [S]B - [k]A and compare its canonical encoding
  // with the signature's R bytes (a non-canonical R encoding never matches).
  return equalBytes(P.BASE.multiplyUnsafe(S).subtract(A.multiplyUnsafe(k)).toBytes(), sig.subarray(0, 32));
}

function checkKey(alg: AeadAlg, key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new PqnetError('INVALID_ARGUMENT', `${alg} key must be ${KEY_BYTES} bytes`);
}

class PortableAead implements Aead {
  readonly #alg: AeadAlg;
  readonly #key: Uint8Array;

  constructor(alg: AeadAlg, key: Uint8Array) {
    checkKey(alg, key);
    this.#alg = alg;
    this.#key = key.slice();
  }

  #cipher(nonce: Uint8Array, aad: Uint8Array) {
    return this.#alg === 'chacha20-poly1305' ? chacha20poly1305(this.#key, nonce, aad) : gcm(this.#key, nonce, aad);
  }

  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array | readonly Uint8Array[], reserve = 0): Uint8Array {
    const pt = plaintext instanceof Uint8Array ? plaintext : concatBytes(...plaintext);
    const sealed = this.#cipher(nonce, aad).encrypt(pt);
    if (reserve === 0) return sealed;
    const out = new Uint8Array(reserve + sealed.length);
    out.set(sealed, reserve);
    return out;
  }

  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
    try {
      return this.#cipher(nonce, aad).decrypt(sealed);
    } catch {
      return null;
    }
  }

  destroy(): void {
    this.#key.fill(0);
  }
}

export function createPortableProvider(options: PortableOptions = {}): CryptoProvider {
  const signingRandom = options.signingRandom;
  return {
    name: 'portable',
    deterministicEncapsulation: true,
    sha3_256: (data) => sha3_256(data),
    hmacSha3_256: (key, data) => hmac(sha3_256, key, data),
    hkdfSha3_256: (ikm, salt, info, length) => hkdf(sha3_256, ikm, salt, info, checkHkdfLength(length)),

    x25519FromPrivate(privateKey) {
      if (privateKey.length !== X25519_KEY_BYTES) throw new PqnetError('INVALID_ARGUMENT', 'x25519 private key must be 32 bytes');
      const priv = privateKey.slice();
      return {
        publicKey: x25519.getPublicKey(priv),
        derive(peerPublic: Uint8Array): Uint8Array {
          if (peerPublic.length !== X25519_KEY_BYTES) throw new PqnetError('HS_BAD_KEY', 'x25519 public key must be 32 bytes');
          let ss: Uint8Array;
          try {
            ss = x25519.getSharedSecret(priv, peerPublic);
          } catch (e) {
            throw new PqnetError('HS_BAD_KEY', 'x25519 agreement failed', { cause: e });
          }
          return checkSharedSecret(ss);
        },
      };
    },

    mlKem768FromSeed(seed): MlKemKeyPair {
      if (seed.length !== ML_KEM_768_SEED_BYTES) throw new PqnetError('INVALID_ARGUMENT', 'ML-KEM-768 seed must be 64 bytes');
      const { publicKey, secretKey } = ml_kem768.keygen(seed.slice());
      return {
        publicKey,
        decapsulate(ciphertext: Uint8Array): Uint8Array {
          if (ciphertext.length !== ML_KEM_768_CIPHERTEXT_BYTES) throw new PqnetError('HS_BAD_KEY', 'ML-KEM-768 ciphertext must be 1088 bytes');
          return ml_kem768.decapsulate(ciphertext, secretKey);
        },
      };
    },

    mlKem768Encapsulate(publicKey, message): Encapsulation {
      if (publicKey.length !== ML_KEM_768_PUBLIC_BYTES) throw new PqnetError('HS_BAD_KEY', 'ML-KEM-768 encapsulation key must be 1184 bytes');
      try {
        const { cipherText, sharedSecret } = ml_kem768.encapsulate(publicKey, message?.slice());
        return { ciphertext: cipherText, sharedSecret };
      } catch (e) {
        throw new PqnetError('HS_BAD_KEY', 'ML-KEM-768 encapsulation key rejected', { cause: e });
      }
    },

    signingKey: (alg, privateKey) => signWith(alg, privateKey, signingRandom),
    verify: verifyWith,
    aead: (alg, key) => new PortableAead(alg, key),
  };
}

export const portableProvider: CryptoProvider = createPortableProvider();
