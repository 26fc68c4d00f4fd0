/**
 * What the HTTP API reads and drives of gossip (docs/API.md, `/gossip/*` and
 * `/health`'s `gossip`): the router's statistics and peers as JSON, and a
 * local publish that runs the topic's validator first.
 *
 * The server depends on the `GossipApi` interface only; `gossipApi` builds it
 * from a running `Gossip`; the caller passes how to find a topic's validator
 * (the node service: `gossip.validator(topic)`).
 */
import { PqnetError } from '../core/errors.ts';
import { GOSSIP_PROTOCOL } from '../gossip/messages.ts';
import type { TopicStats } from '../gossip/router.ts';
import { zeroOutcomes } from '../gossip/types.ts';
import type { Gossip, Validator } from '../node/gossip.ts';
import type { Node } from '../node/node.ts';
import type { GossipHealthJson, GossipPeerJson, GossipPublishResponse, GossipStatusResponse, GossipTopicJson } from './types.ts';

/** A validator's verdict that stopped a local publish. */
export interface GossipRefusal {
  readonly refused: 'reject' | 'ignore';
}

export interface GossipApi {
  status(): GossipStatusResponse;
  health(): GossipHealthJson;
  /**
   * Publish a local item after the topic's validator (if any) accepted it.
   * A validator's reject or ignore comes back as a `GossipRefusal`; an unknown
   * topic, an oversize item or one already seen throw GOSSIP_UNKNOWN_TOPIC,
   * GOSSIP_OVERSIZE or GOSSIP_DUPLICATE, and a validator that throws, its error.
   */
  publish(topic: string, payload: Uint8Array): Promise<GossipPublishResponse | GossipRefusal>;
}

export interface GossipApiOptions {
  readonly gossip: Gossip;
  readonly node: Node;
  /** The validator set on a topic, if any. */
  readonly validator: (topic: string) => Validator | undefined;
}

const NO_STATS: TopicStats = Object.freeze({
  published: 0,
  received: Object.freeze(zeroOutcomes()),
  sent: 0,
  announced: 0,
  mesh: 0,
  fanout: 0,
  peers: 0,
  choking: 0,
  chokedBy: 0,
});

/** Scores to 3 decimals, times to whole milliseconds: what an operator reads. */
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

export function gossipApi(o: GossipApiOptions): GossipApi {
  const { gossip, node } = o;
  const router = gossip.router;
  const gossipPeers = (): string[] =>
    node
      .peers()
      .filter((p) => p.state === 'active' && p.peerId !== undefined && p.protocols.includes(GOSSIP_PROTOCOL))
      .map((p) => p.peerId as string);

  function topics(): GossipTopicJson[] {
    const stats = gossip.stats().topics;
    const out = router.topics.names().map((name): GossipTopicJson => {
      const spec = router.topics.get(name)!;
      const t = stats[name] ?? NO_STATS;
      return {
        topic: name,
        subscribed: router.subscribed(name),
        priority: spec.priority,
        maxBytes: spec.maxBytes,
        ratePerSecond: round3((spec.rate.count * 1000) / spec.rate.perMs),
        burst: spec.rate.burst,
        mesh: t.mesh,
        fanout: t.fanout,
        peers: t.peers,
        choking: t.choking,
        chokedBy: t.chokedBy,
        received: { ...t.received },
        sent: t.sent,
        announced: t.announced,
        published: t.published,
      };
    });
    // Subscribed first; otherwise the table's order (built-ins, then defined ones).
    return [...out.filter((t) => t.subscribed), ...out.filter((t) => !t.subscribed)];
  }

  function peers(): GossipPeerJson[] {
    const out: GossipPeerJson[] = [];
    for (const id of gossipPeers()) {
      const s = gossip.peerStatus(id);
      if (s === undefined) continue;
      out.push({
        peerId: s.peerId,
        outbound: s.outbound,
        topics: [...s.topics],
        mesh: [...s.mesh],
        choking: [...s.choking],
        chokedBy: [...s.chokedBy],
        scores: s.scores.map((x) => ({ topic: x.topic, inMeshMs: Math.round(x.inMeshMs), firstDeliveries: round3(x.firstDeliveries), meshDeliveries: round3(x.meshDeliveries), invalid: round3(x.invalid), score: round3(x.score) })),
      });
    }
    return out;
  }

  return {
    status(): GossipStatusResponse {
      const s = gossip.stats();
      return {
        params: { ...router.params },
        topics: topics(),
        control: s.control,
        ihaveIds: s.ihaveIds,
        brokenPromises: s.brokenPromises,
        cache: { seen: s.seen, mcache: s.cached, wanted: s.wanted, validating: s.pendingValidations },
        peers: peers(),
      };
    },

    health(): GossipHealthJson {
      const stats = gossip.stats().topics;
      const flood = router.params.flood;
      const connected = gossipPeers().length;
      const subscribed = router.topics.names().filter((n) => router.subscribed(n));
      const list = subscribed.map((topic) => ({ topic, mesh: stats[topic]?.mesh ?? 0, peers: stats[topic]?.peers ?? 0 }));
      // In flood mode there are no meshes; otherwise an empty mesh with gossip peers connected means items
      // of that topic neither reach nor leave this node through the mesh (only through IHAVE gossip, if at all).
      const warnings = flood || connected === 0 ? [] : list.filter((t) => t.mesh === 0).map((t) => `topic ${t.topic}: empty mesh with ${connected} gossip peer${connected === 1 ? '' : 's'} connected (${t.peers} of them subscribed)`);
      return { status: warnings.length === 0 ? 'ok' : 'degraded', peers: connected, flood, topics: list, warnings };
    },

    async publish(topic, payload) {
      const spec = router.topics.get(topic);
      if (spec === undefined) throw new PqnetError('GOSSIP_UNKNOWN_TOPIC', `topic ${JSON.stringify(topic)} is not registered (known: ${router.topics.names().join(', ')})`);
      if (payload.length > spec.maxBytes) throw new PqnetError('GOSSIP_OVERSIZE', `${topic}: ${payload.length} bytes > ${spec.maxBytes}`);
      // Before the validator, which may act on the item (the chain's admits a transaction to the mempool).
      if (gossip.seen(topic, payload)) throw new PqnetError('GOSSIP_DUPLICATE', `${topic}: this item was already seen`);
      const validate = o.validator(topic);
      if (validate !== undefined) {
        const verdict = await validate(payload, node.peerId, topic);
        if (verdict !== 'accept') return { refused: verdict };
      }
      // The fanout of this publish: the router reports it synchronously, inside publish().
      let peers = 0;
      const count = (t: string, n: number): void => {
        if (t === topic) peers += n;
      };
      gossip.on('forwarded', count);
      let id: Uint8Array;
      try {
        id = gossip.publish(topic, payload);
      } finally {
        gossip.off('forwarded', count);
      }
      return { topic, id: Buffer.from(id).toString('hex'), bytes: payload.length, peers };
    },
  };
}
