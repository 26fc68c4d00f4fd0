/**
 * Crypto provider on node:crypto (OpenSSL 3.5+): ML-KEM-768, ML-DSA-65,
 * SLH-DSA-SHAKE-128s, X25519, Ed25519, ChaCha20-Poly1305, AES-256-GCM, SHA3-256.
 */
import crypto from 'node:crypto';
import { PqnetError } from '../core/errors.ts';
import { asBuffer } from '../core/bytes.ts';
import { AEAD_TAG_BYTES, KEY_BYTES } from '../core/limits.ts';
import type { AeadAlg, SigAlg } from './algorithms.ts';
import { ML_KEM_768_CIPHERTEXT_BYTES, ML_KEM_768_PUBLIC_BYTES, ML_KEM_768_SEED_BYTES, SIG_SIZES, X25519_KEY_BYTES } from './algorithms.ts';
import type { Aead, CryptoProvider, Encapsulation, MlKemKeyPair, SigningKey, X25519KeyPair } from './provider.ts';
import { checkHkdfLength, checkSharedSecret } from './_checks.ts';

const CIPHERS: Record<AeadAlg, crypto.CipherChaCha20Poly1305Types | crypto.CipherGCMTypes> = {
  'chacha20-poly1305': 'chacha20-poly1305',
  'aes-256-gcm': 'aes-256-gcm',
};

