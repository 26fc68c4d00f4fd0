import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PullTracker } from '../../src/gossip/pull.ts';

test('PullTracker: one offerer asked at a time; others wait as alternates; the table is bounded', () => {
  const p = new PullTracker(3_000, 2, 2);
  assert.equal(p.offer('k1', 'txs', 'a', 0, true), 'asked');
  assert.equal(p.offer('k1', 'txs', 'b', 1, true), 'noted');
  assert.equal(p.offer('k1', 'txs', 'a', 1, true), 'noted');
  assert.deepEqual(p.get('k1')?.alternates, ['b'], 'the asked peer is not its own alternate');
  p.offer('k1', 'txs', 'c', 1, true);
  p.offer('k1', 'txs', 'd', 1, true);
  assert.deepEqual(p.get('k1')?.alternates, ['b', 'c'], 'at most maxAlternates');
  assert.equal(p.offer('k2', 'txs', 'a', 2, false), 'skipped', 'not asked when the caller may not ask');
  assert.equal(p.offer('k2', 'txs', 'a', 2, true), 'asked');
  assert.equal(p.offer('k3', 'txs', 'a', 2, true), 'skipped', 'the table is full');
  assert.equal(p.settle('k2')?.peer, 'a');
  assert.equal(p.size, 1);
});

test('PullTracker: expiry breaks promises in deadline order and passes each to the next offerer', () => {
  const p = new PullTracker(100);
  p.offer('k1', 'txs', 'a', 0, true);
  p.offer('k1', 'txs', 'b', 0, true);
  p.offer('k2', 'txs', 'a', 50, true);
  p.offer('k3', 'txs', 'c', 60, true);
  assert.equal(p.nextDeadline(), 100);
  let r = p.expire(100);
  assert.deepEqual([...r.broken], [['a', 1]]);
  assert.deepEqual(r.asks, [['k1', 'b']]);
  assert.equal(p.get('k1')?.deadline, 200, 'b gets a full timeout');
  assert.equal(p.nextDeadline(), 150, 'the earliest running promise comes first');
  r = p.expire(170);
  assert.deepEqual([...r.broken].sort(), [['a', 1], ['c', 1]]);
  assert.deepEqual(r.asks, [], 'k2 and k3 had no other offerer: dropped');
  assert.equal(p.size, 1);
  assert.equal(p.nextDeadline(), 200);
});

test('PullTracker: a peer that leaves hands its promises on and is no alternate any more', () => {
  const p = new PullTracker(100);
  p.offer('k1', 'txs', 'a', 0, true);
  p.offer('k1', 'txs', 'b', 0, true);
  p.offer('k2', 'txs', 'c', 0, true);
  p.offer('k2', 'txs', 'a', 0, true);
  assert.deepEqual(p.peerLeft('a', 10), [['k1', 'b']]);
  assert.deepEqual(p.get('k2')?.alternates, []);
  assert.equal(p.get('k1')?.deadline, 110);
  assert.equal(p.nextDeadline(), 100, 'k2 keeps its deadline and is now first');
});
