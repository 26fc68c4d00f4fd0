/**
 * Gossip scenarios on the simulator: N real pqnet nodes (`Node` + `Gossip`:
 * handshake, mux, peers, gossip router, SQLite peer stores) in one process
 * on a `SimNetwork` with a `VirtualClock`. Only sockets and time are
 * simulated.
 *
 * A run: nodes start and dial `outbound` seeded random others (spread over
 * the first second); the mesh forms during `warmupMs`; then `messages` items
 * of `messageBytes` are published at `ratePerSecond` from random honest
 * nodes that stay up for the whole run; the run ends `drainMs` after the
 * last publish. Adversaries are a share of the nodes:
 *   - droppers run the real code with a validator that ignores every item:
 *     they stay subscribed and in meshes but never forward or offer anything;
 *   - spammers push invalid items (first byte 0xff) to every gossip peer at
 *     `spamFactor` × the topic rate cap, from `spamAtMs`, through the real
 *     wire (they bypass their own router, which would never forward them).
 * Honest validators accept an item unless its first byte is 0xff.
 *
 * Faults during the publish phase (sim/README.md, "Gossip scenarios"):
 *   - churn: a seeded share of the honest nodes cycle: each leaves every
 *     `everyMs` (first at a seeded offset) by crashing (its host vanishes,
 *     peers see resets) or, with `graceful`, by `gossip.stop()` +
 *     `node.stop()` (GOODBYEs); `downMs` later a fresh process (new `Node` +
 *     `Gossip`, same identity, address and peer-store file, as a restarted
 *     daemon) starts, re-dials its planned outbound peers and subscribes;
 *   - partition: a seeded share of the nodes is cut off from the rest at
 *     `atMs` after publishing starts, and the cut heals `healMs` later
 *     (bytes across it are held, as TCP would retransmit them, not lost).
 *
 * Figures: delivery to honest nodes that were up for the whole run, publish
 * to receipt latency p50/p99/max (virtual ms; items held by a partition are
 * reported apart), amplification (bytes written on every link during the
 * publish phase ÷ (item bytes × receipts)), the connection graph's
 * shortest-path diameter in latency (the target is p99 < 200 ms + diameter),
 * mesh sizes, when each spammer was disconnected by its honest neighbours,
 * churn and partition figures, the simulation's own wall time, events and
 * heap, and a SHA3 hash of the delivery trace (same seed, same hash).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SeededRandom, uniformInt } from '../src/core/random.ts';
import { GOSSIP_PROTOCOL, gossipMessages } from '../src/gossip/messages.ts';
import { DEFAULT_GOSSIP_PARAMS, type GossipParams } from '../src/gossip/params.ts';
import { Gossip } from '../src/node/gossip.ts';
import { Node } from '../src/node/node.ts';
import type { SigAlg } from '../src/secure/algorithms.ts';
import { generateIdentity, type Identity } from '../src/secure/identity.ts';
import { VirtualClock } from './clock.ts';
import { SimNetwork } from './network.ts';

/**
 * Churn: `share` of the honest nodes (drawn from the seed; they never
 * publish) cycle during the publish phase. Each leaves at a seeded offset in
 * [0, everyMs) after publishing starts and every `everyMs` after that while
 * publishing lasts, and `downMs` later a fresh process takes its place.
 */
export interface ChurnSpec {
  readonly share: number;
  readonly everyMs: number;
  /** 0 < downMs < everyMs. */
  readonly downMs: number;
  /**
   * Leave by `gossip.stop()` then `node.stop()` (GOODBYE to every peer).
   * Default false: a crash, the host's streams are reset and its listener
   * closed at once (peers learn it one latency later), then the process is
   * stopped without a word on the wire.
   */
  readonly graceful?: boolean;
  /** A fresh process is settled this long after its first gossip connection became active (default 0: at once). */
  readonly settleMs?: number;
  /** An item counts for a process only if published at least this long before it leaves (default: one heartbeat). */
  readonly graceMs?: number;
}

/** Partition: `share` of all the nodes (drawn from the seed) lose every link to the others from `atMs` after publishing starts, for `healMs`. */
export interface PartitionSpec {
  readonly atMs: number;
  readonly healMs: number;
  /** 0 < share < 1. */
  readonly share: number;
  /** Time an item is given to spread (default: two heartbeats); see `PartitionResult`. */
  readonly graceMs?: number;
}

