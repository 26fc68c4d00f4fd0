/**
 * Gossip scenarios on the simulator: N real pqnet nodes (`Node` + `Gossip`:
 * handshake, mux, peers, gossip router, SQLite peer stores) in one process
 * on a `SimNetwork` with a `VirtualClock`. Only sockets and time are
 * simulated.
 *
 * A run: nodes start and dial `outbound` seeded random others (spread over
 * the first second); the mesh forms during `warmupMs`; then `messages` items
 * of `messageBytes` are published at `ratePerSecond` from random honest
 * nodes; the run ends `drainMs` after the last publish. Adversaries are a
 * share of the nodes:
 *   - droppers run the real code with a validator that ignores every item:
 *     they stay subscribed and in meshes but never forward or offer anything;
 *   - spammers push invalid items (first byte 0xff) to every gossip peer at
 *     `spamFactor` × the topic rate cap, from `spamAtMs`, through the real
 *     wire (they bypass their own router, which would never forward them).
 * Honest validators accept an item unless its first byte is 0xff.
 *
 * Figures: delivery to honest nodes that were up for the whole run, publish
 * to receipt latency p50/p99/max (virtual ms), amplification (bytes written
 * on every link during the publish phase ÷ (item bytes × receipts)), the
 * connection graph's shortest-path diameter in latency (the target is p99 <
 * 200 ms + diameter), mesh sizes, when each spammer was disconnected by its
 * honest neighbours, the simulation's own wall time, events and heap, and a
 * SHA3 hash of the delivery trace (same seed, same hash).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SeededRandom, uniformInt } from '../src/core/random.ts';
import { GOSSIP_PROTOCOL, gossipMessages } from '../src/gossip/messages.ts';
import type { GossipParams } from '../src/gossip/params.ts';
import { Gossip } from '../src/node/gossip.ts';
import { Node } from '../src/node/node.ts';
import type { SigAlg } from '../src/secure/algorithms.ts';
import { generateIdentity } from '../src/secure/identity.ts';
import { VirtualClock } from './clock.ts';
import { SimNetwork } from './network.ts';

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
}

export interface GossipScenarioResult {
  readonly nodes: number;
  readonly honest: number;
  readonly droppers: number;
  readonly spammers: number;
  readonly messages: number;
  readonly receipts: number;
  readonly expected: number;
  readonly delivery: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly diameterMs: number;
  readonly targetP99Ms: number;
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
  readonly ip: string;
  readonly node: Node;
  readonly gossip: Gossip;
  readonly role: 'honest' | 'dropper' | 'spammer';
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
  const roles = assignRoles(s, rng);
  const nodes: SimNode[] = [];
  const publishAt: number[] = [];
  const trace = createHash('sha3-256');
  const latencies: number[] = [];
  let receipts = 0;
  try {
    for (let i = 0; i < s.nodes; i++) nodes.push(makeNode(s, i, roles[i]!, clock, net, dir, rate));
    const receivedBy = nodes.map(() => new Set<number>());
    for (const n of nodes) {
      n.gossip.on('message', (m) => {
        const k = new DataView(m.payload.buffer, m.payload.byteOffset, 4).getUint32(0);
        const at = publishAt[k];
        if (at === undefined || n.role !== 'honest' || receivedBy[n.index]!.has(k)) return;
        receivedBy[n.index]!.add(k);
        receipts++;
        const ms = clock.now() - at;
        latencies.push(ms);
        trace.update(`${n.index}:${k}:${ms.toFixed(3)};`);
      });
    }
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

    // Spam: honest nodes' view of each spammer link, and when they closed it.
    const spamStart = s.spamAtMs ?? s.warmupMs;
    const spamLinks = new Map<string, number | undefined>(); // `${honest}|${spammer}` -> closed at
    const spammerIds = new Set(nodes.filter((n) => n.role === 'spammer').map((n) => n.node.peerId));
    for (const n of nodes) {
      if (n.role === 'spammer') continue;
      n.node.on('peer:closed', (p) => {
        const key = `${n.index}|${p.peerId}`;
        if (p.peerId !== undefined && spammerIds.has(p.peerId) && spamLinks.has(key) && spamLinks.get(key) === undefined) spamLinks.set(key, clock.now() - spamStart);
      });
    }
    if (spammerIds.size > 0) {
      clock.schedule(spamStart, () => {
        for (const n of nodes) {
          if (n.role === 'spammer') continue;
          for (const p of n.node.peers()) if (p.peerId !== undefined && spammerIds.has(p.peerId) && p.state === 'active') spamLinks.set(`${n.index}|${p.peerId}`, undefined);
        }
      });
      for (const sp of nodes.filter((n) => n.role === 'spammer')) scheduleSpam(sp, clock, spamStart, rate * (s.spamFactor ?? 100), s.messageBytes);
    }

    // Publishing from random honest nodes.
    const honest = nodes.filter((n) => n.role === 'honest');
    net.resetStats();
    clock.resetCounters();
    const before = honestTraffic(nodes);
    const payloadRng = new SeededRandom(`${s.seed}/payloads`);
    for (let k = 0; k < s.messages; k++) {
      const at = s.warmupMs + (k * 1000) / s.ratePerSecond;
      const from = honest[uniformInt(rng, honest.length)]!;
      const payload = payloadRng.bytes(s.messageBytes);
      new DataView(payload.buffer).setUint32(0, k);
      payload[4] = 0; // never the invalid marker
      clock.schedule(at, () => {
        publishAt[k] = clock.now();
        receivedBy[from.index]!.add(k);
        from.gossip.publish(TOPIC, payload);
      });
    }
    const end = s.warmupMs + (s.messages * 1000) / s.ratePerSecond + s.drainMs;
    await clock.run(end);
    const written = net.stats().bytesWritten;
    const events = clock.eventsFired;
    const traffic = honestTraffic(nodes).map((v, i) => v - before[i]!);

    const connections = nodes.reduce((a, n) => a + n.node.peers().filter((p) => p.state === 'active').length, 0) / 2;
    const mesh = honest.map((n) => n.gossip.router.meshPeers(TOPIC).length).sort((a, b) => a - b);
    const expected = s.messages * (honest.length - 1);
    const sorted = latencies.sort((a, b) => a - b);
    const diameterMs = diameter(nodes, s);
    const closes = [...spamLinks.values()].filter((v): v is number => v !== undefined);
    const heapMb = process.memoryUsage().heapUsed / 2 ** 20;
    await stopAll(nodes, clock);
    return {
      nodes: s.nodes,
      honest: honest.length,
      droppers: nodes.filter((n) => n.role === 'dropper').length,
      spammers: spammerIds.size,
      messages: s.messages,
      receipts,
      expected,
      delivery: round(receipts / expected, 5),
      latencyMs: { p50: round(pct(sorted, 50)), p99: round(pct(sorted, 99)), max: round(sorted.at(-1) ?? NaN) },
      diameterMs: round(diameterMs),
      targetP99Ms: round(200 + diameterMs),
      amplification: round(written / (s.messageBytes * receipts), 3),
      bytesWritten: written,
      perReceipt: {
        itemsSent: round(traffic[0]! / receipts, 3),
        duplicates: round(traffic[1]! / receipts, 3),
        ihaveIds: round(traffic[2]! / receipts, 3),
        controlMessages: round(traffic[3]! / receipts, 3),
      },
      mesh: { min: mesh[0] ?? 0, median: mesh[Math.floor(mesh.length / 2)] ?? 0, max: mesh.at(-1) ?? 0 },
      connections,
      spam: { links: spamLinks.size, closed: closes.length, lastCloseMs: round(Math.max(0, ...closes)) },
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

/** Router counters summed over the non-spammer nodes: [items sent, duplicates received, ids announced, control messages sent]. */
function honestTraffic(nodes: readonly SimNode[]): number[] {
  const sum = [0, 0, 0, 0];
  for (const n of nodes) {
    if (n.role === 'spammer') continue;
    const st = n.gossip.router.stats();
    const t = st.topics[TOPIC];
    if (t !== undefined) {
      sum[0]! += t.sent;
      sum[1]! += t.received.duplicate;
    }
    sum[2]! += st.ihaveIds;
    for (const c of Object.values(st.control)) sum[3]! += c.sent;
  }
  return sum;
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

function makeNode(s: GossipScenario, i: number, role: SimNode['role'], clock: VirtualClock, net: SimNetwork, dir: string, rate: number): SimNode {
  const ip = ipOf(i);
  const node = new Node({
    identity: generateIdentity(s.identity ?? 'ml-dsa-65', undefined, new SeededRandom(`${s.seed}/id/${i}`)),
    chainId: 1,
    storePath: path.join(dir, `n${i}.sqlite`),
    listen: [`sim://${ip}:${PORT}`],
    protocols: [GOSSIP_PROTOCOL],
    transport: net.host(`n${i}`, ip),
    clock,
    random: new SeededRandom(`${s.seed}/rng/${i}`),
    peerSet: { maxOutbound: s.outbound },
  });
  const gossip = new Gossip(node, clock, { params: s.params, random: new SeededRandom(`${s.seed}/gossip/${i}`) });
  gossip.define(TOPIC, { priority: 'gossip', maxBytes: Math.max(1024, s.messageBytes), rate: { count: rate, perMs: 1_000, burst: 2 * rate } });
  gossip.setValidator(TOPIC, role === 'dropper' ? () => 'ignore' : (payload) => (payload[0] === INVALID ? 'reject' : 'accept'));
  gossip.subscribe(TOPIC);
  return { index: i, ip, node, gossip, role };
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

/** Longest shortest path (latency) over the active connections (Dijkstra from every node). */
function diameter(nodes: SimNode[], s: GossipScenario): number {
  const index = new Map(nodes.map((n) => [n.node.peerId, n.index]));
  const adj: [number, number][][] = nodes.map(() => []);
  for (const n of nodes) {
    for (const p of n.node.peers()) {
      const j = p.peerId === undefined ? undefined : index.get(p.peerId);
      if (j !== undefined && p.state === 'active') adj[n.index]!.push([j, pairLatency(s.seed, n.ip, ipOf(j), s.latencyMs[0], s.latencyMs[1])]);
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

function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

