import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isPqnetError } from '../../src/core/errors.ts';
import { arrayOf, bool, bytes, bytesOneOf, text, tuple, uint, type Schema } from '../../src/wire/schema.ts';

/** Asserts MSG_SCHEMA with `fragment` (the path and what was expected) in the message. */
function rejects(schema: Schema<unknown>, value: unknown, fragment: string, path = 'msg'): void {
  assert.throws(
    () => schema.check(value, path),
    (e: unknown) => {
      assert.ok(isPqnetError(e), `expected a PqnetError, got ${String(e)}`);
      assert.equal(e.code, 'MSG_SCHEMA');
      assert.ok(e.message.includes(fragment), `"${e.message}" lacks "${fragment}"`);
      return true;
    },
  );
}

describe('uint', () => {
  test('accepts 0..max, refuses the rest', () => {
    const s = uint(300);
    assert.equal(s.describe, 'uint<=300');
    for (const v of [0, 1, 299, 300]) assert.equal(s.check(v, 'x'), v);
    for (const v of [301, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1', null, undefined, true, 1n, [1], new Uint8Array(1)]) {
      rejects(s, v, 'msg: expected uint<=300');
    }
  });

  test('default max is MAX_SAFE_INTEGER', () => {
    const s = uint();
    assert.equal(s.check(Number.MAX_SAFE_INTEGER, 'x'), Number.MAX_SAFE_INTEGER);
    rejects(s, Number.MAX_SAFE_INTEGER + 1, 'msg: expected uint<=');
    rejects(s, -0.5, 'got number');
  });

  test('property: accepted exactly when a safe integer in [0, max]', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.double()), fc.nat(), (v, max) => {
        const ok = Number.isSafeInteger(v) && v >= 0 && v <= max;
        let accepted = true;
        try {
          uint(max).check(v, 'p');
        } catch (e) {
          accepted = false;
          assert.ok(isPqnetError(e) && e.code === 'MSG_SCHEMA');
        }
        assert.equal(accepted, ok, String(v));
      }),
      { numRuns: 300, seed: 21 },
    );
  });
});

describe('bytes', () => {
  test('fixed length', () => {
    const s = bytes(8);
    assert.equal(s.describe, 'bytes[8]');
    const v = new Uint8Array(8);
    assert.equal(s.check(v, 'x'), v);
    assert.ok(s.check(Buffer.alloc(8), 'x') instanceof Uint8Array);
    rejects(s, new Uint8Array(7), 'msg: expected bytes[8], got bytes(7)');
    rejects(s, new Uint8Array(9), 'got bytes(9)');
    rejects(s, [1, 2, 3, 4, 5, 6, 7, 8], 'got array(8)');
    rejects(s, 'abcdefgh', 'got string');
    rejects(s, null, 'got object');
    rejects(s, new Uint16Array(4), 'expected bytes[8]');
  });

  test('range', () => {
    const s = bytes(2, 4);
    assert.equal(s.describe, 'bytes[2..4]');
    for (const n of [2, 3, 4]) assert.equal(s.check(new Uint8Array(n), 'x').length, n);
    for (const n of [0, 1, 5]) rejects(s, new Uint8Array(n), `expected bytes[2..4], got bytes(${n})`);
  });

  test('bytesOneOf', () => {
    const s = bytesOneOf(0, 32);
    assert.equal(s.describe, 'bytes[0|32]');
    assert.equal(s.check(new Uint8Array(0), 'x').length, 0);
    assert.equal(s.check(new Uint8Array(32), 'x').length, 32);
    for (const n of [1, 31, 33]) rejects(s, new Uint8Array(n), `expected bytes[0|32], got bytes(${n})`);
    rejects(s, [], 'got array(0)');
  });
});

describe('text and bool', () => {
  test('text bounds count UTF-8 bytes, not characters', () => {
    const s = text(3);
    assert.equal(s.describe, 'text<=3B');
    for (const v of ['', 'abc', 'aé', '€']) assert.equal(s.check(v, 'x'), v);
    rejects(s, 'abcd', 'expected text<=3B, got string');
    rejects(s, 'éé', 'expected text<=3B');
    rejects(s, '😀', 'expected text<=3B');
    rejects(s, new Uint8Array(1), 'got bytes(1)');
    rejects(s, 3, 'got number');
  });

  test('bool', () => {
    assert.equal(bool.describe, 'bool');
    assert.equal(bool.check(true, 'x'), true);
    assert.equal(bool.check(false, 'x'), false);
    for (const v of [0, 1, 'true', null, undefined]) rejects(bool, v, 'msg: expected bool');
  });
});

describe('arrayOf and tuple', () => {
  test('arrayOf bounds and item paths', () => {
    const s = arrayOf(uint(9), 1, 3);
    assert.equal(s.describe, '[uint<=9]{1..3}');
    assert.deepEqual(s.check([1, 2, 3], 'x'), [1, 2, 3]);
    rejects(s, [], 'msg: expected [uint<=9]{1..3}, got array(0)');
    rejects(s, [1, 2, 3, 4], 'got array(4)');
    rejects(s, new Uint8Array(2), 'got bytes(2)');
    rejects(s, [1, 10, 2], 'msg[1]: expected uint<=9, got number');
    rejects(s, [1, 2, 'x'], 'msg[2]: expected uint<=9, got string');
  });

  test('tuple: exact length, element paths, nesting', () => {
    const s = tuple(uint(0xffff), text(8), tuple(bytes(2), arrayOf(bool, 0, 2)));
    assert.equal(s.describe, '[uint<=65535, text<=8B, [bytes[2], [bool]{0..2}]]');
    const ok = [7, 'hi', [new Uint8Array(2), [true]]];
    assert.deepEqual(s.check(ok, 'm'), ok);
    rejects(s, [7, 'hi'], 'ping: expected array of 3, got array(2)', 'ping');
    rejects(s, [7, 'hi', [new Uint8Array(2), []], 0], 'got array(4)');
    rejects(s, { 0: 7, 1: 'hi', 2: [], length: 3 }, 'expected array of 3, got object');
    rejects(s, [70_000, 'hi', [new Uint8Array(2), []]], 'msg[0]: expected uint<=65535');
    rejects(s, [7, 'too long text', [new Uint8Array(2), []]], 'msg[1]: expected text<=8B');
    rejects(s, [7, 'hi', [new Uint8Array(3), []]], 'msg[2][0]: expected bytes[2], got bytes(3)');
    rejects(s, [7, 'hi', [new Uint8Array(2), [true, 1]]], 'msg[2][1][1]: expected bool, got number');
    rejects(s, [7, 'hi', [new Uint8Array(2), [true, false, true]]], 'msg[2][1]: expected [bool]{0..2}, got array(3)');
  });

  test('the empty tuple accepts only []', () => {
    const s = tuple();
    assert.deepEqual(s.check([], 'x'), []);
    rejects(s, [1], 'expected array of 0, got array(1)');
  });
});