export interface GossipScenario {
  readonly seed: string;
  readonly nodes: number;
  readonly outbound: number;
  /** Link latency of each pair, uniform in [min, max) ms, drawn from the seed. */
  readonly latencyMs: readonly [number, number];
  readonly bandwidthBytesPerSec?: number;
  readonly loss?: number;
  readonly messageBytes: number;
  readonly messages: number;
  readonly ratePerSecond: number;
  readonly warmupMs: number;
  readonly drainMs: number;
  /** Shares of the nodes (0..1). */
  readonly droppers?: number;
  readonly spammers?: number;
  readonly spamFactor?: number;
  /** When spammers start, ms of virtual time (default: when publishing starts). */
  readonly spamAtMs?: number;
  readonly params?: Partial<GossipParams>;
  /** The scenario topic's rate cap per peer, items per second (default max(10, 2 × ratePerSecond)). */
  readonly topicRate?: number;
  readonly identity?: SigAlg;
  readonly churn?: ChurnSpec;
  readonly partition?: PartitionSpec;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/**
 * Churn figures. A process (the first one of a cycling node, or a fresh one)
 * is up from its start to its leave (or the run's end). It is settled from
 * `settleMs` after its first active gossip connection (the first process:
 * from the start; a fresh one that never connects is never settled). An item
 * is expected at a process iff it was published at or after the process was
 * settled and at least `graceMs` before it left (or the run ended).
 */
export interface ChurnResult {
  /** Cycling nodes. */
  readonly nodes: number;
  readonly graceful: boolean;
  /** Leaves, and fresh processes started. */
  readonly left: number;
  readonly joined: number;
  /** Fresh processes that got an active gossip connection, and the time from their start to it (ms). */
  readonly connected: number;
  readonly connectMs: { readonly p50: number; readonly max: number };
  readonly settleMs: number;
  readonly graceMs: number;
  /** (process, item) pairs expected, and of those received. */
  readonly expected: number;
  readonly received: number;
  readonly deliveryWhileUp: number;
  /** Receipts of items that were not expected (published before it settled, e.g. pulled by IWANT after a restart, or too close to its leave). */
  readonly receivedOutsideWindow: number;
  /** Publish to receipt of the expected receipts. */
  readonly latencyMs: LatencySummary;
}

/**
 * Partition figures, over the honest nodes up for the whole run. Split items
 * are published in [split, heal); held items are published in
 * [split − graceMs, heal) (earlier ones had time to spread before the cut)
 * and their receipts are left out of the run's `latencyMs`.
 */
export interface PartitionResult {
  /** Nodes on each side (the seeded share first). */
  readonly sides: readonly [number, number];
  /** Connected components of each side's graph of active connections between forwarding (non-dropper) nodes, at the split. */
  readonly components: readonly [number, number];
  readonly items: number;
  /**
   * Split items published at least `graceMs` before the heal: receipts by
   * the heal at the nodes of the publisher's side and component there, over
   * how many such nodes there are.
   */
  readonly withinSide: { readonly items: number; readonly expected: number; readonly received: number; readonly delivery: number };
  /** Receipts of split items on the publisher's far side before the heal (0 while the cut holds), and after it. */
  readonly crossedBeforeHeal: number;
  readonly crossedAfterHeal: number;
  /** Receipts of split items by the end of the run ÷ (items × (nodes − 1)). */
  readonly deliveryAfterHeal: number;
  /** From the heal to the last receipt of a held item (0: none arrived after the heal). */
  readonly healToLastReceiptMs: number;
  readonly graceMs: number;
  /** Publish to receipt of the held items. */
  readonly latencyMs: LatencySummary;
}

export interface GossipScenarioResult {
  readonly nodes: number;
  readonly honest: number;
  readonly droppers: number;
  readonly spammers: number;
  readonly messages: number;
  /** Receipts at honest nodes up for the whole run (not cycling), over messages × (those nodes − 1). */
  readonly receipts: number;
  readonly expected: number;
  readonly delivery: number;
  /** Publish to receipt at the nodes `delivery` counts, items held by a partition left out. */
  readonly latencyMs: LatencySummary;
  readonly diameterMs: number;
  readonly targetP99Ms: number;
  /** Bytes written ÷ (item bytes × receipts at every honest process, cycling ones included). */
  readonly amplification: number;
  readonly bytesWritten: number;
  /**
   * Where the bytes went, per receipt: items sent (pushes and IWANT answers),
   * duplicates received, ids announced by IHAVE, and control messages.
   */
  readonly perReceipt: { readonly itemsSent: number; readonly duplicates: number; readonly ihaveIds: number; readonly controlMessages: number };
  readonly mesh: { readonly min: number; readonly median: number; readonly max: number };
  readonly connections: number;
  /** Spammer links to honest nodes, and how many of them honest nodes closed, and when (ms after the spam began). */
  readonly spam: { readonly links: number; readonly closed: number; readonly lastCloseMs: number };
  /** Present when the scenario has `churn`. */
  readonly churn?: ChurnResult;
  /** Present when the scenario has `partition`. */
  readonly partition?: PartitionResult;
  readonly virtualMs: number;
  readonly wallMs: number;
  readonly events: number;
  readonly heapMb: number;
  readonly traceHash: string;
}

const TOPIC = 'sim';
const PORT = 7000;
const INVALID = 0xff;

interface SimNode {
  readonly index: number;
  /** Process generation: 0 for the first, +1 per restart. */
  readonly gen: number;
  readonly ip: string;
  readonly node: Node;
  readonly gossip: Gossip;
  readonly role: 'honest' | 'dropper' | 'spammer';
}

/** One process of a cycling node. */
interface Life {
  readonly sim: SimNode;
  readonly startAt: number;
  /** First active gossip connection (the first process: 0, it was up through the warmup). */
  connectedAt: number | undefined;
  leaveAt: number | undefined;
  /** Item -> receipt time. */
  readonly got: Map<number, number>;
}

function ipOf(i: number): string {
  // One /24 per node, so the per-subnet caps see distinct networks.
  return `10.${(i >> 8) & 255}.${i & 255}.1`;
}

/** Latency of a pair: uniform in [lo, hi), fixed by the seed and the pair. */
function pairLatency(seed: string, a: string, b: string, lo: number, hi: number): number {
  const [x, y] = a < b ? [a, b] : [b, a];
  const h = createHash('sha3-256').update(`${seed}|${x}|${y}`).digest();
  return lo + ((h.readUInt32BE(0) / 2 ** 32) * (hi - lo));
}

export async function runGossipScenario(s: GossipScenario): Promise<GossipScenarioResult> {
  checkScenario(s);
  const wall0 = performance.now();
  const clock = new VirtualClock();
  const [lo, hi] = s.latencyMs;
  const net = new SimNetwork({
    clock,
    random: new SeededRandom(`${s.seed}/net`),
    defaultLink: { latencyMs: lo, bandwidthBytesPerSec: s.bandwidthBytesPerSec, loss: s.loss },
    latencyOf: (a, b) => pairLatency(s.seed, a, b, lo, hi),
  });
  const rng = new SeededRandom(`${s.seed}/plan`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-sim-'));
  const rate = s.topicRate ?? Math.max(10, 2 * s.ratePerSecond);
  const heartbeatMs = s.params?.heartbeatMs ?? DEFAULT_GOSSIP_PARAMS.heartbeatMs;
  const N = s.nodes;
  const roles = assignRoles(s, rng);
  // Separate generators, so adding churn or a partition leaves the rest of the plan as it was.
  const churning = pickChurning(s, roles);
  const side = pickSides(s);
  const identities: Identity[] = [];
  const nodes: SimNode[] = [];
  /** Every process ever started, for the traffic counters. */
  const processes: SimNode[] = [];
  const publishAt: number[] = [];
  const publisher: number[] = [];
  /** Receipt time of item k at node i (whole-run honest nodes only), NaN if none. */
  const recvAt = new Float64Array(s.messages * N).fill(NaN);
  const lives: Life[] = [];
  const current = new Map<number, Life>(); // cycling node -> its latest process
  const stopping: Promise<unknown>[] = [];
  const faults: unknown[] = [];
  const trace = createHash('sha3-256');
  let receipts = 0;
  let churnReceipts = 0;
  let left = 0;
  let joined = 0;

  const attach = (n: SimNode, life: Life | undefined): void => {
    if (life !== undefined) {
      n.node.on('peer:active', (p) => {
        if (life.connectedAt === undefined && p.protocols.includes(GOSSIP_PROTOCOL)) life.connectedAt = clock.now();
      });
    }
    n.gossip.on('message', (m) => {
      const k = new DataView(m.payload.buffer, m.payload.byteOffset, 4).getUint32(0);
      const at = publishAt[k];
      if (at === undefined || n.role !== 'honest') return;
      const now = clock.now();
      if (life !== undefined) {
        if (life.got.has(k)) return;
        life.got.set(k, now);
        churnReceipts++;
        trace.update(`${n.index}.${n.gen}:${k}:${(now - at).toFixed(3)};`);
        return;
      }
      const slot = k * N + n.index;
      if (!Number.isNaN(recvAt[slot])) return;
      recvAt[slot] = now;
      receipts++;
      trace.update(`${n.index}:${k}:${(now - at).toFixed(3)};`);
    });
  };
  const spawn = (i: number, gen: number): SimNode => {
    identities[i] ??= generateIdentity(s.identity ?? 'ml-dsa-65', undefined, new SeededRandom(`${s.seed}/id/${i}`));
    const n = makeNode(s, i, gen, roles[i]!, identities[i], clock, net, dir, rate);
    nodes[i] = n;
    processes.push(n);
    let life: Life | undefined;
    if (churning.has(i)) {
      life = { sim: n, startAt: clock.now(), connectedAt: gen === 0 ? 0 : undefined, leaveAt: undefined, got: new Map() };
      lives.push(life);
      current.set(i, life);
    }
    attach(n, life);
    return n;
  };

  try {
    for (let i = 0; i < N; i++) spawn(i, 0);
    await drive(clock, Promise.all(nodes.map((n) => n.node.start())));
    // Dials, spread over the first second.
    const edges = dialPlan(s, rng);
    const dialing: Promise<unknown>[] = [];
    for (const [k, [a, b]] of edges.entries()) {
      clock.schedule((k * 1000) / edges.length, () => {
        dialing.push(nodes[a]!.node.connect(`sim://${ipOf(b)}:${PORT}`).then(() => undefined, () => undefined));
      });
    }
    await clock.run(s.warmupMs);
    await drive(clock, Promise.all(dialing), 30_000);

    // Spam: honest nodes' view of each spammer link, and when they closed it (cycling nodes left out: their leaving would count as a close).
    const spamStart = s.spamAtMs ?? s.warmupMs;
    const spamLinks = new Map<string, number | undefined>(); // `${honest}|${spammer}` -> closed at
    const spammerIds = new Set(nodes.filter((n) => n.role === 'spammer').map((n) => n.node.peerId));
    const watching = nodes.filter((n) => n.role !== 'spammer' && !churning.has(n.index));
    for (const n of watching) {
      n.node.on('peer:closed', (p) => {
        const key = `${n.index}|${p.peerId}`;
        if (p.peerId !== undefined && spammerIds.has(p.peerId) && spamLinks.has(key) && spamLinks.get(key) === undefined) spamLinks.set(key, clock.now() - spamStart);
      });
    }
    if (spammerIds.size > 0) {
      clock.schedule(spamStart, () => {
        for (const n of watching) {
          for (const p of n.node.peers()) if (p.peerId !== undefined && spammerIds.has(p.peerId) && p.state === 'active') spamLinks.set(`${n.index}|${p.peerId}`, undefined);
        }
      });
      for (const sp of nodes.filter((n) => n.role === 'spammer')) scheduleSpam(sp, clock, spamStart, rate * (s.spamFactor ?? 100), s.messageBytes);
    }

    // Publishing from random honest nodes that stay up.
    const stable = nodes.filter((n) => n.role === 'honest' && !churning.has(n.index));
    net.resetStats();
    clock.resetCounters();
    const baseline = new Map(processes.map((n) => [n, routerTraffic(n)]));
    const payloadRng = new SeededRandom(`${s.seed}/payloads`);
    const pubEnd = s.warmupMs + (s.messages * 1000) / s.ratePerSecond;
    const end = pubEnd + s.drainMs;
    for (let k = 0; k < s.messages; k++) {
      const at = s.warmupMs + (k * 1000) / s.ratePerSecond;
      const from = stable[uniformInt(rng, stable.length)]!;
      const payload = payloadRng.bytes(s.messageBytes);
      new DataView(payload.buffer).setUint32(0, k);
      payload[4] = 0; // never the invalid marker
      publisher[k] = from.index;
      clock.schedule(at, () => {
        publishAt[k] = clock.now();
        recvAt[k * N + from.index] = clock.now();
        from.gossip.publish(TOPIC, payload);
      });
    }

    // Churn: leaves and restarts at seeded times.
    const churn = s.churn;
    if (churn !== undefined) {
      const outboundOf = new Map<number, number[]>();
      for (const [a, b] of edges) outboundOf.set(a, [...(outboundOf.get(a) ?? []), b]);
      const leave = (i: number): void => {
        const life = current.get(i)!;
        const n = life.sim;
        life.leaveAt = clock.now();
        left++;
        trace.update(`leave:${i}@${clock.now()};`);
        n.gossip.stop();
        if (churn.graceful !== true) net.disconnectHost(n.ip);
        stopping.push(n.node.stop().catch((e: unknown) => faults.push(e)));
      };
      const join = (i: number): void => {
        const n = spawn(i, current.get(i)!.sim.gen + 1);
        joined++;
        trace.update(`join:${i}@${clock.now()};`);
        n.node.start().then(
          () => {
            for (const b of outboundOf.get(i) ?? []) n.node.connect(`sim://${ipOf(b)}:${PORT}`).catch(() => undefined);
          },
          (e: unknown) => faults.push(e),
        );
      };
      const churnRng = new SeededRandom(`${s.seed}/churn/times`);
      for (const i of churning) {
        for (let t = s.warmupMs + uniformInt(churnRng, Math.ceil(churn.everyMs)); t < pubEnd; t += churn.everyMs) {
          clock.schedule(t, () => leave(i));
          if (t + churn.downMs < end) clock.schedule(t + churn.downMs, () => join(i));
        }
      }
    }

    // Partition: split and heal.
    const part = s.partition;
    const splitAt = s.warmupMs + (part?.atMs ?? 0);
    const healAt = splitAt + (part?.healMs ?? 0);
    let component: Int32Array | undefined;
    if (part !== undefined) {
      clock.schedule(splitAt, () => {
        net.partition([nodes.filter((n) => side[n.index] === 0).map((n) => n.ip)]);
        component = sideComponents(nodes, side, (i) => roles[i] !== 'dropper' && current.get(i)?.leaveAt === undefined);
        trace.update(`split@${clock.now()};`);
      });
      clock.schedule(healAt, () => {
        net.heal();
        trace.update(`heal@${clock.now()};`);
      });
    }

    await clock.run(end);
    const written = net.stats().bytesWritten;
    const events = clock.eventsFired;
    const traffic = [0, 0, 0, 0];
    for (const n of processes) {
      if (n.role === 'spammer') continue;
      const now = routerTraffic(n);
      const before = baseline.get(n) ?? [0, 0, 0, 0];
      for (let j = 0; j < 4; j++) traffic[j]! += now[j]! - before[j]!;
    }
    const up = (n: SimNode): boolean => current.get(n.index)?.leaveAt === undefined;
    const connections = nodes.filter(up).reduce((a, n) => a + n.node.peers().filter((p) => p.state === 'active').length, 0) / 2;
    const mesh = nodes.filter((n) => n.role === 'honest' && up(n)).map((n) => n.gossip.router.meshPeers(TOPIC).length).sort((a, b) => a - b);
    const expected = s.messages * (stable.length - 1);
    const partGrace = part?.graceMs ?? 2 * heartbeatMs;
    const held = (k: number): boolean => part !== undefined && publishAt[k]! >= splitAt - partGrace && publishAt[k]! < healAt;
    const latencies: number[] = [];
    const heldLatencies: number[] = [];
    for (let k = 0; k < s.messages; k++) {
      for (const n of stable) {
        const at = recvAt[k * N + n.index]!;
        if (n.index === publisher[k] || Number.isNaN(at)) continue;
        (held(k) ? heldLatencies : latencies).push(at - publishAt[k]!);
      }
    }
    const diameterMs = diameter(nodes.filter(up), s);
    const closes = [...spamLinks.values()].filter((v): v is number => v !== undefined);
    const heapMb = process.memoryUsage().heapUsed / 2 ** 20;
    await drive(clock, Promise.allSettled(stopping));
    await stopAll(nodes, clock);
    if (faults.length > 0) throw faults[0] as Error;
    const allReceipts = receipts + churnReceipts;
    return {
      nodes: N,
      honest: roles.filter((r) => r === 'honest').length,
      droppers: roles.filter((r) => r === 'dropper').length,
      spammers: spammerIds.size,
      messages: s.messages,
      receipts,
      expected,
      delivery: round(receipts / expected, 5),
      latencyMs: summary(latencies),
      diameterMs: round(diameterMs),
      targetP99Ms: round(200 + diameterMs),
      amplification: round(written / (s.messageBytes * allReceipts), 3),
      bytesWritten: written,
      perReceipt: {
        itemsSent: round(traffic[0]! / allReceipts, 3),
        duplicates: round(traffic[1]! / allReceipts, 3),
        ihaveIds: round(traffic[2]! / allReceipts, 3),
        controlMessages: round(traffic[3]! / allReceipts, 3),
      },
      mesh: { min: mesh[0] ?? 0, median: mesh[Math.floor(mesh.length / 2)] ?? 0, max: mesh.at(-1) ?? 0 },
      connections,
      spam: { links: spamLinks.size, closed: closes.length, lastCloseMs: round(Math.max(0, ...closes)) },
      ...(churn === undefined ? {} : { churn: churnFigures(churn, heartbeatMs, churning.size, lives, publishAt, end, left, joined) }),
      ...(part === undefined
        ? {}
        : {
            partition: partitionFigures({ s, side, component, stable, publisher, publishAt, recvAt, splitAt, healAt, graceMs: partGrace, heldLatencies }),
          }),
      virtualMs: end,
      wallMs: round(performance.now() - wall0, 0),
      events,
      heapMb: round(heapMb, 1),
      traceHash: trace.digest('hex'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkScenario(s: GossipScenario): void {
  const bad = (what: string): never => {
    throw new RangeError(`gossip scenario: ${what}`);
  };
  const c = s.churn;
  if (c !== undefined) {
    if (!(c.share >= 0 && c.share <= 1)) bad(`churn.share ${c.share} is not in [0, 1]`);
    if (!(c.everyMs > 0 && Number.isFinite(c.everyMs))) bad(`churn.everyMs ${c.everyMs} must be positive`);
    if (!(c.downMs > 0 && c.downMs < c.everyMs)) bad(`churn.downMs ${c.downMs} must be in (0, everyMs)`);
    if ((c.settleMs ?? 0) < 0 || (c.graceMs ?? 0) < 0) bad('churn.settleMs and graceMs must be >= 0');
  }
  const p = s.partition;
  if (p !== undefined) {
    if (!(p.share > 0 && p.share < 1)) bad(`partition.share ${p.share} is not in (0, 1)`);
    if (!(p.atMs >= 0 && p.healMs > 0)) bad('partition.atMs must be >= 0 and healMs > 0');
    if ((p.graceMs ?? 0) < 0) bad('partition.graceMs must be >= 0');
  }
}

/** The cycling nodes: `churn.share` of the honest ones, from the seed; at least two honest nodes stay (a publisher and a receiver). */
function pickChurning(s: GossipScenario, roles: readonly SimNode['role'][]): Set<number> {
  if (s.churn === undefined) return new Set();
  const honest = shuffled(roles.flatMap((r, i) => (r === 'honest' ? [i] : [])), new SeededRandom(`${s.seed}/churn/nodes`));
  const n = Math.round(s.churn.share * honest.length);
  if (honest.length - n < 2) throw new RangeError(`gossip scenario: churn.share ${s.churn.share} leaves fewer than two honest nodes up`);
  return new Set(honest.slice(0, n));
}

/** Side of each node: 0 for `partition.share` of them (from the seed), else 1. */
function pickSides(s: GossipScenario): Uint8Array {
  const side = new Uint8Array(s.nodes).fill(1);
  if (s.partition === undefined) return side;
  const order = shuffled(Array.from({ length: s.nodes }, (_, i) => i), new SeededRandom(`${s.seed}/partition`));
  for (const i of order.slice(0, Math.round(s.partition.share * s.nodes))) side[i] = 0;
  return side;
}

function shuffled(xs: number[], rng: SeededRandom): number[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = uniformInt(rng, i + 1);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Component id of each node in its side's graph of active connections among the nodes `member` admits (-1: not a member). */
function sideComponents(nodes: readonly SimNode[], side: Uint8Array, member: (i: number) => boolean): Int32Array {
  const index = new Map(nodes.map((n) => [n.node.peerId, n.index]));
  const parent = Int32Array.from(nodes, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) x = parent[x] = parent[parent[x]!]!;
    return x;
  };
  for (const n of nodes) {
    if (!member(n.index)) continue;
    for (const p of n.node.peers()) {
      const j = p.peerId === undefined ? undefined : index.get(p.peerId);
      if (j !== undefined && p.state === 'active' && member(j) && side[j] === side[n.index]) parent[find(j)] = find(n.index);
    }
  }
  return Int32Array.from(nodes, (n) => (member(n.index) ? find(n.index) : -1));
}

function churnFigures(c: ChurnSpec, heartbeatMs: number, cycling: number, lives: readonly Life[], publishAt: readonly number[], end: number, left: number, joined: number): ChurnResult {
  const settleMs = c.settleMs ?? 0;
  const graceMs = c.graceMs ?? heartbeatMs;
  let expected = 0;
  let received = 0;
  let outside = 0;
  const latencies: number[] = [];
  const connect: number[] = [];
  for (const life of lives) {
    if (life.sim.gen > 0 && life.connectedAt !== undefined) connect.push(life.connectedAt - life.startAt);
    const settledAt = life.sim.gen === 0 ? 0 : life.connectedAt === undefined ? Infinity : life.connectedAt + settleMs;
    const until = (life.leaveAt ?? end) - graceMs;
    for (const [k, at] of publishAt.entries()) {
      const inWindow = at >= settledAt && at <= until;
      const got = life.got.get(k);
      if (inWindow) expected++;
      if (got === undefined) continue;
      if (!inWindow) outside++;
      else {
        received++;
        latencies.push(got - at);
      }
    }
  }
  connect.sort((a, b) => a - b);
  return {
    nodes: cycling,
    graceful: c.graceful === true,
    left,
    joined,
    connected: connect.length,
    connectMs: { p50: round(pct(connect, 50)), max: round(connect.at(-1) ?? NaN) },
    settleMs,
    graceMs,
    expected,
    received,
    deliveryWhileUp: round(received / expected, 5),
    receivedOutsideWindow: outside,
    latencyMs: summary(latencies),
  };
}

interface PartitionInputs {
  readonly s: GossipScenario;
  readonly side: Uint8Array;
  readonly component: Int32Array | undefined;
  readonly stable: readonly SimNode[];
  readonly publisher: readonly number[];
  readonly publishAt: readonly number[];
  readonly recvAt: Float64Array;
  readonly splitAt: number;
  readonly healAt: number;
  readonly graceMs: number;
  readonly heldLatencies: number[];
}

function partitionFigures(x: PartitionInputs): PartitionResult {
  const { s, side, stable, publisher, publishAt, recvAt, splitAt, healAt, graceMs } = x;
  const N = s.nodes;
  const component = x.component ?? new Int32Array(N).fill(-1);
  let items = 0;
  let withinItems = 0;
  let withinExpected = 0;
  let withinReceived = 0;
  let crossedBefore = 0;
  let crossedAfter = 0;
  let afterHeal = 0;
  let lastAfterHeal = 0;
  for (let k = 0; k < s.messages; k++) {
    const t = publishAt[k]!;
    const p = publisher[k]!;
    if (t >= splitAt - graceMs && t < healAt) {
      for (const n of stable) {
        const at = recvAt[k * N + n.index]!;
        if (n.index !== p && at >= healAt) lastAfterHeal = Math.max(lastAfterHeal, at - healAt);
      }
    }
    if (t < splitAt || t >= healAt) continue;
    items++;
    const within = t <= healAt - graceMs;
    if (within) withinItems++;
    for (const n of stable) {
      if (n.index === p) continue;
      const at = recvAt[k * N + n.index]!;
      const got = !Number.isNaN(at);
      if (got) afterHeal++;
      if (side[n.index] !== side[p]) {
        if (got && at < healAt) crossedBefore++;
        else if (got) crossedAfter++;
      } else if (within && component[n.index] !== -1 && component[n.index] === component[p]) {
        withinExpected++;
        if (got && at <= healAt) withinReceived++;
      }
    }
  }
  const comps = [new Set<number>(), new Set<number>()];
  for (let i = 0; i < N; i++) if (component[i] !== -1) comps[side[i]!]!.add(component[i]!);
  const inSide0 = side.reduce((a, v) => a + (v === 0 ? 1 : 0), 0);
  return {
    sides: [inSide0, N - inSide0],
    components: [comps[0]!.size, comps[1]!.size],
    items,
    withinSide: { items: withinItems, expected: withinExpected, received: withinReceived, delivery: round(withinReceived / withinExpected, 5) },
    crossedBeforeHeal: crossedBefore,
    crossedAfterHeal: crossedAfter,
    deliveryAfterHeal: round(afterHeal / (items * (stable.length - 1)), 5),
    healToLastReceiptMs: round(lastAfterHeal),
    graceMs,
    latencyMs: summary(x.heldLatencies),
  };
}

/** Router counters of one process: [items sent, duplicates received, ids announced, control messages sent]. */
function routerTraffic(n: SimNode): number[] {
  const st = n.gossip.router.stats();
  const t = st.topics[TOPIC];
  let control = 0;
  for (const c of Object.values(st.control)) control += c.sent;
  return [t?.sent ?? 0, t?.received.duplicate ?? 0, st.ihaveIds, control];
}

function assignRoles(s: GossipScenario, rng: SeededRandom): SimNode['role'][] {
  const roles: SimNode['role'][] = Array.from({ length: s.nodes }, () => 'honest');
  const order = Array.from({ length: s.nodes }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = uniformInt(rng, i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const nd = Math.round((s.droppers ?? 0) * s.nodes);
  const ns = Math.round((s.spammers ?? 0) * s.nodes);
  for (const i of order.slice(0, nd)) roles[i] = 'dropper';
  for (const i of order.slice(nd, nd + ns)) roles[i] = 'spammer';
  return roles;
}

function makeNode(s: GossipScenario, i: number, gen: number, role: SimNode['role'], identity: Identity, clock: VirtualClock, net: SimNetwork, dir: string, rate: number): SimNode {
  const ip = ipOf(i);
  // A restarted process keeps its identity, address and peer-store file; its generators are new.
  const tag = gen === 0 ? `${i}` : `${i}/${gen}`;
  const node = new Node({
    identity,
    chainId: 1,
    storePath: path.join(dir, `n${i}.sqlite`),
    listen: [`sim://${ip}:${PORT}`],
    protocols: [GOSSIP_PROTOCOL],
    transport: net.host(`n${i}`, ip),
    clock,
    random: new SeededRandom(`${s.seed}/rng/${tag}`),
    peerSet: { maxOutbound: s.outbound },
  });
  const gossip = new Gossip(node, clock, { params: s.params, random: new SeededRandom(`${s.seed}/gossip/${tag}`) });
  gossip.define(TOPIC, { priority: 'gossip', maxBytes: Math.max(1024, s.messageBytes), rate: { count: rate, perMs: 1_000, burst: 2 * rate } });
  gossip.setValidator(TOPIC, role === 'dropper' ? () => 'ignore' : (payload) => (payload[0] === INVALID ? 'reject' : 'accept'));
  gossip.subscribe(TOPIC);
  return { index: i, gen, ip, node, gossip, role };
}

/** Each node dials `outbound` distinct random others; no pair twice. */
function dialPlan(s: GossipScenario, rng: SeededRandom): [number, number][] {
  const paired = new Set<string>();
  const edges: [number, number][] = [];
  for (let a = 0; a < s.nodes; a++) {
    let tries = 0;
    for (let k = 0; k < s.outbound && tries < 100 * s.outbound; tries++) {
      const b = uniformInt(rng, s.nodes);
      const key = a < b ? `${a}-${b}` : `${b}-${a}`;
      if (b === a || paired.has(key)) continue;
      paired.add(key);
      edges.push([a, b]);
      k++;
    }
  }
  return edges;
}

/** A spammer pushes invalid items to every active gossip peer, `perSecond` each, in 10 ms rounds. */
function scheduleSpam(sp: SimNode, clock: VirtualClock, startMs: number, perSecond: number, bytes: number): void {
  const perRound = Math.max(1, Math.round(perSecond / 100));
  let seq = 0;
  const round = (): void => {
    const peers = sp.node.peers().filter((p) => p.state === 'active' && p.peerId !== undefined);
    if (peers.length === 0) return;
    for (const p of peers) {
      for (let k = 0; k < perRound; k++) {
        const payload = new Uint8Array(bytes);
        payload[0] = INVALID;
        new DataView(payload.buffer).setUint32(1, seq++);
        sp.node.send(p.peerId!, gossipMessages.item.gossip, [TOPIC, payload]).catch(() => undefined);
      }
    }
    clock.setTimer(10, round);
  };
  clock.schedule(startMs, round);
}

/** Longest shortest path (latency) over the active connections among `nodes` (Dijkstra from every node). */
function diameter(nodes: SimNode[], s: GossipScenario): number {
  const index = new Map(nodes.map((n, k) => [n.node.peerId, k]));
  const adj: [number, number][][] = nodes.map(() => []);
  for (const [k, n] of nodes.entries()) {
    for (const p of n.node.peers()) {
      const j = p.peerId === undefined ? undefined : index.get(p.peerId);
      if (j !== undefined && p.state === 'active') adj[k]!.push([j, pairLatency(s.seed, n.ip, nodes[j]!.ip, s.latencyMs[0], s.latencyMs[1])]);
    }
  }
  let worst = 0;
  for (let src = 0; src < nodes.length; src++) {
    const dist = new Float64Array(nodes.length).fill(Infinity);
    dist[src] = 0;
    const heap = new MinHeap();
    heap.push(0, src);
    while (heap.size > 0) {
      const [d, u] = heap.pop();
      if (d > dist[u]!) continue;
      for (const [v, w] of adj[u]!) {
        if (d + w < dist[v]!) {
          dist[v] = d + w;
          heap.push(d + w, v);
        }
      }
    }
    for (const d of dist) if (d !== Infinity && d > worst) worst = d;
  }
  return worst;
}

class MinHeap {
  readonly #k: number[] = [];
  readonly #v: number[] = [];

  get size(): number {
    return this.#k.length;
  }

  push(k: number, v: number): void {
    const K = this.#k;
    const V = this.#v;
    let i = K.length;
    K.push(k);
    V.push(v);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (K[p]! <= k) break;
      K[i] = K[p]!;
      V[i] = V[p]!;
      i = p;
    }
    K[i] = k;
    V[i] = v;
  }

  pop(): [number, number] {
    const K = this.#k;
    const V = this.#v;
    const top: [number, number] = [K[0]!, V[0]!];
    const k = K.pop()!;
    const v = V.pop()!;
    if (K.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= K.length) break;
        const c = l + 1 < K.length && K[l + 1]! < K[l]! ? l + 1 : l;
        if (K[c]! >= k) break;
        K[i] = K[c]!;
        V[i] = V[c]!;
        i = c;
      }
      K[i] = k;
      V[i] = v;
    }
    return top;
  }
}

/** Await `p` while moving virtual time in 10 ms steps (what it waits for happens on the clock); at most `maxMs`. */
export async function drive<T>(clock: VirtualClock, p: Promise<T>, maxMs = 60_000): Promise<T> {
  let done = false;
  const settled = p.finally(() => {
    done = true;
  });
  for (let t = 0; t < maxMs && !done; t += 10) await clock.advance(10);
  if (!done) throw new Error(`simulation: still waiting after ${maxMs} ms of virtual time`);
  return settled;
}

/** Stop every node while driving the clock (stop waits for GOODBYEs on virtual time). */
async function stopAll(nodes: SimNode[], clock: VirtualClock): Promise<void> {
  for (const n of nodes) n.gossip.stop();
  await drive(clock, Promise.allSettled(nodes.map((n) => n.node.stop())));
}

function summary(xs: number[]): LatencySummary {
  const sorted = xs.sort((a, b) => a - b);
  return { p50: round(pct(sorted, 50)), p99: round(pct(sorted, 99)), max: round(sorted.at(-1) ?? NaN) };
}

function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

