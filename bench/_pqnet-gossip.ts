/**
 * The pqnet side of the `gossip-tcp` benchmark (bench/_gossip-scenario.ts):
 * real `Node`s with `Gossip` over loopback TCP (hybrid handshake, ML-DSA-65
 * identities, encrypted multiplexed frames), all in this process.
 *
 * Loopback needs the same allowances as js-libp2p's side: every node is
 * 127.0.0.1, so the per-IP and per-subnet peer caps and the per-host
 * handshake rate are raised; they are DoS guards, not part of the cost
 * measured. The topic allows 200 items/s per peer (the run publishes 20/s
 * network-wide).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SystemClock } from '../src/core/clock.ts';
import { GOSSIP_PROTOCOL } from '../src/gossip/messages.ts';
import type { GossipParams } from '../src/gossip/params.ts';
import { Gossip } from '../src/node/gossip.ts';
import { Node } from '../src/node/node.ts';
import { generateIdentity } from '../src/secure/identity.ts';
import { GossipRun, waitForMesh, type GossipTcpFigures, type GossipTcpScenario } from './_gossip-scenario.ts';
import { isCounting, startCounting, stopCounting } from './_socket-bytes.ts';
import { log } from './_util.ts';

export const PQNET_GOSSIP_IMPL = 'pqnet-gossip';
const TOPIC = 'gossip-tcp';

/** Run the scenario on pqnet. Every node is stopped and its store removed before it returns or throws. */
export async function runPqnetGossip(s: GossipTcpScenario, params: Partial<GossipParams> = {}, impl = PQNET_GOSSIP_IMPL): Promise<GossipTcpFigures> {
  const run = new GossipRun(s);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-gossip-bench-'));
  const clock = new SystemClock();
  const wasCounting = isCounting();
  startCounting();
  const t0 = performance.now();
  const nodes: Node[] = [];
  const gossip: Gossip[] = [];
  try {
    for (let i = 0; i < s.nodes; i++) {
      const node = new Node({
        identity: generateIdentity('ml-dsa-65'),
        chainId: 1,
        storePath: path.join(dir, `n${i}.sqlite`),
        listen: ['tcp://127.0.0.1:0'],
        protocols: [GOSSIP_PROTOCOL],
        clock,
        peerSet: { maxPeers: 200, maxOutbound: 100, maxPeersPerIp: 1_000, maxPeersPerSubnet: 1_000 },
        limits: { maxHandshakesPerIp: 1_000, handshakesPerHostPerSecond: 1_000, handshakeBurstPerHost: 1_000 },
      });
      const g = new Gossip(node, clock, { params });
      g.define(TOPIC, { priority: 'gossip', maxBytes: 64 * 1024, rate: { count: 200, perMs: 1_000, burst: 400 } });
      g.on('message', (m) => {
        if (m.topic === TOPIC) run.receive(i, m.payload);
      });
      g.subscribe(TOPIC);
      nodes.push(node);
      gossip.push(g);
      await node.start();
    }
    const dials = await Promise.allSettled(run.edges.map(([a, b]) => nodes[a]!.connect(nodes[b]!.listenAddresses[0]!)));
    const failed = dials.filter((d) => d.status === 'rejected');
    if (failed.length > 0) log(`${impl}: ${failed.length} of ${run.edges.length} dials failed, first: ${String(failed[0]!.reason)}`);
    const dlo = gossip[0]!.router.params.Dlo;
    const mesh = await waitForMesh(() => gossip.map((g) => g.router.meshPeers(TOPIC).length), dlo, s.meshWaitMs);
    return await run.publishPhase(impl, (i, payload) => gossip[i]!.publish(TOPIC, payload), { t0, mesh });
  } finally {
    for (const g of gossip) g.stop();
    const stopped = await Promise.allSettled(nodes.map((n) => n.stop()));
    const errors = stopped.filter((p) => p.status === 'rejected');
    if (errors.length > 0) log(`${impl}: ${errors.length} nodes failed to stop: ${String(errors[0]!.reason)}`);
    rmSync(dir, { recursive: true, force: true });
    if (!wasCounting) stopCounting();
  }
}
