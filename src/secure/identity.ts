/**
 * Node identities: a signature key pair whose public half names the peer.
 * Peer-ID = SHA3-256(alg_id || identity_pubkey) (DESIGN.md, Crypto), printed as
 * "pq1" followed by the 32 bytes in lowercase unpadded base32 (55 characters).
 */
import crypto from 'node:crypto';
import { slh_dsa_shake_128s } from '@noble/post-quantum/slh-dsa.js';
import { base32Decode, base32Encode } from '../core/base32.ts';
import { concatBytes, equalBytes, toHex } from '../core/bytes.ts';
import { PqnetError } from '../core/errors.ts';
import { systemRandom, type Random } from '../core/random.ts';
import { SIG_IDS, SIG_SIZES, type SigAlg } from './algorithms.ts';
import type { CryptoProvider, SigningKey } from './provider.ts';
import { getProvider } from './providers.ts';

export const PEER_ID_PREFIX = 'pq1';
export const PEER_ID_BYTES = 32;

export class PeerId {
  readonly bytes: Uint8Array;
  readonly #text: string;

  constructor(bytes: Uint8Array) {
    if (bytes.length !== PEER_ID_BYTES) throw new PqnetError('BAD_PEER_ID', `peer id must be ${PEER_ID_BYTES} bytes`);
    this.bytes = bytes.slice();
    this.#text = PEER_ID_PREFIX + base32Encode(this.bytes);
  }

  static fromPublicKey(alg: SigAlg, publicKey: Uint8Array, provider: CryptoProvider = getProvider()): PeerId {
    return new PeerId(provider.sha3_256(concatBytes(Uint8Array.of(SIG_IDS[alg]), publicKey)));
  }

  static parse(text: string): PeerId {
    const body = text.startsWith(PEER_ID_PREFIX) ? base32Decode(text.slice(PEER_ID_PREFIX.length)) : undefined;
    if (body === undefined || body.length !== PEER_ID_BYTES) throw new PqnetError('BAD_PEER_ID', JSON.stringify(text.slice(0, 80)));
    return new PeerId(body);
  }

  equals(other: PeerId): boolean {
    return equalBytes(this.bytes, other.bytes);
  }

  toString(): string {
    return this.#text;
  }

  toJSON(): string {
    return this.#text;
  }

  /** Short form for logs and tables. */
  short(): string {
    return `${this.#text.slice(0, 9)}…${this.#text.slice(-4)}`;
  }

  hex(): string {
    return toHex(this.bytes);
  }
}

export interface Identity {
  readonly alg: SigAlg;
  readonly publicKey: Uint8Array;
  readonly peerId: PeerId;
  /** The private form kept in key files (seed for ML-DSA-65 and Ed25519). */
  readonly privateKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export function identityFromPrivateKey(alg: SigAlg, privateKey: Uint8Array, provider: CryptoProvider = getProvider()): Identity {
  const key: SigningKey = provider.signingKey(alg, privateKey);
  const peerId = PeerId.fromPublicKey(alg, key.publicKey, provider);
  const priv = privateKey.slice();
  return { alg, publicKey: key.publicKey, peerId, privateKey: priv, sign: (m) => key.sign(m) };
}

/** Fresh private key material of `alg` in its stored form. */
export function generatePrivateKey(alg: SigAlg, random: Random = systemRandom): Uint8Array {
  switch (alg) {
    case 'ml-dsa-65':
    case 'ed25519':
      return random.bytes(SIG_SIZES[alg].privateKey);
    case 'slh-dsa-shake-128s':
      // FIPS 205 keys have no seed-only form: SK.seed || SK.prf || PK.seed || PK.root.
      if (random === systemRandom) {
        const { privateKey } = crypto.generateKeyPairSync('slh-dsa-shake-128s' as 'ed25519');
        return new Uint8Array(privateKey.export({ format: 'raw-private' } as unknown as crypto.KeyExportOptions<'der'>));
      }
      return slh_dsa_shake_128s.keygen(random.bytes(48)).secretKey;
  }
}

export function generateIdentity(alg: SigAlg = 'ml-dsa-65', provider: CryptoProvider = getProvider(), random: Random = systemRandom): Identity {
  return identityFromPrivateKey(alg, generatePrivateKey(alg, random), provider);
}
