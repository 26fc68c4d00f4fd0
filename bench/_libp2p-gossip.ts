/**
 * The js-libp2p side of the `gossip-tcp` benchmark: GossipSub over TCP + Noise
 * + Yamux, all nodes in this process on 127.0.0.1.
 *
 * Scenario: `nodes` nodes each dial `dialsPerNode` others (seeded choice, no
 * self, no pair twice), all subscribe to one topic, the mesh is given up to
 * `meshWaitMs` to form (until every node has GossipSub's Dlo = 4 mesh peers),
 * then `messages` messages of `messageBytes` are published from seeded random
 * nodes at `ratePerSecond`. The publish phase ends when every node but the
 * publisher has every message, or `drainWaitMs` after the last publish.
 *
 * Figures: delivery ratio = receipts / (messages x (nodes - 1)); latency from
 * publish to receipt, taken from a performance.now() float64 in the first 8
 * bytes of the payload (the rest is seeded random bytes, so every message
 * differs); amplification = TCP bytes written by all nodes during the publish
 * phase / (messageBytes x receipts), counted by bench/_socket-bytes.ts. The
 * bytes include everything on the wire in that phase: GossipSub data, IHAVE /
 * IWANT / IDONTWANT / heartbeat control, signatures, Noise and Yamux framing.
 * IHAVE gossip that heartbeats send after the phase ends is not included.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { gossipsub, type GossipSub, type Message } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { tcp } from '@libp2p/tcp';
import { createLibp2p, type Libp2p } from 'libp2p';
import { SeededRandom } from '../src/core/random.ts';
import { bytesWritten, isCounting, reset, startCounting, stopCounting } from './_socket-bytes.ts';
import { log, median, MiB, percentile, round } from './_util.ts';

export interface GossipTcpScenario {
  nodes: number;
  dialsPerNode: number;
  messages: number;
  messageBytes: number;
  ratePerSecond: number;
  seed: string;
  /** Upper bound on the wait for every node to have GOSSIPSUB_DLO mesh peers. */
  meshWaitMs: number;
  /** Upper bound on the wait for outstanding receipts after the last publish. */
  drainWaitMs: number;
}

export const GOSSIP_TCP_SCENARIO: GossipTcpScenario = {
  nodes: 30,
  dialsPerNode: 4,
  messages: 200,
  messageBytes: 1024,
  ratePerSecond: 20,
  seed: 'gossip-tcp',
  meshWaitMs: 20_000,
  drainWaitMs: 10_000,
};

export interface GossipTcpFigures {
  impl: string;
  nodes: number;
  messages: number;
  receipts: number;
  expected: number;
  deliveryRatio: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  bytesWritten: number;
  amplification: number;
  /** Mesh peers per node for the topic when publishing starts. */
  meshPeers: { min: number; median: number; max: number };
  /** Node start, dials and the mesh wait. */
  setupMs: number;
  /** First publish until every receipt is in, or the drain wait ran out. */
  publishPhaseMs: number;
  heapUsedMb: number;
}

export const LIBP2P_GOSSIP_IMPL = 'libp2p-gossipsub';

const TOPIC = 'gossip-tcp';
/** GossipSub's default Dlo: the mesh counts as formed when every node has this many mesh peers. */
export const GOSSIPSUB_DLO = 4;
/** Bytes of the payload that identify a message (after the 8-byte timestamp). */
const KEY_BYTES = 16;

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

/** A uniform integer in [0, n) from the seeded byte stream (rejection sampling, no modulo bias). */
function uniformInt(r: SeededRandom, n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`uniformInt: bad range ${n}`);
  const limit = 2 ** 32 - (2 ** 32 % n);
  for (;;) {
    const b = r.bytes(4);
    const x = new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
    if (x < limit) return x % n;
  }
}

