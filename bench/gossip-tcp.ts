/**
 * `gossip-tcp`: 30 real nodes in one process over loopback TCP, each dialling
 * 4 random others, 200 items of 1 KiB published from random nodes at 20/s
 * once the mesh has formed (bench/_gossip-scenario.ts). pqnet with its
 * default gossip parameters, pqnet with GossipSub's published parameters,
 * and js-libp2p + @libp2p/gossipsub (the baseline), in the same run, one
 * after the other. Figures: delivery ratio, publish-to-receipt latency
 * p50/p95/p99/max, amplification (TCP bytes written ÷ (item bytes ×
 * receipts)), mesh sizes, setup time and heap.
 *
 * `--quick` publishes 60 items instead of 200.
 */
import { DEFAULT_GOSSIP_PARAMS, GOSSIPSUB_PARAMS } from '../src/gossip/params.ts';
import { GOSSIP_TCP_SCENARIO, type GossipTcpFigures } from './_gossip-scenario.ts';
import { LIBP2P_GOSSIP_IMPL, runLibp2pGossip } from './_libp2p-gossip.ts';
import { PQNET_GOSSIP_IMPL, runPqnetGossip } from './_pqnet-gossip.ts';
import { emit, emitEnvironment, round, selected, type BenchOptions } from './_util.ts';

export async function main(opts: BenchOptions): Promise<void> {
  emitEnvironment('gossip-tcp', opts);
  const s = { ...GOSSIP_TCP_SCENARIO, messages: opts.quick ? 60 : GOSSIP_TCP_SCENARIO.messages };
  const results: GossipTcpFigures[] = [];
  const runs: [string, () => Promise<GossipTcpFigures>][] = [
    [LIBP2P_GOSSIP_IMPL, () => runLibp2pGossip(s)],
    [PQNET_GOSSIP_IMPL, () => runPqnetGossip(s, DEFAULT_GOSSIP_PARAMS)],
    [`${PQNET_GOSSIP_IMPL}-gossipsub-params`, () => runPqnetGossip(s, GOSSIPSUB_PARAMS, `${PQNET_GOSSIP_IMPL}-gossipsub-params`)],
  ];
  for (const [impl, run] of runs) {
    if (!selected(opts, impl)) continue;
    const f = await run();
    results.push(f);
    emit({ bench: 'gossip-tcp', metric: 'scenario', ...f, scenario: s });
  }
  const base = results.find((r) => r.impl === LIBP2P_GOSSIP_IMPL);
  if (base === undefined) return;
  for (const r of results) {
    if (r === base) continue;
    emit({
      bench: 'gossip-tcp',
      metric: 'vs-baseline',
      impl: r.impl,
      baseline: base.impl,
      latencyP50Ratio: round(r.latencyMs.p50 / base.latencyMs.p50, 3),
      latencyP99Ratio: round(r.latencyMs.p99 / base.latencyMs.p99, 3),
      amplificationRatio: round(r.amplification / base.amplification, 3),
      deliveryRatio: r.deliveryRatio,
      baselineDeliveryRatio: base.deliveryRatio,
    });
  }
}
