/**
 * `gossip`: the simulator scenarios as a benchmark (sim/scenario.ts:
 * real Nodes and Gossip on a simulated network in virtual time). 1,000 nodes
 * (200 with `--quick`), 8 outbound connections each, link latency uniform in
 * 10–100 ms:
 *   - `1KiB`: 1 KiB items at 20/s; delivery, p50/p99/max propagation, the
 *     target p99 < 200 ms + diameter, amplification (target < 4);
 *   - `1KiB-gossipsub-params`: the same with GossipSub's published parameters
 *     (the baseline in the same run);
 *   - `1MiB`: 1 MiB items on 100 Mbit/s links (target amplification < 1.5);
 *   - `droppers-20%`: 20% of nodes never forward; delivery must stay 100% and
 *     p99 grow by less than 50% over `1KiB`;
 *   - `spammers-10%`: 10% push invalid items at 100× the topic rate cap;
 *     honest delivery and p99 against `1KiB`, and when the spammers were cut
 *     off by their honest neighbours (target: all within 10 s);
 *   - `churn-10%`: 1 KiB items at 10/s for 5 s (10 s without `--quick`);
 *     10% of the honest nodes crash every 4 s (first at a seeded time) and a
 *     fresh process (same identity, address and peer store) is back 1 s
 *     later, re-dials its planned peers and subscribes. Targets: delivery 1
 *     to the nodes that never left, and `churn.deliveryWhileUp` 1: every
 * item published from a process's first gossip
 *     connection to one heartbeat before it leaves reaches it;
 *   - `partition-30/70`: the same traffic; 30% of the nodes are cut off
 *     from the rest 1 s into publishing (2 s without `--quick`) for 3 s (5 s).
 *     Targets: nothing crosses the cut before the heal, items published at
 *     least two heartbeats before the heal reach their whole side (its
 *     connected component) by the heal, every item held by the cut reaches
 *     every node after it (`deliveryAfterHeal` 1), the last within 3
 *     heartbeats of the heal, and the run's delivery is 1. Receipts of the
 *     items held by the cut are left out of `latencyMs` (`partition.latencyMs`).
 * Each line also gives the simulation's wall time, timer events and heap.
 * `--only=<name substring>` runs some of them.
 */
import { DEFAULT_GOSSIP_PARAMS, GOSSIPSUB_PARAMS } from '../src/gossip/params.ts';
import { runGossipScenario, type GossipScenario, type GossipScenarioResult, type PartitionResult } from '../sim/scenario.ts';
import { emit, emitEnvironment, log, round, selected, type BenchOptions } from './_util.ts';

export async function main(opts: BenchOptions): Promise<void> {
  emitEnvironment('gossip', opts);
  const nodes = opts.quick ? 200 : 1_000;
  const base: GossipScenario = {
    seed: 'gossip-bench',
    nodes,
    outbound: 8,
    latencyMs: [10, 100],
    messageBytes: 1024,
    messages: opts.quick ? 20 : 60,
    ratePerSecond: 20,
    warmupMs: 6_000,
    drainMs: 3_000,
    params: DEFAULT_GOSSIP_PARAMS,
  };
  // Faults need a longer publish phase than one cycle; a lower rate keeps the simulation's cost (per receipt) down.
  const faults: GossipScenario = { ...base, messages: opts.quick ? 50 : 100, ratePerSecond: 10 };
  const heartbeatMs = DEFAULT_GOSSIP_PARAMS.heartbeatMs;
  const scenarios: [string, GossipScenario][] = [
    ['1KiB', base],
    ['1KiB-gossipsub-params', { ...base, params: GOSSIPSUB_PARAMS }],
    ['1MiB', { ...base, messageBytes: 1024 * 1024, messages: opts.quick ? 3 : 5, ratePerSecond: 1, drainMs: 10_000, bandwidthBytesPerSec: 12_500_000 }],
    ['droppers-20%', { ...base, droppers: 0.2 }],
    ['spammers-10%', { ...base, spammers: 0.1, spamFactor: 100 }],
    ['churn-10%', { ...faults, churn: { share: 0.1, everyMs: 4_000, downMs: 1_000 } }],
    ['partition-30/70', { ...faults, partition: { share: 0.3, atMs: opts.quick ? 1_000 : 2_000, healMs: opts.quick ? 3_000 : 5_000 } }],
  ];
  const results = new Map<string, GossipScenarioResult>();
  for (const [name, s] of scenarios) {
    if (!selected(opts, name)) continue;
    log(`gossip: ${name} on ${s.nodes} nodes...`);
    const r = await runGossipScenario(s);
    results.set(name, r);
    const b = results.get('1KiB');
    emit({
      bench: 'gossip',
      metric: 'scenario',
      scenario: name,
      ...r,
      p99WithinTarget: r.latencyMs.p99 < r.targetP99Ms,
      ...(name === '1KiB' || name === '1KiB-gossipsub-params' ? { amplificationTarget: 4, amplificationMet: r.amplification < 4 } : {}),
      ...(name === '1MiB' ? { amplificationTarget: 1.5, amplificationMet: r.amplification < 1.5 } : {}),
      ...(b !== undefined && name !== '1KiB' ? { p99VsBaseline: round(r.latencyMs.p99 / b.latencyMs.p99, 3), baselineP99Ms: b.latencyMs.p99 } : {}),
      ...(name === 'spammers-10%' ? { spammersCutOffWithin10s: r.spam.closed === r.spam.links && r.spam.lastCloseMs <= 10_000 } : {}),
      ...(r.churn === undefined ? {} : { churnTargetsMet: r.delivery === 1 && r.churn.deliveryWhileUp === 1 }),
      ...(r.partition === undefined ? {} : { partitionTargetsMet: partitionMet(r.partition, r.delivery, heartbeatMs) }),
      perNodeHeapKb: round((r.heapMb * 1024) / r.nodes, 1),
      scenarioParams: { ...s, params: undefined },
    });
  }
}

/** Nothing crossed early, each side delivered within itself, everything after the heal, within 3 heartbeats of it. */
function partitionMet(p: PartitionResult, delivery: number, heartbeatMs: number): boolean {
  return p.crossedBeforeHeal === 0 && p.withinSide.delivery === 1 && p.deliveryAfterHeal === 1 && p.healToLastReceiptMs <= 3 * heartbeatMs && delivery === 1;
}
