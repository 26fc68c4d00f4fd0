/**
 * The two crypto providers must be byte-compatible: every primitive is crossed
 * native -> portable and portable -> native, plus known-answer vectors.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fc from 'fast-check';
import { concatBytes, fromHex, toHex } from '../../src/core/bytes.ts';
import { isPqnetError, type Reason } from '../../src/core/errors.ts';
import { SeededRandom } from '../../src/core/random.ts';
import { AEAD_ALGS, SIG_SIZES, type AeadAlg, type SigAlg } from '../../src/secure/algorithms.ts';
import { generatePrivateKey } from '../../src/secure/identity.ts';
import { nativeProvider } from '../../src/secure/native.ts';
import { createPortableProvider, portableProvider } from '../../src/secure/portable.ts';
import type { CryptoProvider } from '../../src/secure/provider.ts';
import { getProvider, isNativeAvailable } from '../../src/secure/providers.ts';

const PROVIDERS: readonly CryptoProvider[] = [nativeProvider, portableProvider];
/** [a, b]: a produces, b consumes. Both directions. */
const DIRECTIONS: readonly (readonly [CryptoProvider, CryptoProvider])[] = [
  [nativeProvider, portableProvider],
  [portableProvider, nativeProvider],
];

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
const flipBit = (b: Uint8Array, index: number, bit = 0): Uint8Array => {
  const c = b.slice();
  c[index]! ^= 1 << bit;
  return c;
};

function assertCode(fn: () => unknown, code: Reason, label: string): void {
  assert.throws(
    fn,
    (e: unknown) => {
      assert.ok(isPqnetError(e), `${label}: expected a PqnetError, got ${String(e)}`);
      assert.equal(e.code, code, `${label}: wrong code`);
      return true;
    },
    label,
  );
}

const fcParams = { numRuns: 40, seed: 0x5eed } as const;

describe('provider selection', () => {
  test('getProvider() picks native on this runtime; names select each provider', () => {
    assert.equal(isNativeAvailable(), true);
    assert.equal(getProvider(), nativeProvider);
    assert.equal(getProvider('native'), nativeProvider);
    assert.equal(getProvider('portable'), portableProvider);
    assert.equal(nativeProvider.name, 'native');
    assert.equal(portableProvider.name, 'portable');
    assert.equal(nativeProvider.deterministicEncapsulation, false);
    assert.equal(portableProvider.deterministicEncapsulation, true);
  });
});

