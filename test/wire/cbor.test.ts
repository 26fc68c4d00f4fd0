import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromHex, toHex } from '../../src/core/bytes.ts';
import { isPqnetError, type Reason } from '../../src/core/errors.ts';
import { decodeCbor, encodeCbor } from '../../src/wire/cbor.ts';

const CAP = 1 << 20;

function assertRejected(input: Uint8Array, code: Reason, label: string, cap = CAP): void {
  assert.throws(
    () => decodeCbor(input, cap),
    (e: unknown) => {
      assert.ok(isPqnetError(e), `${label}: expected a PqnetError, got ${String(e)}`);
      assert.equal(e.code, code, `${label}: ${e.message}`);
      return true;
    },
    label,
  );
}

describe('decodeCbor rejects', () => {
  test('input over the cap -> MSG_OVERSIZE, before looking at the bytes', () => {
    const valid = encodeCbor([1, 2, 3]);
    assert.deepEqual(decodeCbor(valid, valid.length), [1, 2, 3]);
    assertRejected(valid, 'MSG_OVERSIZE', 'valid but one byte over', valid.length - 1);
    assertRejected(new Uint8Array(100).fill(0xff), 'MSG_OVERSIZE', 'garbage over the cap', 99);
    assertRejected(new Uint8Array(1), 'MSG_OVERSIZE', 'cap 0', 0);
  });

  test('garbage, empty, truncated and trailing bytes -> MSG_MALFORMED', () => {
    const cases: [string, string][] = [
      ['empty', ''],
      ['break byte', 'ff'],
      ['reserved additional info', '1c'],
      ['truncated array', '8201'],
      ['truncated uint16', '1901'],
      ['truncated byte string', '45010203'],
      ['truncated text', '6361'],
      ['truncated map', 'a16161'],
      ['trailing byte', '0102'],
      ['two items', '8001'],
      ['byte string length past the end', '5bffffffffffffffff'],
    ];
    for (const [label, hex] of cases) assertRejected(fromHex(hex), 'MSG_MALFORMED', label);
  });

  test('100000 nested arrays -> MSG_MALFORMED without crashing the process', () => {
    assertRejected(new Uint8Array(100_000).fill(0x81), 'MSG_MALFORMED', 'deep arrays');
    const maps = new Uint8Array(3 * 30_000);
    for (let i = 0; i < maps.length; i += 3) maps.set([0xa1, 0x61, 0x61], i);
    assertRejected(maps, 'MSG_MALFORMED', 'deep maps');
    // The decoder still works afterwards.
    assert.deepEqual(decodeCbor(encodeCbor([[[1]]]), CAP), [[[1]]]);
  });

  test('what strict decoding refuses, with the code observed', () => {
    // Each is refused as MSG_MALFORMED: cborg's strict options reject them
    // while parsing, before the canonical re-encode check runs.
    const cases: [string, string][] = [
      ['non-minimal integer 0x1801', '1801'],
      ['non-minimal uint16', '190001'],
      ['non-minimal length', '5800'],
      ['indefinite-length array', '9fff'],
      ['indefinite-length byte string', '5f4101ff'],
      ['indefinite-length text', '7f6161ff'],
      ['indefinite-length map', 'bfff'],
      ['undefined', 'f7'],
      ['NaN (half)', 'f97e00'],
      ['NaN (double)', 'fb7ff8000000000000'],
      ['+Infinity', 'f97c00'],
      ['-Infinity', 'f9fc00'],
      ['duplicate map keys', 'a2616101616102'],
      ['2^64-1', '1bffffffffffffffff'],
      ['2^53', '1b0020000000000000'],
      ['-2^64', '3bffffffffffffffff'],
      ['tag 2 (bignum)', 'c24101'],
      ['tag 1 (epoch time)', 'c101'],
      ['simple value 0', 'e0'],
      ['simple value 255', 'f8ff'],
      ['integer map key', 'a10102'],
    ];
    for (const [label, hex] of cases) assertRejected(fromHex(hex), 'MSG_MALFORMED', label);
  });

  test('strictly valid but non-canonical encodings -> MSG_NON_CANONICAL', () => {
    const cases: [string, string][] = [
      ['1.0 as a 64-bit float', 'fb3ff0000000000000'],
      ['1.0 as a 16-bit float', 'f93c00'],
      ['1.5 as a 64-bit float', 'fb3ff8000000000000'],
      ['1.5 as a 32-bit float', 'fa3fc00000'],
      ['-0.0', 'f98000'],
      ['unsorted map keys', 'a2616201616102'],
    ];
    for (const [label, hex] of cases) assertRejected(fromHex(hex), 'MSG_NON_CANONICAL', label);
    // The canonical forms of the same values are accepted.
    assert.equal(decodeCbor(fromHex('01'), CAP), 1);
    assert.equal(decodeCbor(fromHex('f93e00'), CAP), 1.5);
    assert.deepEqual(decodeCbor(fromHex('a2616101616202'), CAP), { a: 1, b: 2 });
  });

  test('every failure is a PqnetError with one of the three codes, for any input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        try {
          decodeCbor(b, 48);
        } catch (e) {
          assert.ok(isPqnetError(e), String(e));
          assert.ok(['MSG_OVERSIZE', 'MSG_MALFORMED', 'MSG_NON_CANONICAL'].includes(e.code), e.code);
        }
      }),
      { numRuns: 2_000, seed: 8 },
    );
  });

  test('mutated valid encodings either decode canonically or fail with one of the three codes', () => {
    const item = fc.oneof(fc.maxSafeNat(), fc.uint8Array({ maxLength: 12 }), fc.string({ maxLength: 8 }), fc.boolean());
    fc.assert(
      fc.property(fc.array(fc.oneof(item, fc.array(item, { maxLength: 3 })), { maxLength: 6 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (v, at, byte) => {
        const enc = encodeCbor(v).slice();
        enc[at % enc.length] = byte;
        for (const input of [enc, enc.subarray(0, at % enc.length)]) {
          try {
            const out = decodeCbor(input, CAP);
            assert.equal(toHex(encodeCbor(out)), toHex(input), 'accepted input must be canonical');
          } catch (e) {
            assert.ok(isPqnetError(e), String(e));
            assert.ok(['MSG_MALFORMED', 'MSG_NON_CANONICAL'].includes(e.code), e.code);
          }
        }
      }),
      { numRuns: 1_000, seed: 18 },
    );
  });
});

