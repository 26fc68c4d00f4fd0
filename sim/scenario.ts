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
 *
 * Here: the run, as steps over one `Run` (start, dial, spam, publishing,
 * faults, measure, stop, result). The rest, one concept per file:
 * scenario-types.ts (specs and results, re-exported here), plan.ts (checks,
 * roles, dials), sim-node.ts (one process), deliveries.ts (publishes,
 * receipts, trace), spam.ts, churn.ts, partition.ts, graph.ts (diameter),
 * _stats.ts (percentiles, rounding).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SeededRandom, uniformInt } from '../src/core/random.ts';
import { DEFAULT_GOSSIP_PARAMS } from '../src/gossip/params.ts';
import { generateIdentity, type Identity } from '../src/secure/identity.ts';
import { Churn, type ChurnHost } from './churn.ts';
import { VirtualClock } from './clock.ts';
import { Deliveries } from './deliveries.ts';
import { diameter } from './graph.ts';
import { SimNetwork } from './network.ts';
import { Partition } from './partition.ts';
import { assignRoles, checkScenario, dialPlan } from './plan.ts';
import type { GossipScenario, GossipScenarioResult, LatencySummary } from './scenario-types.ts';
import { addrOf, makeNode, pairLatency, routerTraffic, TOPIC, type NodeEnv, type Role, type SimNode } from './sim-node.ts';
import { SpamWatch } from './spam.ts';
import { round, summary } from './_stats.ts';

export type { ChurnResult, ChurnSpec, GossipScenario, GossipScenarioResult, LatencySummary, PartitionResult, PartitionSpec } from './scenario-types.ts';