describe('SHA3-256, HMAC-SHA3-256, HKDF-SHA3-256', () => {
  test('SHA3-256 known answers in both providers', () => {
    for (const p of PROVIDERS) {
      assert.equal(toHex(p.sha3_256(utf8('abc'))), '3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532', p.name);
      assert.equal(toHex(p.sha3_256(new Uint8Array(0))), 'a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a', p.name);
    }
  });

  test('SHA3-256 agrees across providers for any input (incl. around the 136-byte rate)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (data) => {
        assert.equal(toHex(nativeProvider.sha3_256(data)), toHex(portableProvider.sha3_256(data)));
      }),
      fcParams,
    );
    for (const n of [135, 136, 137, 271, 272, 273]) {
      const data = new SeededRandom(`sha3-${n}`).bytes(n);
      assert.equal(toHex(nativeProvider.sha3_256(data)), toHex(portableProvider.sha3_256(data)), `length ${n}`);
    }
  });

  test('HMAC-SHA3-256 agrees across providers for any key length (incl. keys longer than a block)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.uint8Array({ minLength: 0, maxLength: 300 }), (key, data) => {
        const n = nativeProvider.hmacSha3_256(key, data);
        const p = portableProvider.hmacSha3_256(key, data);
        assert.equal(n.length, 32);
        assert.equal(toHex(n), toHex(p));
      }),
      fcParams,
    );
    // Different keys give different tags.
    for (const p of PROVIDERS) {
      assert.notEqual(toHex(p.hmacSha3_256(bytes(32, 1), utf8('m'))), toHex(p.hmacSha3_256(bytes(32, 2), utf8('m'))), p.name);
    }
  });

  test('HKDF-SHA3-256 agrees across providers and with RFC 5869 computed from HMAC', () => {
    // RFC 5869 written out on node:crypto's HMAC, independent of either hkdf().
    const refHkdf = (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array => {
      const hmac = (k: Uint8Array, d: Uint8Array) => new Uint8Array(crypto.createHmac('sha3-256', k).update(d).digest());
      const prk = hmac(salt.length === 0 ? new Uint8Array(32) : salt, ikm);
      let t: Uint8Array = new Uint8Array(0);
      let okm: Uint8Array = new Uint8Array(0);
      for (let i = 1; okm.length < length; i++) {
        t = hmac(prk, concatBytes(t, info, Uint8Array.of(i)));
        okm = concatBytes(okm, t);
      }
      return okm.subarray(0, length);
    };
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 80 }),
        fc.integer({ min: 1, max: 200 }),
        (ikm, salt, info, length) => {
          const n = nativeProvider.hkdfSha3_256(ikm, salt, info, length);
          const p = portableProvider.hkdfSha3_256(ikm, salt, info, length);
          const r = refHkdf(ikm, salt, info, length);
          assert.equal(n.length, length);
          assert.equal(toHex(n), toHex(r));
          assert.equal(toHex(p), toHex(r));
        },
      ),
      fcParams,
    );
    // The largest output RFC 5869 allows; one byte more is refused by both.
    const ikm = bytes(32, 7);
    assert.equal(toHex(nativeProvider.hkdfSha3_256(ikm, ikm, ikm, 255 * 32)), toHex(portableProvider.hkdfSha3_256(ikm, ikm, ikm, 255 * 32)));
    for (const p of PROVIDERS) assert.throws(() => p.hkdfSha3_256(ikm, ikm, ikm, 255 * 32 + 1), p.name);
  });

  test('HKDF-SHA3-256 with length 0 behaves the same in both providers', () => {
    // Exposes a divergence: native (crypto.hkdfSync) throws a plain Error for
    // length 0, portable (@noble/hashes) returns an empty array.
    const run = (p: CryptoProvider): string => {
      try {
        return `ok:${toHex(p.hkdfSha3_256(bytes(32, 1), new Uint8Array(0), new Uint8Array(0), 0))}`;
      } catch {
        return 'throws';
      }
    };
    assert.equal(run(nativeProvider), run(portableProvider));
  });
});

describe('X25519', () => {
  test('RFC 7748 section 6.1 vector in both providers', () => {
    const alicePriv = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const bobPriv = fromHex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    for (const p of PROVIDERS) {
      const a = p.x25519FromPrivate(alicePriv);
      const b = p.x25519FromPrivate(bobPriv);
      assert.equal(toHex(a.publicKey), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', p.name);
      assert.equal(toHex(b.publicKey), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f', p.name);
      assert.equal(toHex(a.derive(b.publicKey)), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742', p.name);
      assert.equal(toHex(b.derive(a.publicKey)), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742', p.name);
    }
  });

  test('same public key from the same private key; same shared secret across providers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (x, y) => {
        for (const [a, b] of DIRECTIONS) {
          const ka = a.x25519FromPrivate(x);
          const kb = b.x25519FromPrivate(y);
          assert.equal(toHex(ka.publicKey), toHex(b.x25519FromPrivate(x).publicKey));
          assert.equal(toHex(ka.derive(kb.publicKey)), toHex(kb.derive(ka.publicKey)));
        }
      }),
      { ...fcParams, numRuns: 20 },
    );
  });

  test('the top bit of a peer public key is ignored identically (RFC 7748 section 5)', () => {
    const priv = bytes(32, 0x42);
    const peer = portableProvider.x25519FromPrivate(bytes(32, 0x17)).publicKey;
    const high = peer.slice();
    high[31]! |= 0x80;
    for (const p of PROVIDERS) {
      const k = p.x25519FromPrivate(priv);
      assert.equal(toHex(k.derive(high)), toHex(k.derive(peer)), p.name);
    }
  });

  test('low-order points (and their non-canonical encodings) -> HS_BAD_KEY in both', () => {
    const P = 2n ** 255n - 19n;
    const le = (n: bigint): Uint8Array => {
      const b = new Uint8Array(32);
      for (let i = 0; i < 32; i++) {
        b[i] = Number((n >> BigInt(8 * i)) & 0xffn);
      }
      return b;
    };
    const lowOrder = [
      0n,
      1n,
      P - 1n,
      325606250916557431795983626356110631294008115727848805560023387167927233504n,
      39382357235489614581723060781553021112529911719440698176882885853963445705823n,
      P, // = 0 mod p
      P + 1n, // = 1 mod p
    ];
    for (const p of PROVIDERS) {
      const k = p.x25519FromPrivate(bytes(32, 9));
      assertCode(() => k.derive(new Uint8Array(32)), 'HS_BAD_KEY', `${p.name} all-zero`);
      for (const u of lowOrder) assertCode(() => k.derive(le(u)), 'HS_BAD_KEY', `${p.name} u=${u}`);
    }
  });

  test('wrong lengths: private key -> INVALID_ARGUMENT, peer key -> HS_BAD_KEY, in both', () => {
    for (const p of PROVIDERS) {
      assertCode(() => p.x25519FromPrivate(new Uint8Array(31)), 'INVALID_ARGUMENT', `${p.name} priv 31`);
      assertCode(() => p.x25519FromPrivate(new Uint8Array(33)), 'INVALID_ARGUMENT', `${p.name} priv 33`);
      const k = p.x25519FromPrivate(bytes(32, 3));
      assertCode(() => k.derive(new Uint8Array(31).fill(5)), 'HS_BAD_KEY', `${p.name} peer 31`);
      assertCode(() => k.derive(new Uint8Array(33).fill(5)), 'HS_BAD_KEY', `${p.name} peer 33`);
    }
  });
});

