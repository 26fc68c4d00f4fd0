/**
 * A partition in a gossip scenario (`PartitionSpec`): which side each node
 * is on, the split and heal on the network at their times (bytes across the
 * cut are held, as TCP would retransmit them, not lost), the connected
 * components of each side at the split, and the partition figures
 * (`PartitionResult`).
 */
import { SeededRandom } from '../src/core/random.ts';
import type { VirtualClock } from './clock.ts';
import type { Deliveries } from './deliveries.ts';
import type { SimNetwork } from './network.ts';
import { shuffled } from './plan.ts';
import type { GossipScenario, PartitionResult } from './scenario-types.ts';
import type { SimNode } from './sim-node.ts';
import { round, summary } from './_stats.ts';

/** Side of each node: 0 for `partition.share` of them (from the seed), else 1. */
export function pickSides(s: GossipScenario): Uint8Array {
  const side = new Uint8Array(s.nodes).fill(1);
  if (s.partition === undefined) return side;
  const order = shuffled(Array.from({ length: s.nodes }, (_, i) => i), new SeededRandom(`${s.seed}/partition`));
  for (const i of order.slice(0, Math.round(s.partition.share * s.nodes))) side[i] = 0;
  return side;
}

/** Component id of each node in its side's graph of active connections among the nodes `member` admits (-1: not a member). */
export function sideComponents(nodes: readonly SimNode[], side: Uint8Array, member: (i: number) => boolean): Int32Array {
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

/** The partition of one run (none when the scenario has no `partition`: every node on side 1). */
export class Partition {
  readonly side: Uint8Array;
  /** Virtual times of the split and the heal. */
  readonly splitAt: number;
  readonly healAt: number;
  readonly graceMs: number;
  readonly #s: GossipScenario;
  /** Set at the split. */
  #component: Int32Array | undefined;

  constructor(s: GossipScenario, heartbeatMs: number) {
    this.#s = s;
    this.side = pickSides(s);
    const part = s.partition;
    this.splitAt = s.warmupMs + (part?.atMs ?? 0);
    this.healAt = this.splitAt + (part?.healMs ?? 0);
    this.graceMs = part?.graceMs ?? 2 * heartbeatMs;
  }

  /** Schedules the split (of `nodes`, the latest process of each node, as they are then; `member`: forwarding nodes up then) and the heal. */
  schedule(clock: VirtualClock, net: SimNetwork, nodes: readonly SimNode[], deliveries: Deliveries, member: (i: number) => boolean): void {
    if (this.#s.partition === undefined) return;
    clock.schedule(this.splitAt, () => {
      net.partition([nodes.filter((n) => this.side[n.index] === 0).map((n) => n.ip)]);
      this.#component = sideComponents(nodes, this.side, member);
      deliveries.note(`split@${clock.now()};`);
    });
    clock.schedule(this.healAt, () => {
      net.heal();
      deliveries.note(`heal@${clock.now()};`);
    });
  }

  /** An item published at `at` is held by the cut (published from `graceMs` before the split to the heal). */
  held(at: number): boolean {
    return this.#s.partition !== undefined && at >= this.splitAt - this.graceMs && at < this.healAt;
  }

  /** The partition figures over the `stable` nodes (honest, up for the whole run); `heldLatencies`: publish to receipt of the held items. */
  figures(stable: readonly SimNode[], d: Deliveries, heldLatencies: number[]): PartitionResult | undefined {
    if (this.#s.partition === undefined) return undefined;
    const N = this.#s.nodes;
    const { side } = this;
    const component = this.#component ?? new Int32Array(N).fill(-1);
    const f = this.#count(stable, d, component);
    const comps = [new Set<number>(), new Set<number>()];
    for (let i = 0; i < N; i++) if (component[i] !== -1) comps[side[i]!]!.add(component[i]!);
    const inSide0 = side.reduce((a, v) => a + (v === 0 ? 1 : 0), 0);
    return {
      sides: [inSide0, N - inSide0],
      components: [comps[0]!.size, comps[1]!.size],
      items: f.items,
      withinSide: { items: f.withinItems, expected: f.withinExpected, received: f.withinReceived, delivery: round(f.withinReceived / f.withinExpected, 5) },
      crossedBeforeHeal: f.crossedBefore,
      crossedAfterHeal: f.crossedAfter,
      deliveryAfterHeal: round(f.afterHeal / (f.items * (stable.length - 1)), 5),
      healToLastReceiptMs: round(f.lastAfterHeal),
      graceMs: this.graceMs,
      latencyMs: summary(heldLatencies),
    };
  }

  /** The receipt counts behind `figures`. */
  #count(stable: readonly SimNode[], d: Deliveries, component: Int32Array): ReceiptCounts {
    const { side, splitAt, healAt, graceMs } = this;
    const N = this.#s.nodes;
    const f: ReceiptCounts = { items: 0, withinItems: 0, withinExpected: 0, withinReceived: 0, crossedBefore: 0, crossedAfter: 0, afterHeal: 0, lastAfterHeal: 0 };
    for (let k = 0; k < this.#s.messages; k++) {
      const t = d.publishAt[k]!;
      const p = d.publisher[k]!;
      if (t >= splitAt - graceMs && t < healAt) {
        for (const n of stable) {
          const at = d.recvAt[k * N + n.index]!;
          if (n.index !== p && at >= healAt) f.lastAfterHeal = Math.max(f.lastAfterHeal, at - healAt);
        }
      }
      if (t < splitAt || t >= healAt) continue;
      f.items++;
      const within = t <= healAt - graceMs;
      if (within) f.withinItems++;
      for (const n of stable) {
        if (n.index === p) continue;
        const at = d.recvAt[k * N + n.index]!;
        const got = !Number.isNaN(at);
        if (got) f.afterHeal++;
        if (side[n.index] !== side[p]) {
          if (got && at < healAt) f.crossedBefore++;
          else if (got) f.crossedAfter++;
        } else if (within && component[n.index] !== -1 && component[n.index] === component[p]) {
          f.withinExpected++;
          if (got && at <= healAt) f.withinReceived++;
        }
      }
    }
    return f;
  }
}

interface ReceiptCounts {
  items: number;
  withinItems: number;
  withinExpected: number;
  withinReceived: number;
  crossedBefore: number;
  crossedAfter: number;
  afterHeal: number;
  lastAfterHeal: number;
}
