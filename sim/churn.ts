/**
 * Churn in a gossip scenario (`ChurnSpec`): which honest nodes cycle, the
 * processes ("lives") each goes through, the seeded leave and restart times,
 * and the churn figures (`ChurnResult`).
 *
 * A cycling node leaves at a seeded offset in [0, everyMs) after publishing
 * starts and every `everyMs` while publishing lasts, by crashing (its host
 * vanishes, peers see resets) or, with `graceful`, by `gossip.stop()` +
 * `node.stop()` (GOODBYEs); `downMs` later a fresh process (new `Node` +
 * `Gossip`, same identity, address and peer-store file, as a restarted
 * daemon) starts, re-dials its planned outbound peers and subscribes.
 */
import { SeededRandom, uniformInt } from '../src/core/random.ts';
import { GOSSIP_PROTOCOL } from '../src/gossip/messages.ts';
import type { VirtualClock } from './clock.ts';
import type { Deliveries } from './deliveries.ts';
import type { SimNetwork } from './network.ts';
import { shuffled } from './plan.ts';
import type { ChurnResult, ChurnSpec, GossipScenario } from './scenario-types.ts';
import { addrOf, type Role, type SimNode } from './sim-node.ts';
import { pct, round, summary } from './_stats.ts';

/** One process of a cycling node. */
export interface Life {
  readonly sim: SimNode;
  readonly startAt: number;
  /** First active gossip connection (the first process: 0, it was up through the warmup). */
  connectedAt: number | undefined;
  leaveAt: number | undefined;
  /** Item -> receipt time. */
  readonly got: Map<number, number>;
}

/** What leaving and restarting need from the run. */
export interface ChurnHost {
  readonly clock: VirtualClock;
  readonly net: SimNetwork;
  readonly deliveries: Deliveries;
  /** Makes process `gen` of node `i` (not started) and records it as the node's latest. */
  spawn(i: number, gen: number): SimNode;
}

/** The cycling nodes: `churn.share` of the honest ones, from the seed; at least two honest nodes stay (a publisher and a receiver). */
export function pickChurning(s: GossipScenario, roles: readonly Role[]): Set<number> {
  if (s.churn === undefined) return new Set();
  const honest = shuffled(roles.flatMap((r, i) => (r === 'honest' ? [i] : [])), new SeededRandom(`${s.seed}/churn/nodes`));
  const n = Math.round(s.churn.share * honest.length);
  if (honest.length - n < 2) throw new RangeError(`gossip scenario: churn.share ${s.churn.share} leaves fewer than two honest nodes up`);
  return new Set(honest.slice(0, n));
}

/** The churn of one run (none when the scenario has no `churn`: no node cycles). */
export class Churn {
  /** Cycling nodes, in their seeded order. */
  readonly cycling: Set<number>;
  /** Every process of a cycling node, in start order. */
  readonly lives: Life[] = [];
  /** Stops of the processes that left, and what they threw. */
  readonly stopping: Promise<unknown>[] = [];
  readonly faults: unknown[] = [];
  readonly #s: GossipScenario;
  readonly #heartbeatMs: number;
  /** Cycling node -> its latest process. */
  readonly #current = new Map<number, Life>();
  #left = 0;
  #joined = 0;

  constructor(s: GossipScenario, roles: readonly Role[], heartbeatMs: number) {
    this.#s = s;
    this.#heartbeatMs = heartbeatMs;
    this.cycling = pickChurning(s, roles);
  }

  /** Starts a life for a new process of a cycling node (undefined for other nodes) and watches for its first gossip connection. */
  begin(n: SimNode, clock: VirtualClock): Life | undefined {
    if (!this.cycling.has(n.index)) return undefined;
    const life: Life = { sim: n, startAt: clock.now(), connectedAt: n.gen === 0 ? 0 : undefined, leaveAt: undefined, got: new Map() };
    this.lives.push(life);
    this.#current.set(n.index, life);
    n.node.on('peer:active', (p) => {
      if (life.connectedAt === undefined && p.protocols.includes(GOSSIP_PROTOCOL)) life.connectedAt = clock.now();
    });
    return life;
  }

  /** Node `i`'s latest process has not left (always, for a node that does not cycle). */
  isUp(i: number): boolean {
    return this.#current.get(i)?.leaveAt === undefined;
  }

  /** Schedules every leave and restart: from the warmup's end to `pubEnd`, restarts before `end`; fresh processes re-dial their `edges`. */
  schedule(host: ChurnHost, edges: readonly (readonly [number, number])[], pubEnd: number, end: number): void {
    const c = this.#s.churn;
    if (c === undefined) return;
    const outboundOf = new Map<number, number[]>();
    for (const [a, b] of edges) outboundOf.set(a, [...(outboundOf.get(a) ?? []), b]);
    const churnRng = new SeededRandom(`${this.#s.seed}/churn/times`);
    for (const i of this.cycling) {
      for (let t = this.#s.warmupMs + uniformInt(churnRng, Math.ceil(c.everyMs)); t < pubEnd; t += c.everyMs) {
        host.clock.schedule(t, () => this.#leave(host, c, i));
        if (t + c.downMs < end) host.clock.schedule(t + c.downMs, () => this.#join(host, i, outboundOf.get(i) ?? []));
      }
    }
  }

  #leave(host: ChurnHost, c: ChurnSpec, i: number): void {
    const { clock, net, deliveries } = host;
    const life = this.#current.get(i)!;
    const n = life.sim;
    life.leaveAt = clock.now();
    this.#left++;
    deliveries.note(`leave:${i}@${clock.now()};`);
    n.gossip.stop();
    if (c.graceful !== true) net.disconnectHost(n.ip);
    this.stopping.push(n.node.stop().catch((e: unknown) => this.faults.push(e)));
  }

  #join(host: ChurnHost, i: number, outbound: readonly number[]): void {
    const n = host.spawn(i, this.#current.get(i)!.sim.gen + 1);
    this.#joined++;
    host.deliveries.note(`join:${i}@${host.clock.now()};`);
    n.node.start().then(
      () => {
        for (const b of outbound) n.node.connect(addrOf(b)).catch(() => undefined);
      },
      (e: unknown) => this.faults.push(e),
    );
  }

  /** The churn figures (see `ChurnResult`), with items published at `publishAt` and the run ending at `end`. */
  figures(publishAt: readonly number[], end: number): ChurnResult | undefined {
    const c = this.#s.churn;
    if (c === undefined) return undefined;
    const settleMs = c.settleMs ?? 0;
    const graceMs = c.graceMs ?? this.#heartbeatMs;
    let expected = 0;
    let received = 0;
    let outside = 0;
    const latencies: number[] = [];
    const connect: number[] = [];
    for (const life of this.lives) {
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
      nodes: this.cycling.size,
      graceful: c.graceful === true,
      left: this.#left,
      joined: this.#joined,
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
}