describe('ML-KEM-768', () => {
  const seed = new SeededRandom('ml-kem seed').bytes(64);

  test('same public key from the same 64-byte seed', () => {
    for (const s of [seed, new Uint8Array(64), bytes(64, 0xff)]) {
      const n = nativeProvider.mlKem768FromSeed(s);
      const p = portableProvider.mlKem768FromSeed(s);
      assert.equal(n.publicKey.length, 1184);
      assert.equal(toHex(n.publicKey), toHex(p.publicKey));
    }
    assert.notEqual(toHex(nativeProvider.mlKem768FromSeed(seed).publicKey), toHex(nativeProvider.mlKem768FromSeed(flipBit(seed, 0)).publicKey));
  });

  test('encapsulate in one provider, decapsulate in the other (both directions)', () => {
    for (const [a, b] of DIRECTIONS) {
      const receiver = b.mlKem768FromSeed(seed);
      const enc = a.mlKem768Encapsulate(receiver.publicKey);
      assert.equal(enc.ciphertext.length, 1088);
      assert.equal(enc.sharedSecret.length, 32);
      assert.equal(toHex(receiver.decapsulate(enc.ciphertext)), toHex(enc.sharedSecret), `${a.name} -> ${b.name}`);
      // The sender's own provider agrees too.
      assert.equal(toHex(a.mlKem768FromSeed(seed).decapsulate(enc.ciphertext)), toHex(enc.sharedSecret));
    }
  });

  test('portable honours a caller-chosen message (deterministic); native refuses one', () => {
    const pk = nativeProvider.mlKem768FromSeed(seed).publicKey;
    const m = bytes(32, 0x33);
    const e1 = portableProvider.mlKem768Encapsulate(pk, m);
    const e2 = portableProvider.mlKem768Encapsulate(pk, m);
    assert.equal(toHex(e1.ciphertext), toHex(e2.ciphertext));
    assert.equal(toHex(e1.sharedSecret), toHex(e2.sharedSecret));
    assert.notEqual(toHex(portableProvider.mlKem768Encapsulate(pk, bytes(32, 0x34)).ciphertext), toHex(e1.ciphertext));
    assert.equal(toHex(nativeProvider.mlKem768FromSeed(seed).decapsulate(e1.ciphertext)), toHex(e1.sharedSecret));
    assertCode(() => nativeProvider.mlKem768Encapsulate(pk, m), 'UNSUPPORTED_ALGORITHM', 'native with message');
  });

  test('a tampered ciphertext decapsulates to a different secret, identically in both (implicit rejection)', () => {
    const pk = nativeProvider.mlKem768FromSeed(seed).publicKey;
    const enc = portableProvider.mlKem768Encapsulate(pk, bytes(32, 0x44));
    for (const index of [0, 500, 1087]) {
      const bad = flipBit(enc.ciphertext, index, 3);
      const n = nativeProvider.mlKem768FromSeed(seed).decapsulate(bad);
      const p = portableProvider.mlKem768FromSeed(seed).decapsulate(bad);
      assert.equal(n.length, 32);
      assert.notEqual(toHex(n), toHex(enc.sharedSecret), `index ${index}`);
      assert.equal(toHex(n), toHex(p), `index ${index}`);
    }
  });

  test('wrong-length ciphertext -> HS_BAD_KEY in both', () => {
    for (const p of PROVIDERS) {
      const kp = p.mlKem768FromSeed(seed);
      for (const n of [0, 1087, 1089]) assertCode(() => kp.decapsulate(new Uint8Array(n)), 'HS_BAD_KEY', `${p.name} ct ${n}`);
    }
  });

  test('invalid encapsulation key (modulus check) or wrong length -> HS_BAD_KEY in both', () => {
    for (const p of PROVIDERS) {
      assertCode(() => p.mlKem768Encapsulate(bytes(1184, 0xff)), 'HS_BAD_KEY', `${p.name} 0xff key`);
      assertCode(() => p.mlKem768Encapsulate(new Uint8Array(1183)), 'HS_BAD_KEY', `${p.name} 1183`);
      assertCode(() => p.mlKem768Encapsulate(new Uint8Array(1185)), 'HS_BAD_KEY', `${p.name} 1185`);
    }
  });

  test('wrong-length seed -> INVALID_ARGUMENT in both', () => {
    for (const p of PROVIDERS) {
      assertCode(() => p.mlKem768FromSeed(new Uint8Array(32)), 'INVALID_ARGUMENT', `${p.name} 32`);
      assertCode(() => p.mlKem768FromSeed(new Uint8Array(65)), 'INVALID_ARGUMENT', `${p.name} 65`);
    }
  });
});

