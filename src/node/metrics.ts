/**
 * Prometheus metrics of a running `Node` (DESIGN.md, Node and operations),
 * with prom-client. Each node gets its own `Registry`, so several nodes in one
 * process (tests, the simulator) do not share series.
 *
 * Event counters (handshakes, disconnects, offenses, bans, RTT samples) are
 * updated as the node reports them; totals the node already keeps (bytes,
 * messages by type, rejects) and gauges (peers by state and direction, bans,
 * peer book) are read from it when Prometheus scrapes, so the hot paths pay
 * nothing for metrics. No label holds a peer-id or an address: every label
 * takes its values from a closed set (reason codes, message type names,
 * states, directions), so the series count is bounded. Per-peer figures are
 * in the API's `/p2p/peers`.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PqnetError, Reason } from '../core/errors.ts';
import type { BanRecord } from '../peer/types.ts';
import type { HandshakeInfo, Node, PeerInfo } from './node.ts';

/** Handshake durations: 1 ms to 10 s (ML-DSA-65 ~ a few ms; SLH-DSA ~ hundreds). */
const HANDSHAKE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Round trips: 0.1 ms (loopback) to 5 s. */
const RTT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const EVENT_LOOP_SAMPLE_MS = 100;

const PEER_STATES = ['connecting', 'handshaking', 'active', 'disconnecting'] as const;
const DIRECTIONS = ['inbound', 'outbound'] as const;

export interface NodeMetricsOptions {
  /** Registry to add to (one holding no other node's metrics: the names would collide); a new one by default. */
  readonly registry?: Registry;
  /** Also collect prom-client's process and Node.js runtime metrics (default true). */
  readonly defaultMetrics?: boolean;
  /** Constant labels on every series of the registry (e.g. `{ node: 'a' }`). */
  readonly labels?: Readonly<Record<string, string>>;
}

export interface NodeMetrics {
  readonly registry: Registry;
  /** Stop listening to the node's events. */
  close(): void;
}

