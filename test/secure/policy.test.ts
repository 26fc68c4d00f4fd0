import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fc from 'fast-check';
import { toHex } from '../../src/core/bytes.ts';
import { isPqnetError } from '../../src/core/errors.ts';
import { AEAD_ALGS, KEM_ALGS, SIG_ALGS, type AeadAlg, type KemAlg, type SigAlg } from '../../src/secure/algorithms.ts';
import { nativeProvider } from '../../src/secure/native.ts';
import { compilePolicy, DEFAULT_POLICY, encodePolicy, POLICY_LABEL, policyRootHex, type AlgorithmPolicy } from '../../src/secure/policy.ts';
import { portableProvider } from '../../src/secure/portable.ts';

/** The default policy's root. Changing it splits the network: update only on purpose. */
const DEFAULT_ROOT_HEX = '98387f64fb8b8b9063b0012b3f5c67fb8dfac9c8321ba20579c3a12357c097a9';

/** Spec ids, written out by hand (docs/spec/handshake.md). */
const KEM: Record<KemAlg, number> = { 'x25519-ml-kem-768': 1, 'ml-kem-768': 2, x25519: 3 };
const AEAD: Record<AeadAlg, number> = { 'chacha20-poly1305': 1, 'aes-256-gcm': 2 };
const SIG: Record<SigAlg, number> = { 'ml-dsa-65': 1, 'slh-dsa-shake-128s': 2, ed25519: 3 };

/** CBOR of [[kem ids], [aead ids], [sig ids]], sorted, by hand: ids are < 24, lists shorter than 24. */
function handEncoding(p: AlgorithmPolicy): Uint8Array {
  const list = (ids: number[]): number[] => [0x80 + ids.length, ...ids.sort((a, b) => a - b)];
  return Uint8Array.from([0x83, ...list(p.kem.map((k) => KEM[k])), ...list(p.aead.map((a) => AEAD[a])), ...list(p.sig.map((s) => SIG[s]))]);
}

function handRootHex(p: AlgorithmPolicy): string {
  return crypto.createHash('sha3-256').update('pqnet/1 policy').update(handEncoding(p)).digest('hex');
}

function assertInvalid(p: AlgorithmPolicy, label: string): void {
  assert.throws(
    () => compilePolicy(p),
    (e: unknown) => {
      assert.ok(isPqnetError(e), `${label}: expected a PqnetError, got ${String(e)}`);
      assert.equal(e.code, 'INVALID_ARGUMENT', label);
      return true;
    },
    label,
  );
}

const subset = <T>(all: readonly T[]): fc.Arbitrary<T[]> => fc.shuffledSubarray([...all], { minLength: 1 });
const policyArb: fc.Arbitrary<AlgorithmPolicy> = fc.record({ kem: subset(KEM_ALGS), aead: subset(AEAD_ALGS), sig: subset(SIG_ALGS) });