function u8(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

// The raw key formats ('raw-public', 'raw-private', 'raw-seed', Node.js 24.7+)
// are not yet in @types/node, hence the casts in these three helpers.
function importPublic(type: string, raw: Uint8Array): crypto.KeyObject {
  return crypto.createPublicKey({ key: asBuffer(raw), format: 'raw-public', asymmetricKeyType: type } as unknown as crypto.PublicKeyInput);
}

function importPrivate(type: string, raw: Uint8Array, format: 'raw-private' | 'raw-seed'): crypto.KeyObject {
  return crypto.createPrivateKey({ key: asBuffer(raw), format, asymmetricKeyType: type } as unknown as crypto.PrivateKeyInput);
}

function rawPublic(priv: crypto.KeyObject): Uint8Array {
  return u8(crypto.createPublicKey(priv).export({ format: 'raw-public' } as unknown as crypto.KeyExportOptions<'der'>));
}

/** Whether this runtime's node:crypto has every primitive pqnet needs. */
export function nativeSupported(): boolean {
  try {
    if (typeof (crypto as { encapsulate?: unknown }).encapsulate !== 'function') return false;
    const kem = importPrivate('ml-kem-768', new Uint8Array(ML_KEM_768_SEED_BYTES), 'raw-seed');
    const pub = crypto.createPublicKey(kem);
    crypto.encapsulate(pub);
    importPrivate('ml-dsa-65', new Uint8Array(32), 'raw-seed');
    // Importing a public key proves SLH-DSA support without a key generation (~130 ms).
    importPublic('slh-dsa-shake-128s', new Uint8Array(32));
    crypto.createHash('sha3-256');
    crypto.hkdfSync('sha3-256', new Uint8Array(32), new Uint8Array(0), new Uint8Array(0), 32);
    return crypto.getCiphers().includes('chacha20-poly1305');
  } catch {
    return false;
  }
}

class NativeAead implements Aead {
  readonly #cipher: crypto.CipherChaCha20Poly1305Types | crypto.CipherGCMTypes;
  readonly #key: crypto.KeyObject;

  constructor(alg: AeadAlg, key: Uint8Array) {
    if (key.length !== KEY_BYTES) throw new PqnetError('INVALID_ARGUMENT', `${alg} key must be ${KEY_BYTES} bytes`);
    this.#cipher = CIPHERS[alg];
    this.#key = crypto.createSecretKey(asBuffer(key));
  }

  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array | readonly Uint8Array[], reserve = 0): Uint8Array {
    const parts = plaintext instanceof Uint8Array ? [plaintext] : plaintext;
    let len = 0;
    for (const p of parts) len += p.length;
    const c = crypto.createCipheriv(this.#cipher as 'chacha20-poly1305', this.#key, nonce, { authTagLength: AEAD_TAG_BYTES });
    c.setAAD(aad, { plaintextLength: len });
    const out = Buffer.allocUnsafe(reserve + len + AEAD_TAG_BYTES);
    out.fill(0, 0, reserve);
    let off = reserve;
    for (const p of parts) off += c.update(p).copy(out, off);
    off += c.final().copy(out, off);
    c.getAuthTag().copy(out, off);
    return u8(out);
  }

  /** node:crypto keeps the key inside OpenSSL; dropping the KeyObject is all that can be done. */
  destroy(): void {}

  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
    if (sealed.length < AEAD_TAG_BYTES) return null;
    const ctLen = sealed.length - AEAD_TAG_BYTES;
    try {
      const d = crypto.createDecipheriv(this.#cipher as 'chacha20-poly1305', this.#key, nonce, { authTagLength: AEAD_TAG_BYTES });
      d.setAAD(aad, { plaintextLength: ctLen });
      d.setAuthTag(sealed.subarray(ctLen));
      const pt = d.update(sealed.subarray(0, ctLen));
      const fin = d.final();
      return u8(fin.length === 0 ? pt : Buffer.concat([pt, fin]));
    } catch {
      return null;
    }
  }
}

export const nativeProvider: CryptoProvider = {
  name: 'native',
  deterministicEncapsulation: false,

  sha3_256(data: Uint8Array): Uint8Array {
    return u8(crypto.createHash('sha3-256').update(data).digest());
  },

  hmacSha3_256(key: Uint8Array, data: Uint8Array): Uint8Array {
    return u8(crypto.createHmac('sha3-256', key).update(data).digest());
  },

  hkdfSha3_256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    return new Uint8Array(crypto.hkdfSync('sha3-256', ikm, salt, info, checkHkdfLength(length)));
  },

  x25519FromPrivate(privateKey: Uint8Array): X25519KeyPair {
    if (privateKey.length !== X25519_KEY_BYTES) throw new PqnetError('INVALID_ARGUMENT', 'x25519 private key must be 32 bytes');
    const priv = importPrivate('x25519', privateKey, 'raw-private');
    const publicKey = rawPublic(priv);
    return {
      publicKey,
      derive(peerPublic: Uint8Array): Uint8Array {
        if (peerPublic.length !== X25519_KEY_BYTES) throw new PqnetError('HS_BAD_KEY', 'x25519 public key must be 32 bytes');
        let ss: Uint8Array;
        try {
          ss = u8(crypto.diffieHellman({ privateKey: priv, publicKey: importPublic('x25519', peerPublic) }));
        } catch (e) {
          throw new PqnetError('HS_BAD_KEY', 'x25519 agreement failed', { cause: e });
        }
        return checkSharedSecret(ss);
      },
    };
  },

  mlKem768FromSeed(seed: Uint8Array): MlKemKeyPair {
    if (seed.length !== ML_KEM_768_SEED_BYTES) throw new PqnetError('INVALID_ARGUMENT', 'ML-KEM-768 seed must be 64 bytes');
    const priv = importPrivate('ml-kem-768', seed, 'raw-seed');
    const publicKey = rawPublic(priv);
    return {
      publicKey,
      decapsulate(ciphertext: Uint8Array): Uint8Array {
        if (ciphertext.length !== ML_KEM_768_CIPHERTEXT_BYTES) throw new PqnetError('HS_BAD_KEY', 'ML-KEM-768 ciphertext must be 1088 bytes');
        return u8(crypto.decapsulate(priv, ciphertext));
      },
    };
  },

  mlKem768Encapsulate(publicKey: Uint8Array, message?: Uint8Array): Encapsulation {
    if (message !== undefined) throw new PqnetError('UNSUPPORTED_ALGORITHM', 'node:crypto cannot encapsulate with a caller-chosen message');
    if (publicKey.length !== ML_KEM_768_PUBLIC_BYTES) throw new PqnetError('HS_BAD_KEY', 'ML-KEM-768 encapsulation key must be 1184 bytes');
    let r: { sharedKey: Buffer; ciphertext: Buffer };
    try {
      r = crypto.encapsulate(importPublic('ml-kem-768', publicKey));
    } catch (e) {
      throw new PqnetError('HS_BAD_KEY', 'ML-KEM-768 encapsulation key rejected', { cause: e });
    }
    return { sharedSecret: u8(r.sharedKey), ciphertext: u8(r.ciphertext) };
  },

  signingKey(alg: SigAlg, privateKey: Uint8Array): SigningKey {
    const sizes = SIG_SIZES[alg];
    if (privateKey.length !== sizes.privateKey) throw new PqnetError('INVALID_ARGUMENT', `${alg} private key must be ${sizes.privateKey} bytes`);
    const format = alg === 'ml-dsa-65' ? 'raw-seed' : 'raw-private';
    const priv = importPrivate(alg, privateKey, format);
    const publicKey = rawPublic(priv);
    return {
      alg,
      publicKey,
      sign: (message: Uint8Array): Uint8Array => u8(crypto.sign(null, message, priv)),
    };
  },

  verify(alg: SigAlg, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    const sizes = SIG_SIZES[alg];
    if (publicKey.length !== sizes.publicKey || signature.length !== sizes.signature) return false;
    try {
      return crypto.verify(null, message, importPublic(alg, publicKey), signature);
    } catch {
      return false;
    }
  },

  aead(alg: AeadAlg, key: Uint8Array): Aead {
    return new NativeAead(alg, key);
  },
};