export function createNodeMetrics(node: Node, options: NodeMetricsOptions = {}): NodeMetrics {
  const registry = options.registry ?? new Registry();
  if (options.labels !== undefined) registry.setDefaultLabels({ ...options.labels });
  // Event-loop delay sampled every 100 ms rather than prom-client's 10 ms: the 10 ms timer alone
  // cost an idle node ~2.5 ms of CPU per second (bench/api.ts), and lag below 100 ms still shows.
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const registers = [registry];

  new Gauge({
    name: 'p2p_info',
    help: 'This node: peer id, identity algorithm and crypto provider (value 1)',
    labelNames: ['peer_id', 'sig', 'provider', 'chain_id'],
    registers,
    collect() {
      this.set({ peer_id: node.peerId, sig: node.identity.alg, provider: node.providerName, chain_id: String(node.chainId) }, 1);
    },
  });
  new Gauge({
    name: 'p2p_peers',
    help: 'Connections by state and direction',
    labelNames: ['state', 'direction'],
    registers,
    collect() {
      const counts = new Map<string, number>();
      for (const p of node.peers()) counts.set(`${p.state}/${p.direction}`, (counts.get(`${p.state}/${p.direction}`) ?? 0) + 1);
      for (const state of PEER_STATES) for (const direction of DIRECTIONS) this.set({ state, direction }, counts.get(`${state}/${direction}`) ?? 0);
    },
  });
  new Counter({
    name: 'p2p_bytes_total',
    help: 'Bytes received (in) and sent (out) on peer connections, handshakes included',
    labelNames: ['dir'],
    registers,
    collect() {
      const t = node.traffic();
      this.reset();
      this.inc({ dir: 'in' }, t.bytesIn);
      this.inc({ dir: 'out' }, t.bytesOut);
    },
  });
  new Counter({
    name: 'p2p_msgs_total',
    help: 'Messages received (in) and sent (out), by message type',
    labelNames: ['dir', 'type'],
    registers,
    collect() {
      const t = node.traffic();
      this.reset();
      for (const [type, n] of Object.entries(t.messages.in)) this.inc({ dir: 'in', type }, n);
      for (const [type, n] of Object.entries(t.messages.out)) this.inc({ dir: 'out', type }, n);
    },
  });
  new Counter({
    name: 'p2p_rejects_total',
    help: 'Connections refused before or at admission, by reason',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(node.health().rejects)) this.inc({ reason }, n);
    },
  });
  const health = (): ReturnType<Node['health']> => node.health();
  new Gauge({
    name: 'p2p_handshakes_in_progress',
    help: 'Inbound handshakes in progress',
    registers,
    collect() {
      this.set(health().handshakesInProgress);
    },
  });
  new Gauge({
    name: 'p2p_queued_bytes',
    help: 'Bytes queued for sending over all connections',
    registers,
    collect() {
      this.set(health().queuedBytes);
    },
  });
  new Gauge({
    name: 'p2p_bans',
    help: 'Bans in force',
    registers,
    collect() {
      this.set(node.bans().length);
    },
  });
  new Gauge({
    name: 'p2p_peer_book_entries',
    help: 'Addresses in the peer book',
    registers,
    collect() {
      this.set(health().peerBook);
    },
  });
  new Gauge({
    name: 'p2p_peer_scores',
    help: 'Connected peers by score status',
    labelNames: ['status'],
    registers,
    collect() {
      const counts = { trusted: 0, neutral: 0, greylisted: 0, banned: 0 };
      for (const p of node.peers()) if (p.scoreStatus !== undefined) counts[p.scoreStatus]++;
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
    },
  });

  const handshakeSeconds = new Histogram({
    name: 'p2p_handshake_duration_seconds',
    help: 'Secure handshake duration, first byte to session keys, by direction and key agreement',
    labelNames: ['direction', 'kem'],
    buckets: HANDSHAKE_BUCKETS,
    registers,
  });
  const handshakeFailures = new Counter({ name: 'p2p_handshake_failures_total', help: 'Failed handshakes by reason', labelNames: ['reason'], registers });
  const rtt = new Histogram({ name: 'p2p_rtt_seconds', help: 'PING round-trip time to active peers', buckets: RTT_BUCKETS, registers });
  const disconnects = new Counter({ name: 'p2p_disconnects_total', help: 'Connections ended, by reason', labelNames: ['reason'], registers });
  const offenses = new Counter({ name: 'p2p_offenses_total', help: 'Peer faults scored, by reason', labelNames: ['reason'], registers });
  const bans = new Counter({ name: 'p2p_bans_total', help: 'Bans imposed, by kind (peer or address) and reason', labelNames: ['kind', 'reason'], registers });

  const onHandshake = (h: HandshakeInfo): void => handshakeSeconds.observe({ direction: h.direction, kem: h.kem }, h.ms / 1000);
  const onHandshakeFailed = (reason: string): void => handshakeFailures.inc({ reason });
  const onRtt = (ms: number): void => rtt.observe(ms / 1000);
  const onClosed = (_p: PeerInfo, reason: PqnetError): void => disconnects.inc({ reason: reason.code });
  const onOffense = (_p: PeerInfo, reason: Reason): void => offenses.inc({ reason });
  const onBanned = (b: BanRecord): void => bans.inc({ kind: b.kind, reason: b.reason });
  node.on('handshake', onHandshake);
  node.on('handshake:failed', onHandshakeFailed);
  node.on('rtt', onRtt);
  node.on('peer:closed', onClosed);
  node.on('peer:offense', onOffense);
  node.on('banned', onBanned);
  return {
    registry,
    close() {
      node.off('handshake', onHandshake);
      node.off('handshake:failed', onHandshakeFailed);
      node.off('rtt', onRtt);
      node.off('peer:closed', onClosed);
      node.off('peer:offense', onOffense);
      node.off('banned', onBanned);
    },
  };
}