describe('signatures', () => {
  const msg = utf8('pqnet transcript');

  /** Wrong-length and malformed inputs must verify false and never throw. */
  function checkMalformed(alg: SigAlg, publicKey: Uint8Array, signature: Uint8Array): void {
    const s = SIG_SIZES[alg];
    for (const p of PROVIDERS) {
      const cases: [string, Uint8Array, Uint8Array][] = [
        ['short key', publicKey.subarray(0, s.publicKey - 1), signature],
        ['long key', concatBytes(publicKey, Uint8Array.of(0)), signature],
        ['empty key', new Uint8Array(0), signature],
        ['short sig', publicKey, signature.subarray(0, s.signature - 1)],
        ['long sig', publicKey, concatBytes(signature, Uint8Array.of(0))],
        ['empty sig', publicKey, new Uint8Array(0)],
        ['0xff key', bytes(s.publicKey, 0xff), signature],
        ['zero sig', publicKey, new Uint8Array(s.signature)],
      ];
      for (const [label, pk, sig] of cases) {
        let r: boolean | undefined;
        assert.doesNotThrow(() => {
          r = p.verify(alg, pk, msg, sig);
        }, `${p.name} ${alg} ${label}`);
        assert.equal(r, false, `${p.name} ${alg} ${label}`);
      }
    }
  }

  /** Signatures from each side verify on the other; bit flips and other messages do not. */
  function checkCross(alg: SigAlg, sigs: readonly (readonly [CryptoProvider, Uint8Array])[], publicKey: Uint8Array): void {
    for (const [signer, sig] of sigs) {
      assert.equal(sig.length, SIG_SIZES[alg].signature);
      for (const v of PROVIDERS) {
        const label = `${alg} signed by ${signer.name}, verified by ${v.name}`;
        assert.equal(v.verify(alg, publicKey, msg, sig), true, label);
        assert.equal(v.verify(alg, publicKey, utf8('another message'), sig), false, `${label}: wrong message`);
        assert.equal(v.verify(alg, publicKey, msg, flipBit(sig, 0)), false, `${label}: first bit`);
        assert.equal(v.verify(alg, publicKey, msg, flipBit(sig, sig.length >> 1, 5)), false, `${label}: middle bit`);
        assert.equal(v.verify(alg, publicKey, msg, flipBit(sig, sig.length - 1, 2)), false, `${label}: last byte`);
        assert.equal(v.verify(alg, flipBit(publicKey, 1), msg, sig), false, `${label}: other key`);
      }
    }
  }

  test('ed25519: RFC 8032 test 1 in both providers', () => {
    const sk = fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
    const sigHex =
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';
    for (const p of PROVIDERS) {
      const k = p.signingKey('ed25519', sk);
      assert.equal(k.alg, 'ed25519');
      assert.equal(toHex(k.publicKey), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', p.name);
      assert.equal(toHex(k.sign(new Uint8Array(0))), sigHex, p.name);
      assert.equal(p.verify('ed25519', k.publicKey, new Uint8Array(0), fromHex(sigHex)), true, p.name);
    }
  });

  test('ed25519: same key, byte-identical (deterministic) signatures, cross-verification', () => {
    const sk = new SeededRandom('ed25519 key').bytes(32);
    const n = nativeProvider.signingKey('ed25519', sk);
    const p = portableProvider.signingKey('ed25519', sk);
    assert.equal(toHex(n.publicKey), toHex(p.publicKey));
    const sn = n.sign(msg);
    const sp = p.sign(msg);
    assert.equal(toHex(sn), toHex(sp));
    checkCross('ed25519', [[nativeProvider, sn], [portableProvider, sp]], n.publicKey);
    checkMalformed('ed25519', n.publicKey, sn);
  });

  test('ed25519: both providers agree on the ed25519-speccheck edge cases', () => {
    // Vectors from novifinancial/ed25519-speccheck (small-order and mixed-order
    // A and R, S >= L, non-canonical R). Whatever the verdict, a peer must get
    // the same answer from either provider. Exposes a divergence: @noble/curves
    // verifies with the cofactored equation ([8]SB = [8]R + [8]kA) even with
    // zip215: false, OpenSSL with the cofactorless one.
    const vectors: [string, string, string][] = [
      ['2a66241a42a9ee12994d8068dcf1bb7dfc6637b45450acd43711f637fa5080fc', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000'],
      ['8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000'],
      ['9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04'],
      ['9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04'],
      ['9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41', 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa182ef1a5b928da07fec769cc8a12db6bcf70dab3f3227fa315e9d5e3e01a3405'],
      ['aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab', 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e'],
      ['e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c', 'cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d', '160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09'],
      ['9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79', 'cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d', '9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009'],
      ['e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c', 'cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d', '21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405'],
      ['85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40', '442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623', 'e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514'],
      ['85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40', '442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623', '8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22'],
      ['fdaebc429f4a735932a160da1301080c13280eea8bc280d1b392c6b9e6ba3a5a', 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43', 'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f454d370c8d9fc323a41450f8d513eafeb5b0697390c1e505a0d4ddc71f566607'],
      ['84b698d39be126ff55fe45079e6c8bf64a0d7db6994560b4e96b7021eb39c1a1', 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43', 'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f084d5b99c2a9463d9c8bd5026916996984eeec87ddf1d3be329006ace1b37b09'],
    ];
    const disagreements: string[] = [];
    vectors.forEach(([m, pk, sig], i) => {
      const n = nativeProvider.verify('ed25519', fromHex(pk), fromHex(m), fromHex(sig));
      const p = portableProvider.verify('ed25519', fromHex(pk), fromHex(m), fromHex(sig));
      if (n !== p) disagreements.push(`#${i}: native=${n} portable=${p}`);
    });
    assert.deepEqual(disagreements, []);
  });

  test('ml-dsa-65: same key; native and deterministic/hedged portable signatures cross-verify', () => {
    const sk = new SeededRandom('ml-dsa key').bytes(32);
    const n = nativeProvider.signingKey('ml-dsa-65', sk);
    const p = portableProvider.signingKey('ml-dsa-65', sk);
    const det = createPortableProvider({ signingRandom: null }).signingKey('ml-dsa-65', sk);
    assert.equal(n.alg, 'ml-dsa-65');
    assert.equal(n.publicKey.length, 1952);
    assert.equal(toHex(n.publicKey), toHex(p.publicKey));
    assert.equal(toHex(n.publicKey), toHex(det.publicKey));
    const sDet = det.sign(msg);
    assert.equal(toHex(det.sign(msg)), toHex(sDet), 'signingRandom: null is deterministic');
    const seeded1 = createPortableProvider({ signingRandom: new SeededRandom('hedge') }).signingKey('ml-dsa-65', sk).sign(msg);
    const seeded2 = createPortableProvider({ signingRandom: new SeededRandom('hedge') }).signingKey('ml-dsa-65', sk).sign(msg);
    assert.equal(toHex(seeded1), toHex(seeded2), 'the same signing Random gives the same signature');
    checkCross(
      'ml-dsa-65',
      [
        [nativeProvider, n.sign(msg)],
        [portableProvider, p.sign(msg)],
        [portableProvider, sDet],
        [portableProvider, seeded1],
      ],
      n.publicKey,
    );
    checkMalformed('ml-dsa-65', n.publicKey, sDet);
  });

  test('slh-dsa-shake-128s: same key; one signature from each provider cross-verifies', () => {
    const sk = generatePrivateKey('slh-dsa-shake-128s');
    assert.equal(sk.length, 64);
    const n = nativeProvider.signingKey('slh-dsa-shake-128s', sk);
    const p = portableProvider.signingKey('slh-dsa-shake-128s', sk);
    assert.equal(n.publicKey.length, 32);
    assert.equal(toHex(n.publicKey), toHex(p.publicKey));
    // SLH-DSA signing is slow (portable: seconds): exactly one signature each.
    checkCross(
      'slh-dsa-shake-128s',
      [
        [nativeProvider, n.sign(msg)],
        [portableProvider, p.sign(msg)],
      ],
      n.publicKey,
    );
    checkMalformed('slh-dsa-shake-128s', n.publicKey, new Uint8Array(SIG_SIZES['slh-dsa-shake-128s'].signature).fill(1));
  });

  test('wrong-length private key -> INVALID_ARGUMENT in both', () => {
    for (const p of PROVIDERS) {
      for (const [alg, s] of Object.entries(SIG_SIZES) as [SigAlg, (typeof SIG_SIZES)[SigAlg]][]) {
        assertCode(() => p.signingKey(alg, new Uint8Array(s.privateKey - 1)), 'INVALID_ARGUMENT', `${p.name} ${alg}`);
        assertCode(() => p.signingKey(alg, new Uint8Array(s.privateKey + 1)), 'INVALID_ARGUMENT', `${p.name} ${alg}`);
      }
    }
  });
});

describe('AEAD', () => {
  test('ChaCha20-Poly1305: RFC 8439 section 2.8.2 vector in both providers', () => {
    const key = fromHex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
    const nonce = fromHex('070000004041424344454647');
    const aad = fromHex('50515253c0c1c2c3c4c5c6c7');
    const pt = utf8("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    for (const p of PROVIDERS) {
      const sealed = p.aead('chacha20-poly1305', key).seal(nonce, aad, pt);
      assert.equal(sealed.length, pt.length + 16);
      assert.equal(toHex(sealed.subarray(0, 16)), 'd31a8d34648e60db7b86afbc53ef7ec2', p.name);
      assert.equal(toHex(sealed.subarray(-16)), '1ae10b594f09e26a7e902ecbd0600691', p.name);
    }
  });

  test('AES-256-GCM: NIST test cases 13 and 14 in both providers', () => {
    for (const p of PROVIDERS) {
      const a = p.aead('aes-256-gcm', new Uint8Array(32));
      assert.equal(toHex(a.seal(new Uint8Array(12), new Uint8Array(0), new Uint8Array(0))), '530f8afbc74536b9a963b4f1c4cb738b', p.name);
      assert.equal(
        toHex(a.seal(new Uint8Array(12), new Uint8Array(0), new Uint8Array(16))),
        'cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919',
        p.name,
      );
    }
  });

  for (const alg of AEAD_ALGS) {
    describe(alg, () => {
      test('identical ciphertext for the same inputs; each opens the other', () => {
        fc.assert(
          fc.property(
            fc.uint8Array({ minLength: 32, maxLength: 32 }),
            fc.uint8Array({ minLength: 12, maxLength: 12 }),
            fc.uint8Array({ maxLength: 64 }),
            fc.uint8Array({ maxLength: 300 }),
            (key, nonce, aad, pt) => {
              for (const [a, b] of DIRECTIONS) {
                const sealed = a.aead(alg, key).seal(nonce, aad, pt);
                assert.equal(sealed.length, pt.length + 16);
                assert.equal(toHex(sealed), toHex(b.aead(alg, key).seal(nonce, aad, pt)));
                const opened = b.aead(alg, key).open(nonce, aad, sealed);
                assert.ok(opened !== null, `${a.name} -> ${b.name}`);
                assert.equal(toHex(opened), toHex(pt));
              }
            },
          ),
          fcParams,
        );
      });

      test('seal with a list of parts and a reserve: same bytes after the prefix, opens in both', () => {
        fc.assert(
          fc.property(
            fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }),
            fc.integer({ min: 0, max: 9 }),
            (parts, reserve) => {
              const key = bytes(32, 0x5a);
              const nonce = bytes(12, 0x01);
              const aad = utf8('hdr');
              const whole = concatBytes(...parts);
              const reference = nativeProvider.aead(alg, key).seal(nonce, aad, whole);
              for (const p of PROVIDERS) {
                const sealed = p.aead(alg, key).seal(nonce, aad, parts, reserve);
                assert.equal(sealed.length, reserve + whole.length + 16, p.name);
                assert.equal(toHex(sealed.subarray(reserve)), toHex(reference), p.name);
                for (const q of PROVIDERS) {
                  const opened = q.aead(alg, key).open(nonce, aad, sealed.subarray(reserve));
                  assert.ok(opened !== null);
                  assert.equal(toHex(opened), toHex(whole), `${p.name} -> ${q.name}`);
                }
              }
            },
          ),
          fcParams,
        );
      });

      test('tampered tag, ciphertext, aad, nonce, key or length -> open returns null in both', () => {
        const key = bytes(32, 0x11);
        const nonce = bytes(12, 0x22);
        const aad = utf8('associated');
        const pt = utf8('the plaintext of a frame');
        for (const [a, b] of DIRECTIONS) {
          const sealed = a.aead(alg, key).seal(nonce, aad, pt);
          const box = b.aead(alg, key);
          const label = `${a.name} -> ${b.name}`;
          assert.equal(box.open(nonce, aad, flipBit(sealed, sealed.length - 1)), null, `${label}: tag`);
          assert.equal(box.open(nonce, aad, flipBit(sealed, sealed.length - 16, 7)), null, `${label}: tag first byte`);
          assert.equal(box.open(nonce, aad, flipBit(sealed, 0)), null, `${label}: ciphertext`);
          assert.equal(box.open(nonce, utf8('associatee'), sealed), null, `${label}: aad`);
          assert.equal(box.open(nonce, new Uint8Array(0), sealed), null, `${label}: empty aad`);
          assert.equal(box.open(flipBit(nonce, 11), aad, sealed), null, `${label}: nonce`);
          assert.equal(b.aead(alg, flipBit(key, 0)).open(nonce, aad, sealed), null, `${label}: key`);
          assert.equal(box.open(nonce, aad, sealed.subarray(0, sealed.length - 1)), null, `${label}: truncated`);
          assert.equal(box.open(nonce, aad, sealed.subarray(1)), null, `${label}: front cut`);
          assert.equal(box.open(nonce, aad, concatBytes(sealed, Uint8Array.of(0))), null, `${label}: extended`);
          assert.equal(box.open(nonce, aad, sealed.subarray(0, 15)), null, `${label}: shorter than a tag`);
          assert.equal(box.open(nonce, aad, new Uint8Array(0)), null, `${label}: empty`);
          // And the untouched box still opens.
          assert.equal(toHex(box.open(nonce, aad, sealed) ?? new Uint8Array(0)), toHex(pt), label);
        }
      });
    });
  }

  test('an AEAD key of the wrong length is refused by both providers', () => {
    // Exposes a divergence: portable aead('aes-256-gcm', 16-byte key) silently
    // runs AES-128-GCM (24 bytes: AES-192), where native refuses the key.
    const algs: readonly AeadAlg[] = AEAD_ALGS;
    const outcome = (p: CryptoProvider, alg: AeadAlg, n: number): string => {
      try {
        return `sealed:${toHex(p.aead(alg, bytes(n, 1)).seal(bytes(12, 0), new Uint8Array(0), utf8('x')))}`;
      } catch {
        return 'throws';
      }
    };
    for (const alg of algs) {
      for (const n of [16, 24, 31]) {
        assert.equal(outcome(nativeProvider, alg, n), 'throws', `native ${alg} key ${n}`);
        assert.equal(outcome(portableProvider, alg, n), 'throws', `portable ${alg} key ${n}`);
      }
    }
  });
});
