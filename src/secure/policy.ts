/**
 * The algorithm policy: which KEMs, AEADs and identity signature algorithms a
 * network allows. Its canonical encoding is hashed into the policy root, which
 * both sides put in the handshake transcript; a peer with another root is
 * rejected with HS_POLICY_MISMATCH. Preference order is local and not hashed.
 *
 * root = SHA3-256("pqnet/1 policy" || CBOR([kem_ids, aead_ids, sig_ids])),
 * each id list sorted ascending without duplicates (docs/spec/handshake.md).
 */
import { encode } from 'cborg';
import { concatBytes, toHex, utf8 } from '../core/bytes.ts';
import { PqnetError } from '../core/errors.ts';
import { AEAD_IDS, KEM_IDS, SIG_IDS, type AeadAlg, type KemAlg, type SigAlg } from './algorithms.ts';
import type { CryptoProvider } from './provider.ts';
import { getProvider } from './providers.ts';

export const POLICY_LABEL = 'pqnet/1 policy';

export interface AlgorithmPolicy {
  /** Allowed KEMs, in this node's order of preference. */
  readonly kem: readonly KemAlg[];
  /** Allowed AEADs, in this node's order of preference. */
  readonly aead: readonly AeadAlg[];
  /** Allowed identity algorithms. */
  readonly sig: readonly SigAlg[];
}

/** Post-quantum only: classic X25519 and Ed25519 must be enabled explicitly. */
export const DEFAULT_POLICY: AlgorithmPolicy = Object.freeze({
  kem: Object.freeze(['x25519-ml-kem-768', 'ml-kem-768'] as KemAlg[]),
  aead: Object.freeze(['chacha20-poly1305', 'aes-256-gcm'] as AeadAlg[]),
  sig: Object.freeze(['ml-dsa-65', 'slh-dsa-shake-128s'] as SigAlg[]),
});

export interface CompiledPolicy extends AlgorithmPolicy {
  readonly encoding: Uint8Array;
  readonly root: Uint8Array;
}

function ids<K extends string>(field: string, names: readonly K[], table: Record<K, number>): number[] {
  if (names.length === 0) throw new PqnetError('INVALID_ARGUMENT', `policy.${field} must name at least one algorithm`);
  const out = new Set<number>();
  for (const n of names) {
    const id = Object.hasOwn(table, n) ? table[n] : undefined;
    if (typeof id !== 'number') throw new PqnetError('INVALID_ARGUMENT', `policy.${field}: unknown algorithm ${JSON.stringify(n)}`);
    if (out.has(id)) throw new PqnetError('INVALID_ARGUMENT', `policy.${field}: ${n} listed twice`);
    out.add(id);
  }
  return [...out].sort((a, b) => a - b);
}

export function encodePolicy(p: AlgorithmPolicy): Uint8Array {
  return encode([ids('kem', p.kem, KEM_IDS), ids('aead', p.aead, AEAD_IDS), ids('sig', p.sig, SIG_IDS)]);
}

export function compilePolicy(p: AlgorithmPolicy = DEFAULT_POLICY, provider: CryptoProvider = getProvider()): CompiledPolicy {
  const encoding = encodePolicy(p);
  const root = provider.sha3_256(concatBytes(utf8(POLICY_LABEL), encoding));
  return Object.freeze({ kem: [...p.kem], aead: [...p.aead], sig: [...p.sig], encoding, root });
}

export function policyRootHex(p: CompiledPolicy): string {
  return toHex(p.root);
}