export async function runGossipScenario(s: GossipScenario): Promise<GossipScenarioResult> {
  checkScenario(s);
  const wall0 = performance.now();
  const run = new Run(s);
  try {
    await run.start();
    await run.dial();
    run.startSpam();
    run.schedulePublishing();
    run.scheduleFaults();
    await run.clock.run(run.end);
    const m = run.measure();
    await run.stop();
    return run.result(m, wall0);
  } finally {
    run.removeFiles();
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

/** Figures taken when the run ends, before its processes stop. */
interface EndFigures {
  readonly written: number;
  readonly events: number;
  /** Router counters since publishing began: items sent, duplicates received, ids announced, control messages. */
  readonly traffic: readonly number[];
  readonly connections: number;
  /** Mesh sizes of the honest processes up, ascending. */
  readonly mesh: readonly number[];
  readonly latencyMs: LatencySummary;
  readonly heldLatencies: number[];
  readonly diameterMs: number;
  readonly spamCloses: readonly number[];
  readonly heapMb: number;
}

/** One run's state; `runGossipScenario` takes its steps in order. */
class Run implements ChurnHost {
  readonly s: GossipScenario;
  readonly clock = new VirtualClock();
  readonly net: SimNetwork;
  readonly deliveries: Deliveries;
  /** Last publish, and the run's end (`drainMs` later). */
  readonly pubEnd: number;
  readonly end: number;
  /** The plan's generator: roles, dials, then publishers. */
  readonly #rng: SeededRandom;
  readonly #roles: Role[];
  readonly #churn: Churn;
  readonly #partition: Partition;
  readonly #env: NodeEnv;
  readonly #identities: Identity[] = [];
  /** Latest process of each node. */
  readonly #nodes: SimNode[] = [];
  /** Every process ever started, for the traffic counters. */
  readonly #processes: SimNode[] = [];
  #edges: [number, number][] = [];
  /** Honest nodes up for the whole run: the publishers, and the receivers `delivery` counts. */
  #stable: SimNode[] = [];
  #spam: SpamWatch | undefined;
  /** Router counters of each process when publishing began. */
  #baseline = new Map<SimNode, number[]>();

  /** The plan, the network, and a directory for the peer stores. */
  constructor(s: GossipScenario) {
    this.s = s;
    const [lo, hi] = s.latencyMs;
    this.net = new SimNetwork({
      clock: this.clock,
      random: new SeededRandom(`${s.seed}/net`),
      defaultLink: { latencyMs: lo, bandwidthBytesPerSec: s.bandwidthBytesPerSec, loss: s.loss },
      latencyOf: (a, b) => pairLatency(s.seed, a, b, lo, hi),
    });
    this.#rng = new SeededRandom(`${s.seed}/plan`);
    const heartbeatMs = s.params?.heartbeatMs ?? DEFAULT_GOSSIP_PARAMS.heartbeatMs;
    this.#roles = assignRoles(s, this.#rng);
    // Separate generators, so adding churn or a partition leaves the rest of the plan as it was.
    this.#churn = new Churn(s, this.#roles, heartbeatMs);
    this.#partition = new Partition(s, heartbeatMs);
    this.deliveries = new Deliveries(s.messages, s.nodes);
    this.pubEnd = s.warmupMs + (s.messages * 1000) / s.ratePerSecond;
    this.end = this.pubEnd + s.drainMs;
    const rate = s.topicRate ?? Math.max(10, 2 * s.ratePerSecond);
    this.#env = { s, clock: this.clock, net: this.net, dir: mkdtempSync(path.join(os.tmpdir(), 'pqnet-sim-')), rate };
  }

  /** Starts the first process of every node. */
  async start(): Promise<void> {
    for (let i = 0; i < this.s.nodes; i++) this.spawn(i, 0);
    await drive(this.clock, Promise.all(this.#nodes.map((n) => n.node.start())));
  }

  /** Makes process `gen` of node `i` (not started), its latest, and records what it receives. */
  spawn(i: number, gen: number): SimNode {
    const { s, clock } = this;
    this.#identities[i] ??= generateIdentity(s.identity ?? 'ml-dsa-65', undefined, new SeededRandom(`${s.seed}/id/${i}`));
    const n = makeNode(this.#env, i, gen, this.#roles[i]!, this.#identities[i]);
    this.#nodes[i] = n;
    this.#processes.push(n);
    const life = this.#churn.begin(n, clock);
    n.gossip.on('message', (m) => this.deliveries.received(n, life, m.payload, clock.now()));
    return n;
  }

  /** The planned dials, spread over the first second; the mesh forms during the warmup. */
  async dial(): Promise<void> {
    const { clock } = this;
    const edges = (this.#edges = dialPlan(this.s, this.#rng));
    const dialing: Promise<unknown>[] = [];
    for (const [k, [a, b]] of edges.entries()) {
      clock.schedule((k * 1000) / edges.length, () => {
        dialing.push(this.#nodes[a]!.node.connect(addrOf(b)).then(() => undefined, () => undefined));
      });
    }
    await clock.run(this.s.warmupMs);
    await drive(clock, Promise.all(dialing), 30_000);
  }

  /** Spammers start at `spamAtMs` (default: when publishing starts), and honest nodes' links to them are watched. */
  startSpam(): void {
    const { s } = this;
    const spamStart = s.spamAtMs ?? s.warmupMs;
    this.#spam = new SpamWatch(this.#nodes, this.#churn.cycling, this.clock, spamStart, this.#env.rate * (s.spamFactor ?? 100), s.messageBytes);
  }

  /** Items from random honest nodes that stay up, at `ratePerSecond`; traffic counts from here. */
  schedulePublishing(): void {
    const { s, clock, deliveries } = this;
    const stable = (this.#stable = this.#nodes.filter((n) => n.role === 'honest' && !this.#churn.cycling.has(n.index)));
    this.net.resetStats();
    clock.resetCounters();
    this.#baseline = new Map(this.#processes.map((n) => [n, routerTraffic(n)]));
    const payloadRng = new SeededRandom(`${s.seed}/payloads`);
    for (let k = 0; k < s.messages; k++) {
      const at = s.warmupMs + (k * 1000) / s.ratePerSecond;
      const from = stable[uniformInt(this.#rng, stable.length)]!;
      const payload = payloadRng.bytes(s.messageBytes);
      new DataView(payload.buffer).setUint32(0, k);
      payload[4] = 0; // never the invalid marker
      deliveries.publisher[k] = from.index;
      clock.schedule(at, () => {
        deliveries.published(k, from.index, clock.now());
        from.gossip.publish(TOPIC, payload);
      });
    }
  }

  /** Churn's leaves and restarts, then the partition's split and heal. */
  scheduleFaults(): void {
    this.#churn.schedule(this, this.#edges, this.pubEnd, this.end);
    this.#partition.schedule(this.clock, this.net, this.#nodes, this.deliveries, (i) => this.#roles[i] !== 'dropper' && this.#churn.isUp(i));
  }

  /** Figures at the run's end, before anything stops. */
  measure(): EndFigures {
    const written = this.net.stats().bytesWritten;
    const events = this.clock.eventsFired;
    const traffic = this.#traffic();
    const up = this.#nodes.filter((n) => this.#churn.isUp(n.index));
    const connections = up.reduce((a, n) => a + n.node.peers().filter((p) => p.state === 'active').length, 0) / 2;
    const mesh = up.filter((n) => n.role === 'honest').map((n) => n.gossip.router.meshPeers(TOPIC).length).sort((a, b) => a - b);
    const { latencies, heldLatencies } = this.deliveries.latencies(this.#stable, (at) => this.#partition.held(at));
    const diameterMs = diameter(up, this.s);
    const spamCloses = this.#spam!.closes();
    const heapMb = process.memoryUsage().heapUsed / 2 ** 20;
    return { written, events, traffic, connections, mesh, latencyMs: summary(latencies), heldLatencies, diameterMs, spamCloses, heapMb };
  }

  /** Router counters of every non-spammer process since publishing began, summed. */
  #traffic(): number[] {
    const traffic = [0, 0, 0, 0];
    for (const n of this.#processes) {
      if (n.role === 'spammer') continue;
      const now = routerTraffic(n);
      const before = this.#baseline.get(n) ?? [0, 0, 0, 0];
      for (let j = 0; j < 4; j++) traffic[j]! += now[j]! - before[j]!;
    }
    return traffic;
  }

  /** Waits for the processes that left, then stops every latest one, driving the clock (stops wait for GOODBYEs on virtual time); rethrows a churn fault. */
  async stop(): Promise<void> {
    await drive(this.clock, Promise.allSettled(this.#churn.stopping));
    for (const n of this.#nodes) n.gossip.stop();
    await drive(this.clock, Promise.allSettled(this.#nodes.map((n) => n.node.stop())));
    if (this.#churn.faults.length > 0) throw this.#churn.faults[0] as Error;
  }

  /** The result, from `m` and what was received (the churn and partition figures, receipts and trace as of now). */
  result(m: EndFigures, wall0: number): GossipScenarioResult {
    const { s, deliveries: d } = this;
    const expected = s.messages * (this.#stable.length - 1);
    const allReceipts = d.receipts + d.churnReceipts;
    const perReceipt = (x: number): number => round(x / allReceipts, 3);
    const churn = this.#churn.figures(d.publishAt, this.end);
    const partition = this.#partition.figures(this.#stable, d, m.heldLatencies);
    return {
      nodes: s.nodes,
      honest: this.#roles.filter((r) => r === 'honest').length,
      droppers: this.#roles.filter((r) => r === 'dropper').length,
      spammers: this.#spam!.spammers,
      messages: s.messages,
      receipts: d.receipts,
      expected,
      delivery: round(d.receipts / expected, 5),
      latencyMs: m.latencyMs,
      diameterMs: round(m.diameterMs),
      targetP99Ms: round(200 + m.diameterMs),
      amplification: round(m.written / (s.messageBytes * allReceipts), 3),
      bytesWritten: m.written,
      perReceipt: { itemsSent: perReceipt(m.traffic[0]!), duplicates: perReceipt(m.traffic[1]!), ihaveIds: perReceipt(m.traffic[2]!), controlMessages: perReceipt(m.traffic[3]!) },
      mesh: { min: m.mesh[0] ?? 0, median: m.mesh[Math.floor(m.mesh.length / 2)] ?? 0, max: m.mesh.at(-1) ?? 0 },
      connections: m.connections,
      spam: this.#spam!.figures(m.spamCloses),
      ...(churn === undefined ? {} : { churn }),
      ...(partition === undefined ? {} : { partition }),
      virtualMs: this.end,
      wallMs: round(performance.now() - wall0, 0),
      events: m.events,
      heapMb: round(m.heapMb, 1),
      traceHash: d.traceHash(),
    };
  }

  /** Removes the peer-store directory. */
  removeFiles(): void {
    rmSync(this.#env.dir, { recursive: true, force: true });
  }
}
