import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fc from 'fast-check';
import { base32Encode } from '../../src/core/base32.ts';
import { toHex } from '../../src/core/bytes.ts';
import { isPqnetError } from '../../src/core/errors.ts';
import { SeededRandom } from '../../src/core/random.ts';
import { SIG_SIZES, type SigAlg } from '../../src/secure/algorithms.ts';
import { generateIdentity, generatePrivateKey, identityFromPrivateKey, PEER_ID_PREFIX, PeerId } from '../../src/secure/identity.ts';
import { nativeProvider } from '../../src/secure/native.ts';
import { portableProvider } from '../../src/secure/portable.ts';

/** Spec values, written out here rather than imported (docs/spec/handshake.md). */
const ALG_BYTE: Record<SigAlg, number> = { 'ml-dsa-65': 1, 'slh-dsa-shake-128s': 2, ed25519: 3 };

function expectedPeerIdHex(alg: SigAlg, publicKey: Uint8Array): string {
  return crypto.createHash('sha3-256').update(Uint8Array.of(ALG_BYTE[alg])).update(publicKey).digest('hex');
}

function assertBadPeerId(text: string): void {
  assert.throws(
    () => PeerId.parse(text),
    (e: unknown) => isPqnetError(e) && e.code === 'BAD_PEER_ID',
    JSON.stringify(text),
  );
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

describe('PeerId derivation', () => {
  test('PeerId = SHA3-256(alg_id || pubkey), for each algorithm', () => {
    const cases: [SigAlg, Uint8Array][] = [
      ['ed25519', new SeededRandom('ed').bytes(32)],
      ['ml-dsa-65', new SeededRandom('ml').bytes(32)],
      ['slh-dsa-shake-128s', generatePrivateKey('slh-dsa-shake-128s')],
    ];
    for (const [alg, sk] of cases) {
      const id = identityFromPrivateKey(alg, sk);
      assert.equal(id.alg, alg);
      assert.equal(id.publicKey.length, SIG_SIZES[alg].publicKey);
      assert.equal(id.peerId.hex(), expectedPeerIdHex(alg, id.publicKey), alg);
      assert.equal(toHex(id.privateKey), toHex(sk));
      assert.ok(id.peerId.equals(PeerId.fromPublicKey(alg, id.publicKey)));
    }
  });

  test('the algorithm id is part of the hash: the same key bytes under two algs give two ids', () => {
    const pk = new SeededRandom('pk').bytes(32);
    const a = PeerId.fromPublicKey('ed25519', pk);
    const b = PeerId.fromPublicKey('slh-dsa-shake-128s', pk);
    assert.equal(a.hex(), expectedPeerIdHex('ed25519', pk));
    assert.equal(b.hex(), expectedPeerIdHex('slh-dsa-shake-128s', pk));
    assert.equal(a.equals(b), false);
  });

  test('same identity from the same private key under both providers', () => {
    for (const alg of ['ed25519', 'ml-dsa-65'] as const) {
      const sk = new SeededRandom(`both-${alg}`).bytes(SIG_SIZES[alg].privateKey);
      const n = identityFromPrivateKey(alg, sk, nativeProvider);
      const p = identityFromPrivateKey(alg, sk, portableProvider);
      assert.equal(toHex(n.publicKey), toHex(p.publicKey), alg);
      assert.ok(n.peerId.equals(p.peerId), alg);
      assert.equal(n.peerId.toString(), p.peerId.toString());
      // Signatures made through the identity verify under the other provider.
      const m = new TextEncoder().encode('hello');
      assert.equal(portableProvider.verify(alg, n.publicKey, m, n.sign(m)), true);
      assert.equal(nativeProvider.verify(alg, p.publicKey, m, p.sign(m)), true);
    }
  });

  test('generateIdentity: default alg is ml-dsa-65; seeded generation is repeatable; keys differ', () => {
    const a = generateIdentity();
    assert.equal(a.alg, 'ml-dsa-65');
    assert.equal(a.privateKey.length, 32);
    assert.equal(a.peerId.hex(), expectedPeerIdHex('ml-dsa-65', a.publicKey));
    const b = generateIdentity('ed25519', portableProvider, new SeededRandom('s'));
    const c = generateIdentity('ed25519', nativeProvider, new SeededRandom('s'));
    assert.ok(b.peerId.equals(c.peerId));
    assert.equal(generateIdentity('ed25519').peerId.equals(generateIdentity('ed25519').peerId), false);
  });

  test('the identity keeps its own copy of the private key', () => {
    const sk = new SeededRandom('copy').bytes(32);
    const id = identityFromPrivateKey('ed25519', sk);
    const before = toHex(id.privateKey);
    sk.fill(0);
    assert.equal(toHex(id.privateKey), before);
  });
});

describe('PeerId text form', () => {
  test('"pq1" + lowercase unpadded base32, 55 characters', () => {
    const bytes = new SeededRandom('text').bytes(32);
    const id = new PeerId(bytes);
    const s = id.toString();
    assert.equal(PEER_ID_PREFIX, 'pq1');
    assert.equal(s.length, 55);
    assert.match(s, /^pq1[a-z2-7]{52}$/);
    assert.equal(s, `pq1${base32Encode(bytes)}`);
    assert.equal(JSON.stringify({ id }), JSON.stringify({ id: s }));
    assert.equal(id.short(), `${s.slice(0, 9)}…${s.slice(-4)}`);
    assert.equal(id.hex(), toHex(bytes));
    // All-zero and all-one ids, by hand.
    assert.equal(new PeerId(new Uint8Array(32)).toString(), `pq1${'a'.repeat(52)}`);
    assert.equal(new PeerId(new Uint8Array(32).fill(0xff)).toString(), `pq1${'7'.repeat(51)}q`);
  });

  test('parse(toString()) round-trips for any 32 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (b) => {
        const id = new PeerId(b);
        const back = PeerId.parse(id.toString());
        assert.ok(back.equals(id));
        assert.equal(toHex(back.bytes), toHex(b));
        assert.equal(back.toString(), id.toString());
      }),
      { numRuns: 200, seed: 7 },
    );
  });

  test('the PeerId copies its bytes', () => {
    const b = new Uint8Array(32).fill(3);
    const id = new PeerId(b);
    b.fill(4);
    assert.equal(id.hex(), '03'.repeat(32));
  });

  test('parse rejects wrong prefix, wrong length, uppercase, padding, bad characters, non-canonical trailing bits', () => {
    const good = new PeerId(new SeededRandom('parse').bytes(32)).toString();
    PeerId.parse(good); // sanity
    const body = good.slice(3);
    const rejects = [
      '',
      'pq1',
      body,
      `pq2${body}`,
      `PQ1${body}`,
      `qp1${body}`,
      ` ${good}`,
      `${good} `,
      good.slice(0, -1), // 54 chars
      `${good}a`, // 56 chars
      `${good}aaaaaaaa`, // 33 bytes
      good.slice(0, -8), // 27 bytes
      `pq1${body.toUpperCase()}`,
      `pq1${body.slice(0, 10).toUpperCase()}${body.slice(10)}`,
      `${good}====`,
      `pq1${body.slice(0, -1)}1`,
      `pq1${body.slice(0, -1)}0`,
      `pq1${body.slice(0, -1)}=`,
    ];
    for (const t of rejects) assertBadPeerId(t);
  });

  test('parse rejects every last character whose 4 padding bits are not zero', () => {
    const body = new PeerId(new Uint8Array(32)).toString().slice(3, -1);
    // The 52nd character carries 1 data bit and 4 zero bits: only "a" and "q" are canonical.
    for (const c of ALPHABET) {
      const t = `pq1${body}${c}`;
      if (c === 'a' || c === 'q') assert.equal(PeerId.parse(t).toString(), t);
      else assertBadPeerId(t);
    }
  });

  test('the constructor refuses anything but 32 bytes', () => {
    for (const n of [0, 31, 33]) {
      assert.throws(
        () => new PeerId(new Uint8Array(n)),
        (e: unknown) => isPqnetError(e) && e.code === 'BAD_PEER_ID',
      );
    }
  });
});