/** Each node dials `dialsPerNode` others: no self, and no pair twice (in either direction). */
function topology(s: GossipTcpScenario, r: SeededRandom): [number, number][] {
  const paired = new Set<string>();
  const key = (a: number, b: number): string => (a < b ? `${a}-${b}` : `${b}-${a}`);
  const edges: [number, number][] = [];
  for (let i = 0; i < s.nodes; i++) {
    const candidates: number[] = [];
    for (let j = 0; j < s.nodes; j++) if (j !== i && !paired.has(key(i, j))) candidates.push(j);
    if (candidates.length < s.dialsPerNode) throw new Error(`topology: node ${i} has only ${candidates.length} unpaired peers left`);
    for (let k = 0; k < s.dialsPerNode; k++) {
      const j = candidates.splice(uniformInt(r, candidates.length), 1)[0]!;
      paired.add(key(i, j));
      edges.push([i, j]);
    }
  }
  return edges;
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

interface Receipts {
  count: number;
  latencies: number[];
  duplicates: number;
}

/** Run the scenario on js-libp2p + GossipSub. Every node is stopped before it returns or throws. */
export async function runLibp2pGossip(s: GossipTcpScenario): Promise<GossipTcpFigures> {
  if (s.messageBytes < 8 + KEY_BYTES) throw new RangeError(`messageBytes must be at least ${8 + KEY_BYTES}`);
  const rng = new SeededRandom(s.seed);
  const edges = topology(s, rng);
  const publishers = Array.from({ length: s.messages }, () => uniformInt(rng, s.nodes));
  // Payloads are made up front: bytes 8.. are seeded; 8..8+KEY_BYTES identify the message.
  const payloads = Array.from({ length: s.messages }, () => {
    const p = new Uint8Array(s.messageBytes);
    p.set(rng.bytes(s.messageBytes - 8), 8);
    return p;
  });
  const keyOf = (data: Uint8Array): string => Buffer.from(data.buffer, data.byteOffset + 8, KEY_BYTES).toString('hex');
  const indexByKey = new Map<string, number>();
  for (const [i, p] of payloads.entries()) {
    if (indexByKey.has(keyOf(p))) throw new Error('two payloads share a key');
    indexByKey.set(keyOf(p), i);
  }

  const expected = s.messages * (s.nodes - 1);
  const receipts: Receipts = { count: 0, latencies: [], duplicates: 0 };
  let allDelivered: () => void = () => undefined;
  const delivered = new Promise<void>((resolve) => {
    allDelivered = resolve;
  });

  const wasCounting = isCounting();
  startCounting();
  const t0 = performance.now();
  const nodes: GossipNode[] = [];
  try {
    for (let i = 0; i < s.nodes; i++) nodes.push(await createGossipNode());
    for (const [i, node] of nodes.entries()) {
      const seen = new Set<number>();
      node.services.pubsub.addEventListener('message', (evt: CustomEvent<Message>) => {
        const now = performance.now();
        const msg = evt.detail;
        if (msg.topic !== TOPIC || msg.data.length !== s.messageBytes) return;
        const index = indexByKey.get(keyOf(msg.data));
        if (index === undefined || publishers[index] === i) return;
        if (seen.has(index)) {
          receipts.duplicates++;
          return;
        }
        seen.add(index);
        const sent = new DataView(msg.data.buffer, msg.data.byteOffset, 8).getFloat64(0);
        receipts.latencies.push(now - sent);
        if (++receipts.count === expected) allDelivered();
      });
      node.services.pubsub.subscribe(TOPIC);
    }

    const dials = await Promise.allSettled(edges.map(([a, b]) => nodes[a]!.dial(nodes[b]!.getMultiaddrs()[0]!)));
    const failed = dials.filter((d) => d.status === 'rejected');
    if (failed.length > 0) log(`libp2p-gossip: ${failed.length} of ${edges.length} dials failed, first: ${String(failed[0]!.reason)}`);

    const views = nodes.map((n) => meshView(n.services.pubsub));
    const meshSizes = (): number[] => views.map((v) => v.getMeshPeers(TOPIC).length);
    const meshDeadline = performance.now() + s.meshWaitMs;
    while (Math.min(...meshSizes()) < GOSSIPSUB_DLO && performance.now() < meshDeadline) await sleep(100);
    const mesh = meshSizes();
    const meshPeers = { min: Math.min(...mesh), median: median(mesh), max: Math.max(...mesh) };
    const setupMs = performance.now() - t0;
    if (meshPeers.min < GOSSIPSUB_DLO) log(`libp2p-gossip: mesh not formed after ${round(setupMs, 0)} ms: mesh peers min ${meshPeers.min}, median ${meshPeers.median}, max ${meshPeers.max}; publishing anyway`);
    else log(`libp2p-gossip: mesh formed after ${round(setupMs, 0)} ms: mesh peers min ${meshPeers.min}, median ${meshPeers.median}, max ${meshPeers.max}`);

    reset();
    const phaseStart = performance.now();
    const published: Promise<unknown>[] = [];
    for (let k = 0; k < s.messages; k++) {
      const wait = phaseStart + (k * 1000) / s.ratePerSecond - performance.now();
      if (wait > 0) await sleep(wait);
      const payload = payloads[k]!;
      new DataView(payload.buffer, payload.byteOffset, 8).setFloat64(0, performance.now());
      published.push(nodes[publishers[k]!]!.services.pubsub.publish(TOPIC, payload));
    }
    const lastPublish = performance.now();
    const controller = new AbortController();
    await Promise.race([delivered, sleep(Math.max(0, lastPublish + s.drainWaitMs - performance.now()), undefined, { signal: controller.signal }).catch(() => undefined)]);
    controller.abort();
    const phaseEnd = performance.now();
    const written = bytesWritten();
    const heapUsedMb = process.memoryUsage().heapUsed / MiB;

    const publishErrors = (await Promise.allSettled(published)).filter((p) => p.status === 'rejected');
    if (publishErrors.length > 0) log(`libp2p-gossip: ${publishErrors.length} publishes failed, first: ${String(publishErrors[0]!.reason)}`);
    if (receipts.duplicates > 0) log(`libp2p-gossip: ${receipts.duplicates} duplicate deliveries (not counted)`);
    if (receipts.count < expected) log(`libp2p-gossip: ${expected - receipts.count} of ${expected} receipts missing ${s.drainWaitMs} ms after the last publish`);

    const sorted = receipts.latencies.sort((a, b) => a - b);
    return {
      impl: LIBP2P_GOSSIP_IMPL,
      nodes: s.nodes,
      messages: s.messages,
      receipts: receipts.count,
      expected,
      deliveryRatio: round(receipts.count / expected, 4),
      latencyMs: {
        p50: round(percentile(sorted, 50), 2),
        p95: round(percentile(sorted, 95), 2),
        p99: round(percentile(sorted, 99), 2),
        max: round(sorted.at(-1) ?? Number.NaN, 2),
      },
      bytesWritten: written,
      amplification: round(written / (s.messageBytes * receipts.count), 3),
      meshPeers,
      setupMs: round(setupMs, 0),
      publishPhaseMs: round(phaseEnd - phaseStart, 0),
      heapUsedMb: round(heapUsedMb, 1),
    };
  } finally {
    const stopped = await Promise.allSettled(nodes.map(async (n) => {
      await n.stop();
    }));
    const stopErrors = stopped.filter((p) => p.status === 'rejected');
    if (stopErrors.length > 0) log(`libp2p-gossip: ${stopErrors.length} nodes failed to stop: ${String(stopErrors[0]!.reason)}`);
    if (!wasCounting) stopCounting();
  }
}
