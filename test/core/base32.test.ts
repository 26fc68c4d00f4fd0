import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { base32Decode, base32Encode } from '../../src/core/base32.ts';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString('hex'));

const RFC4648: [string, string][] = [
  ['', ''],
  ['f', 'my'],
  ['fo', 'mzxq'],
  ['foo', 'mzxw6'],
  ['foob', 'mzxw6yq'],
  ['fooba', 'mzxw6ytb'],
  ['foobar', 'mzxw6ytboi'],
];

test('RFC 4648 section 10 vectors, lowercased and unpadded', () => {
  for (const [plain, enc] of RFC4648) {
    assert.equal(base32Encode(utf8(plain)), enc, plain);
    assert.equal(hex(base32Decode(enc)), hex(utf8(plain)), enc);
  }
});

test('all-zero and all-one bytes', () => {
  assert.equal(base32Encode(new Uint8Array(5)), 'aaaaaaaa');
  assert.equal(base32Encode(new Uint8Array(5).fill(0xff)), '77777777');
  assert.equal(base32Encode(Uint8Array.of(0xff)), '74');
  assert.equal(hex(base32Decode('74')), 'ff');
});

test('round trip for any bytes; output is canonical lowercase base32 of the expected length', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      const s = base32Encode(b);
      assert.equal(s.length, Math.ceil((b.length * 8) / 5));
      assert.match(s, /^[a-z2-7]*$/);
      assert.equal(hex(base32Decode(s)), hex(b));
    }),
    { numRuns: 300, seed: 1 },
  );
});

test('decoding is canonical: any accepted string is the encoding of what it decodes to', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...ALPHABET), maxLength: 40 }), (s) => {
      const b = base32Decode(s);
      if (b !== undefined) assert.equal(base32Encode(b), s);
      // Lengths that no byte string encodes to are always refused.
      if ([1, 3, 6].includes(s.length % 8)) assert.equal(b, undefined, s);
    }),
    { numRuns: 500, seed: 2 },
  );
});

test('decode refuses uppercase, padding, characters outside the alphabet and non-zero trailing bits', () => {
  const refused = [
    'MY',
    'mY',
    'my======',
    'my=',
    'm y',
    'mz', // "f" with a non-zero trailing bit
    'mzxr', // "fo" with a non-zero trailing bit
    'mzxw7', // "foo" with a non-zero trailing bit
    'm0',
    'm1',
    'm8',
    'm9',
    'a', // 5 bits: not a whole byte
    'aaa',
    'aaaaaa',
    'é',
  ];
  for (const s of refused) assert.equal(base32Decode(s), undefined, JSON.stringify(s));
  assert.equal(hex(base32Decode('')), '');
});
