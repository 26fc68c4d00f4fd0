/** Sync progress: rates over a sliding window, the state, the fraction and the ETA. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeProgress, RateMeter, syncState } from '../../src/sync/progress.ts';

test('RateMeter: per-second rates over the window, idle time before the work began left out, decaying to zero after it stops', () => {
  const m = new RateMeter(10_000);
  assert.deepEqual(m.rates(), { headers: 0, blocks: 0, bytes: 0 });
  // Idle for 5 s, then 100 blocks/s for 4 s.
  for (let t = 0; t <= 5_000; t += 1_000) m.sample(t, 0, 0, 0);
  for (let t = 6_000, b = 100; t <= 9_000; t += 1_000, b += 100) m.sample(t, 2_000, b, b * 1_000);
  const r = m.rates();
  // From the last idle sample (5 s) to 9 s: 400 blocks in 4 s.
  assert.equal(r.blocks, 100);
  assert.equal(r.bytes, 100_000);
  assert.equal(r.headers, 500);
  // Stopped at 400 blocks: over the next 10 s the rate falls to zero.
  for (let t = 10_000; t <= 20_000; t += 1_000) m.sample(t, 2_000, 400, 400_000);
  assert.equal(m.rates().blocks, 0);
});

test('syncState and makeProgress: waiting, headers, blocks, synced; fraction since the start; ETA at the block rate', () => {
  assert.equal(syncState({ peers: 0, tipHeight: 0, bestHeaderHeight: 0, claimedHeight: 0 }), 'waiting');
  assert.equal(syncState({ peers: 1, tipHeight: 0, bestHeaderHeight: 100, claimedHeight: 500 }), 'headers');
  assert.equal(syncState({ peers: 1, tipHeight: 50, bestHeaderHeight: 500, claimedHeight: 500 }), 'blocks');
  assert.equal(syncState({ peers: 1, tipHeight: 500, bestHeaderHeight: 500, claimedHeight: 400 }), 'synced');
  const p = makeProgress({
    peers: 2, tipHeight: 400, tipHash: 'ab', bestHeaderHeight: 1_000, claimedHeight: 1_000,
    rates: { headers: 0, blocks: 50, bytes: 5_000 }, startedAtMs: 1_000, startHeight: 200,
  });
  assert.equal(p.state, 'blocks');
  assert.equal(p.targetHeight, 1_000);
  assert.equal(p.fraction, 0.25, '200 of the 800 blocks since the start');
  assert.equal(p.etaSeconds, 12);
  const done = makeProgress({ ...p, claimedHeight: 1_000, tipHeight: 1_000, rates: { headers: 0, blocks: 0, bytes: 0 } });
  assert.equal(done.state, 'synced');
  assert.equal(done.fraction, 1);
  assert.equal(done.etaSeconds, null);
});
