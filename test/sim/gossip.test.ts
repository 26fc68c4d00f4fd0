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

const CHURN: GossipScenario = {
  ...BASE,
  nodes: 30,
  messages: 60,
  // Each of the 6 cycling nodes leaves once, at a seeded time within the 3 s of publishing, and is back 400 ms later.
  churn: { share: 0.2, everyMs: 3_000, downMs: 400 },
};

test('sim: with 20% of the nodes crashing and restarting, the others get every item and each process every item published while it was up and settled; the same seed repeats the run', async () => {
  const a = await runGossipScenario(CHURN);
  const c = a.churn!;
  assert.ok(c !== undefined);
  assert.equal(c.nodes, 6);
  assert.equal(c.left, 6);
  assert.equal(c.joined, 6);
  // Every fresh process re-dialled and got a gossip connection.
  assert.equal(c.connected, 6, JSON.stringify(c));
  assert.ok(c.expected > 60, JSON.stringify(c));
  assert.equal(c.received, c.expected, JSON.stringify(c));
  assert.equal(c.deliveryWhileUp, 1);
  // The whole-run figures count only the 24 nodes that never left.
  assert.equal(a.expected, 60 * 23);
  assert.equal(a.delivery, 1, JSON.stringify(a));
  const b = await runGossipScenario(CHURN);
  assert.equal(b.traceHash, a.traceHash);
  assert.deepEqual(b.churn, a.churn);
});

test('sim: graceful leaves (GOODBYE) give the same delivery as crashes, through a different run', async () => {
  const crash = await runGossipScenario(CHURN);
  const r = await runGossipScenario({ ...CHURN, churn: { ...CHURN.churn!, graceful: true } });
  assert.equal(r.churn!.graceful, true);
  assert.equal(r.churn!.left, 6);
  assert.equal(r.churn!.connected, 6);
  assert.ok(r.churn!.expected > 60);
  assert.equal(r.churn!.deliveryWhileUp, 1, JSON.stringify(r.churn));
  assert.equal(r.delivery, 1);
  assert.notEqual(r.traceHash, crash.traceHash);
});

test('sim: a 30/70 partition holds every item on its side until the heal, each side still delivers within itself, and all is delivered a few heartbeats after the heal', async () => {
  const r = await runGossipScenario({ ...BASE, messages: 50, partition: { share: 0.3, atMs: 300, healMs: 2_000, graceMs: 1_000 } });
  const p = r.partition!;
  assert.ok(p !== undefined);
  assert.deepEqual(p.sides, [12, 28]);
  assert.equal(p.items, 40); // 2 s of publishing at 20/s
  assert.equal(p.crossedBeforeHeal, 0, JSON.stringify(p));
  assert.ok(p.crossedAfterHeal > 0);
  assert.ok(p.withinSide.items > 0 && p.withinSide.expected > 0);
  assert.equal(p.withinSide.delivery, 1, JSON.stringify(p));
  assert.equal(p.deliveryAfterHeal, 1, JSON.stringify(p));
  assert.equal(r.delivery, 1);
  // Repaired after the heal, within three heartbeats of virtual time.
  assert.ok(p.healToLastReceiptMs > 0 && p.healToLastReceiptMs <= 3_000, JSON.stringify(p));
  // Items held by the cut are reported apart: the run's latencies stay those of a whole network.
  assert.ok(p.latencyMs.max > 1_000, JSON.stringify(p.latencyMs));
  assert.ok(r.latencyMs.p99 < r.targetP99Ms && r.latencyMs.max < 1_000, JSON.stringify(r.latencyMs));
});
