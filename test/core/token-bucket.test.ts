import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../src/core/token-bucket.ts';

test('take spends up to the burst, then refills at the rate, never above the burst', () => {
  const b = new TokenBucket(10, 3, 0);
  assert.equal(b.take(0), true);
  assert.equal(b.take(0), true);
  assert.equal(b.take(0), true);
  assert.equal(b.take(0), false);
  assert.equal(b.take(99), false, '0.99 tokens after 99 ms');
  assert.equal(b.take(100), true, 'one token after 100 ms');
  assert.equal(b.available(10_000), 3);
  assert.ok(b.isFull(10_000));
});

test('charge can go into debt, which blocks take until repaid', () => {
  const b = new TokenBucket(1000, 500, 0);
  b.charge(0, 1500);
  assert.equal(b.available(0), -1000);
  assert.equal(b.take(999, 1), false);
  assert.equal(b.take(1001, 1), true);
});

test('invalid parameters are refused', () => {
  assert.throws(() => new TokenBucket(-1, 1, 0), RangeError);
  assert.throws(() => new TokenBucket(1, 0, 0), RangeError);
});
