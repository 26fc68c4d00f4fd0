/**
 * Prometheus metrics of gossip (docs/API.md, Metrics), added to a node's
 * registry. Counters and gauges are read from the router's statistics when
 * Prometheus scrapes; the fanout and delivery histograms are fed by events.
 * Labels are topic names (registered topics only, so bounded), never peer-ids.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ItemOutcome } from '../gossip/router.ts';
import type { Gossip, GossipMessage } from './gossip.ts';

/** Validator time per item: 10 µs (a hash check) to 10 s (a slow async validator). */
const DELIVERY_BUCKETS = [0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];
/** Peers one item is sent (or announced) to per hop. */
const FANOUT_BUCKETS = [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64];

export function addGossipMetrics(gossip: Gossip, registry: Registry): { close(): void } {
  const registers = [registry];
  new Counter({
    name: 'p2p_gossip_messages_total',
    help: 'Gossip items by topic and outcome: published locally, or received and accepted, ignored, rejected, duplicate, rate_limited, oversize, greylisted, unsubscribed, unknown_topic, throttled',
    labelNames: ['topic', 'outcome'],
    registers,
    collect() {
      this.reset();
      for (const [topic, t] of Object.entries(gossip.stats().topics)) {
        this.inc({ topic, outcome: 'published' }, t.published);
        for (const [outcome, n] of Object.entries(t.received) as [ItemOutcome, number][]) this.inc({ topic, outcome }, n);
      }
    },
  });
  new Counter({
    name: 'p2p_gossip_sent_total',
    help: 'Gossip items sent to peers by topic: pushed in full (push) or announced by IHAVE to be pulled (announce)',
    labelNames: ['topic', 'kind'],
    registers,
    collect() {
      this.reset();
      for (const [topic, t] of Object.entries(gossip.stats().topics)) {
        this.inc({ topic, kind: 'push' }, t.sent);
        this.inc({ topic, kind: 'announce' }, t.announced);
      }
    },
  });
  new Counter({
    name: 'p2p_gossip_control_total',
    help: 'Gossip control by type (graft, prune, ihave, iwant, idontwant, choke, unchoke) and direction (sent, received); IDONTWANT, CHOKE and UNCHOKE count entries',
    labelNames: ['type', 'dir'],
    registers,
    collect() {
      this.reset();
      for (const [type, c] of Object.entries(gossip.stats().control)) {
        this.inc({ type, dir: 'sent' }, c.sent);
        this.inc({ type, dir: 'received' }, c.received);
      }
    },
  });
  new Counter({
    name: 'p2p_gossip_broken_promises_total',
    help: 'Items offered by IHAVE and not delivered after IWANT in time',
    registers,
    collect() {
      this.reset();
      this.inc(gossip.stats().brokenPromises);
    },
  });
  new Gauge({
    name: 'p2p_gossip_peers',
    help: 'Peers per topic: in our mesh (mesh), mesh members we choked (choking) and that choked us (choked_by), our fanout (fanout), and all subscribed (subscribed)',
    labelNames: ['topic', 'kind'],
    registers,
    collect() {
      this.reset();
      for (const [topic, t] of Object.entries(gossip.stats().topics)) {
        this.set({ topic, kind: 'mesh' }, t.mesh);
        this.set({ topic, kind: 'choking' }, t.choking);
        this.set({ topic, kind: 'choked_by' }, t.chokedBy);
        this.set({ topic, kind: 'fanout' }, t.fanout);
        this.set({ topic, kind: 'subscribed' }, t.peers);
      }
    },
  });
  new Gauge({
    name: 'p2p_gossip_cache',
    help: 'Gossip state sizes: seen item ids (seen), cached items for IWANT (mcache), ids asked for (wanted), items waiting for their validator (validating)',
    labelNames: ['kind'],
    registers,
    collect() {
      const s = gossip.stats();
      this.set({ kind: 'seen' }, s.seen);
      this.set({ kind: 'mcache' }, s.cached);
      this.set({ kind: 'wanted' }, s.wanted);
      this.set({ kind: 'validating' }, s.pendingValidations);
    },
  });
  const fanout = new Histogram({ name: 'p2p_gossip_fanout', help: 'Peers one item was pushed or announced to, per hop', labelNames: ['topic'], buckets: FANOUT_BUCKETS, registers });
  const delivery = new Histogram({ name: 'p2p_gossip_delivery_seconds', help: 'From an item\'s arrival to its acceptance (validation time), by topic', labelNames: ['topic'], buckets: DELIVERY_BUCKETS, registers });
  const onForward = (topic: string, peers: number): void => fanout.observe({ topic }, peers);
  const onMessage = (m: GossipMessage): void => delivery.observe({ topic: m.topic }, m.validationMs / 1000);
  gossip.on('forwarded', onForward);
  gossip.on('message', onMessage);
  return {
    close() {
      gossip.off('forwarded', onForward);
      gossip.off('message', onMessage);
    },
  };
}
