/**
 * The js-libp2p side of the `gossip-tcp` benchmark (bench/_gossip-scenario.ts):
 * GossipSub over TCP + Noise + Yamux, all nodes in this process on 127.0.0.1.
 * The mesh is given up to `meshWaitMs` to form (until every node has
 * GossipSub's Dlo = 4 mesh peers). The bytes include everything on the wire
 * in the publish phase: GossipSub data, IHAVE / IWANT / IDONTWANT / heartbeat
 * control, signatures, Noise and Yamux framing.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { gossipsub, type GossipSub, type Message } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { tcp } from '@libp2p/tcp';
import { createLibp2p, type Libp2p } from 'libp2p';
import { GossipRun, waitForMesh, type GossipTcpFigures, type GossipTcpScenario } from './_gossip-scenario.ts';
import { isCounting, startCounting, stopCounting } from './_socket-bytes.ts';
import { log } from './_util.ts';

export const LIBP2P_GOSSIP_IMPL = 'libp2p-gossipsub';

const TOPIC = 'gossip-tcp';
/** GossipSub's default Dlo: the mesh counts as formed when every node has this many mesh peers. */
export const GOSSIPSUB_DLO = 4;
type GossipNode = Libp2p<{ identify: unknown; pubsub: GossipSub }>;

/**
 * The GossipSub class has getMeshPeers(), but the package's exported
 * `GossipSub` interface does not declare it; checked at run time.
 */
interface MeshView { getMeshPeers(topic: string): string[] }

function meshView(pubsub: GossipSub): MeshView {
  const v = pubsub as unknown as Partial<MeshView>;
  if (typeof v.getMeshPeers !== 'function') throw new Error('@libp2p/gossipsub no longer has getMeshPeers()');
  return v as MeshView;
}

function createGossipNode(): Promise<GossipNode> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      // Every node is 127.0.0.1. Allow-listed addresses bypass the inbound
      // rate limit (5 connections/s per host), the pending-inbound cap and
      // connection pruning, which would otherwise refuse or close some of the
      // 30 nodes' connections to each other and starve the mesh.
      allow: ['/ip4/127.0.0.1'],
      // Limits raised so that none of them is a factor (defaults: 300
      // connections, 5 inbound/s per host, 10 pending inbound, 100 parallel
      // dials, 500 queued dials); a node here has about 8 connections.
      maxConnections: 10_000,
      inboundConnectionThreshold: 10_000,
      maxIncomingPendingConnections: 10_000,
      maxParallelDials: 1_000,
      maxDialQueueLength: 10_000,
    },
    // The connection monitor pings every connection every 10 s: liveness
    // traffic that is not gossip, so it is off (as in bench/_libp2p.ts).
    // Yamux's own keep-alive (a 12-byte ping every 30 s) stays at its default.
    connectionMonitor: { enabled: false },
    services: {
      // GossipSub learns that a peer speaks it from the peer store, which
      // identify fills in; without identify no peer is ever added to a topic.
      identify: identify(),
      pubsub: gossipsub({
        // Everything else is @libp2p/gossipsub's default: D=6, Dlo=4,
        // Dhi=12, Dlazy=6, 1 s heartbeat, floodPublish (a publisher sends
        // its own messages to all topic peers, not only its mesh), StrictSign
        // (every message signed and verified), IDONTWANT for data >= 512 bytes.
        scoreParams: {
          // P6 penalises more than 10 peers sharing an IP. Here every peer is
          // 127.0.0.1, which would push well-connected nodes below the
          // gossip/publish thresholds and out of each other's meshes.
          IPColocationFactorWhitelist: new Set(['127.0.0.1']),
        },
        // A publish with no topic peer yet is reported as missing receipts
        // rather than aborting the run with NoPeersSubscribedToTopic.
        allowPublishToZeroTopicPeers: true,
        // Default, stated because the figures depend on it: a publisher does
        // not receive its own message, and is not counted as a receiver.
        emitSelf: false,
      }),
    },
  });
}

/** Run the scenario on js-libp2p + GossipSub. Every node is stopped before it returns or throws. */
export async function runLibp2pGossip(s: GossipTcpScenario): Promise<GossipTcpFigures> {
  const run = new GossipRun(s);
  const wasCounting = isCounting();
  startCounting();
  const t0 = performance.now();
  const nodes: GossipNode[] = [];
  try {
    for (let i = 0; i < s.nodes; i++) nodes.push(await createGossipNode());
    for (const [i, node] of nodes.entries()) {
      node.services.pubsub.addEventListener('message', (evt: CustomEvent<Message>) => {
        if (evt.detail.topic === TOPIC) run.receive(i, evt.detail.data);
      });
      node.services.pubsub.subscribe(TOPIC);
    }
    const dials = await Promise.allSettled(run.edges.map(([a, b]) => nodes[a]!.dial(nodes[b]!.getMultiaddrs()[0]!)));
    const failed = dials.filter((d) => d.status === 'rejected');
    if (failed.length > 0) log(`libp2p-gossip: ${failed.length} of ${run.edges.length} dials failed, first: ${String(failed[0]!.reason)}`);
    const views = nodes.map((n) => meshView(n.services.pubsub));
    const mesh = await waitForMesh(() => views.map((v) => v.getMeshPeers(TOPIC).length), GOSSIPSUB_DLO, s.meshWaitMs);
    return await run.publishPhase(LIBP2P_GOSSIP_IMPL, (i, payload) => nodes[i]!.services.pubsub.publish(TOPIC, payload), { t0, mesh });
  } finally {
    const stopped = await Promise.allSettled(nodes.map(async (n) => {
      await n.stop();
    }));
    const stopErrors = stopped.filter((p) => p.status === 'rejected');
    if (stopErrors.length > 0) log(`libp2p-gossip: ${stopErrors.length} nodes failed to stop: ${String(stopErrors[0]!.reason)}`);
    if (!wasCounting) stopCounting();
  }
}