describe('encode/decode round trip', () => {
  test('known encodings', () => {
    assert.equal(toHex(encodeCbor([])), '80');
    assert.equal(toHex(encodeCbor([0, 23, 24, 255, 256, 65_536])), '860017181818ff1901001a00010000');
    assert.equal(toHex(encodeCbor(Uint8Array.of(1, 2))), '420102');
    assert.equal(toHex(encodeCbor('a')), '6161');
    assert.equal(toHex(encodeCbor({ b: 1, a: 2 })), 'a2616102616201');
  });

  test('arrays of uints, byte strings and text', () => {
    const item = fc.oneof(fc.maxSafeNat(), fc.uint8Array({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }));
    fc.assert(
      fc.property(fc.array(item, { maxLength: 20 }), (value) => {
        const enc = encodeCbor(value);
        assert.deepEqual(decodeCbor(enc, enc.length), value);
        assert.equal(toHex(encodeCbor(decodeCbor(enc, enc.length))), toHex(enc));
      }),
      { numRuns: 300, seed: 9 },
    );
  });

  test('nested values with negative integers, booleans, null and string-keyed maps', () => {
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
        fc.boolean(),
        fc.constant(null),
        fc.uint8Array({ maxLength: 10 }),
        fc.string({ unit: 'grapheme', maxLength: 8 }),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(fc.string({ maxLength: 6 }), tie('node'), { maxKeys: 4, noNullPrototype: true }),
      ),
    })).node;
    fc.assert(
      fc.property(value, (v) => {
        const enc = encodeCbor(v);
        assert.deepEqual(decodeCbor(enc, enc.length), v);
      }),
      { numRuns: 300, seed: 10 },
    );
  });
});
