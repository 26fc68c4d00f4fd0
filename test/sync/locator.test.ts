/** Locator heights: dense near the tip, doubling below, genesis last, bounded. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { locatorHeights } from '../../src/sync/locator.ts';
import { MAX_LOCATOR_HASHES } from '../../src/sync/messages.ts';

test('locatorHeights: the tip and nine below it, then doubling steps, ending at genesis', () => {
  assert.deepEqual(locatorHeights(0), [0]);
  assert.deepEqual(locatorHeights(3), [3, 2, 1, 0]);
  assert.deepEqual(locatorHeights(30), [30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 19, 15, 7, 0]);
});

test('locatorHeights: strictly decreasing, at most 64 entries, genesis last, for any height', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (h) => {
      const hs = locatorHeights(h);
      assert.equal(hs[0], h);
      assert.equal(hs.at(-1), 0);
      assert.ok(hs.length <= MAX_LOCATOR_HASHES);
      for (let i = 1; i < hs.length; i++) assert.ok(hs[i]! < hs[i - 1]!);
    }),
  );
});
