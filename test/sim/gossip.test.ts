/**
 * Reduced gossip scenarios on the simulator (the full 1,000-node ones are
 * `npm run bench -- gossip`): real Nodes on virtual time, so every figure
 * asserted here is exact and repeatable, never a wall-clock duration.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runGossipScenario, type GossipScenario } from '../../sim/scenario.ts';

const BASE: GossipScenario = {
  seed: 'suite',
  nodes: 40,
  outbound: 4,
  latencyMs: [10, 100],
  messageBytes: 1024,
  messages: 15,
  ratePerSecond: 20,
  warmupMs: 4_000,
  drainMs: 2_000,
};

test('sim: every node receives every item, within 200 ms plus the diameter, and the same seed gives the same trace', async () => {
  const a = await runGossipScenario(BASE);
  assert.equal(a.delivery, 1, JSON.stringify(a));
  assert.equal(a.receipts, 15 * 39);
  assert.ok(a.latencyMs.p99 < a.targetP99Ms, JSON.stringify(a.latencyMs));
  assert.ok(a.mesh.min >= 1);
  const b = await runGossipScenario(BASE);
  assert.equal(b.traceHash, a.traceHash);
  assert.deepEqual(b.latencyMs, a.latencyMs);
  const c = await runGossipScenario({ ...BASE, seed: 'suite-2' });
  assert.notEqual(c.traceHash, a.traceHash);
});

test('sim: with 20% droppers every honest node still receives every item', async () => {
  const r = await runGossipScenario({ ...BASE, droppers: 0.2 });
  assert.equal(r.droppers, 8);
  assert.equal(r.delivery, 1, JSON.stringify(r));
});

test('sim: spammers pushing invalid items at 100x the rate cap are cut off by all their honest neighbours, and honest items still arrive', async () => {
  const r = await runGossipScenario({ ...BASE, spammers: 0.1, spamAtMs: 3_000 });
  assert.equal(r.spammers, 4);
  assert.ok(r.spam.links > 0);
  assert.equal(r.spam.closed, r.spam.links, JSON.stringify(r.spam));
  assert.ok(r.spam.lastCloseMs < 10_000);
  assert.equal(r.delivery, 1, JSON.stringify(r));
});

test('sim: choking cuts the items sent per receipt to about D_unchoked, against every mesh member pushing', async () => {
  const off = await runGossipScenario({ ...BASE, params: { Dunchoked: 0 } });
  const on = await runGossipScenario(BASE);
  assert.equal(on.delivery, 1);
  assert.equal(off.delivery, 1);
  assert.ok(on.perReceipt.itemsSent < off.perReceipt.itemsSent - 1, `with choking ${on.perReceipt.itemsSent} items per receipt, without ${off.perReceipt.itemsSent}`);
  assert.ok(on.amplification < off.amplification, `amplification ${on.amplification} vs ${off.amplification}`);
});