describe('policy root', () => {
  test('the default policy root is pinned', () => {
    assert.equal(POLICY_LABEL, 'pqnet/1 policy');
    assert.equal(policyRootHex(compilePolicy()), DEFAULT_ROOT_HEX);
    assert.equal(policyRootHex(compilePolicy(DEFAULT_POLICY)), DEFAULT_ROOT_HEX);
    assert.equal(toHex(encodePolicy(DEFAULT_POLICY)), '83820102820102820102');
    assert.equal(handRootHex(DEFAULT_POLICY), DEFAULT_ROOT_HEX);
  });

  test('root = SHA3-256("pqnet/1 policy" || encoding), computed independently, for any policy', () => {
    fc.assert(
      fc.property(policyArb, (p) => {
        const c = compilePolicy(p);
        assert.equal(toHex(c.encoding), toHex(handEncoding(p)));
        assert.equal(toHex(c.root), handRootHex(p));
        assert.equal(policyRootHex(c), handRootHex(p));
      }),
      { numRuns: 100, seed: 11 },
    );
  });

  test('the root does not depend on the order of each list; the compiled policy keeps the order', () => {
    fc.assert(
      fc.property(policyArb, fc.nat(), (p, salt) => {
        const rot = <T>(a: readonly T[]): T[] => {
          const k = salt % a.length;
          return [...a.slice(k), ...a.slice(0, k)].reverse();
        };
        const q: AlgorithmPolicy = { kem: rot(p.kem), aead: rot(p.aead), sig: rot(p.sig) };
        const cp = compilePolicy(p);
        const cq = compilePolicy(q);
        assert.equal(toHex(cp.root), toHex(cq.root));
        assert.deepEqual(cq.kem, q.kem);
        assert.deepEqual(cq.aead, q.aead);
        assert.deepEqual(cq.sig, q.sig);
      }),
      { numRuns: 100, seed: 12 },
    );
    const a = compilePolicy({ kem: ['x25519', 'ml-kem-768'], aead: ['aes-256-gcm', 'chacha20-poly1305'], sig: ['ed25519', 'ml-dsa-65'] });
    const b = compilePolicy({ kem: ['ml-kem-768', 'x25519'], aead: ['chacha20-poly1305', 'aes-256-gcm'], sig: ['ml-dsa-65', 'ed25519'] });
    assert.equal(policyRootHex(a), policyRootHex(b));
  });

  test('different sets give different roots', () => {
    const key = (p: AlgorithmPolicy): string =>
      [p.kem, p.aead, p.sig].map((l) => [...l].sort().join(',')).join('|');
    const seen = new Map<string, string>();
    // Every non-empty subset of each list: 7 x 3 x 7 = 147 policies.
    const subsets = <T>(all: readonly T[]): T[][] => {
      const out: T[][] = [];
      for (let mask = 1; mask < 1 << all.length; mask++) out.push(all.filter((_, i) => (mask >> i) & 1));
      return out;
    };
    for (const kem of subsets(KEM_ALGS)) {
      for (const aead of subsets(AEAD_ALGS)) {
        for (const sig of subsets(SIG_ALGS)) {
          const p = { kem, aead, sig };
          const root = policyRootHex(compilePolicy(p));
          const prev = seen.get(root);
          assert.equal(prev, undefined, `${key(p)} collides with ${prev}`);
          seen.set(root, key(p));
        }
      }
    }
    assert.equal(seen.size, 147);
    // The same id in another list is another policy.
    assert.notEqual(
      policyRootHex(compilePolicy({ kem: ['x25519-ml-kem-768'], aead: ['aes-256-gcm'], sig: ['ml-dsa-65'] })),
      policyRootHex(compilePolicy({ kem: ['ml-kem-768'], aead: ['chacha20-poly1305'], sig: ['ml-dsa-65'] })),
    );
  });

  test('same root under both providers', () => {
    fc.assert(
      fc.property(policyArb, (p) => {
        assert.equal(toHex(compilePolicy(p, nativeProvider).root), toHex(compilePolicy(p, portableProvider).root));
      }),
      { numRuns: 50, seed: 13 },
    );
    assert.equal(policyRootHex(compilePolicy(DEFAULT_POLICY, portableProvider)), DEFAULT_ROOT_HEX);
  });

  test('the compiled policy is frozen and copies its lists', () => {
    const kem: KemAlg[] = ['ml-kem-768'];
    const c = compilePolicy({ kem, aead: ['aes-256-gcm'], sig: ['ed25519'] });
    assert.ok(Object.isFrozen(c));
    kem.push('x25519');
    assert.deepEqual(c.kem, ['ml-kem-768']);
  });
});

describe('invalid policies -> INVALID_ARGUMENT', () => {
  test('empty, duplicate or unknown entries in any list', () => {
    const base = { kem: ['ml-kem-768'], aead: ['aes-256-gcm'], sig: ['ed25519'] } as AlgorithmPolicy;
    const cases: [string, Partial<Record<'kem' | 'aead' | 'sig', string[]>>][] = [
      ['empty kem', { kem: [] }],
      ['empty aead', { aead: [] }],
      ['empty sig', { sig: [] }],
      ['duplicate kem', { kem: ['x25519', 'ml-kem-768', 'x25519'] }],
      ['duplicate aead', { aead: ['aes-256-gcm', 'aes-256-gcm'] }],
      ['duplicate sig', { sig: ['ed25519', 'ed25519'] }],
      ['unknown kem', { kem: ['kyber-768'] }],
      ['unknown aead', { aead: ['aes-128-gcm'] }],
      ['unknown sig', { sig: ['rsa'] }],
      ['a sig name in the kem list', { kem: ['ed25519'] }],
      ['a kem name in the sig list', { sig: ['x25519'] }],
      ['empty name', { aead: [''] }],
      ['case differs', { sig: ['ED25519'] }],
    ];
    for (const [label, patch] of cases) assertInvalid({ ...base, ...patch } as AlgorithmPolicy, label);
  });

  test('names that are Object.prototype properties are unknown algorithms too', () => {
    // Exposes a bug in policy.ts ids(): `table[n]` reads inherited properties,
    // so "toString" etc. reach the CBOR encoder (plain Error, not PqnetError)
    // and "__proto__" is accepted, hashing an empty map into the root.
    for (const name of ['toString', 'constructor', 'hasOwnProperty', 'valueOf', '__proto__']) {
      assertInvalid({ kem: [name as KemAlg], aead: ['aes-256-gcm'], sig: ['ed25519'] }, `kem ${name}`);
      assertInvalid({ kem: ['ml-kem-768'], aead: ['aes-256-gcm'], sig: [name as SigAlg] }, `sig ${name}`);
    }
  });
});
