/**
 * One process of a gossip scenario: a real `Node` + `Gossip` on its own
 * `SimNetwork` host (one /24 per node, `sim://10.x.y.1:7000`), with the
 * scenario topic defined and subscribed. Honest validators accept an item
 * unless its first byte is `INVALID`; droppers' validator ignores every item
 * (they stay subscribed and in meshes but never forward or offer anything).
 * A restarted process keeps its identity, address and peer-store file; its
 * generators are new. Also the seeded latency of each pair of hosts and a
 * process's router counters.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { SeededRandom } from '../src/core/random.ts';
import { GOSSIP_PROTOCOL } from '../src/gossip/messages.ts';
import { Gossip } from '../src/node/gossip.ts';
import { Node } from '../src/node/node.ts';
import type { Identity } from '../src/secure/identity.ts';
import type { VirtualClock } from './clock.ts';
import type { SimNetwork } from './network.ts';
import type { GossipScenario } from './scenario-types.ts';

export const TOPIC = 'sim';
export const PORT = 7000;
/** First byte of an item that honest validators reject (spam). */
export const INVALID = 0xff;

export type Role = 'honest' | 'dropper' | 'spammer';

export interface SimNode {
  readonly index: number;
  /** Process generation: 0 for the first, +1 per restart. */
  readonly gen: number;
  readonly ip: string;
  readonly node: Node;
  readonly gossip: Gossip;
  readonly role: Role;
}

/** What every process of a run shares. */
export interface NodeEnv {
  readonly s: GossipScenario;
  readonly clock: VirtualClock;
  readonly net: SimNetwork;
  /** Directory of the peer-store files. */
  readonly dir: string;
  /** The topic's rate cap per peer, items per second. */
  readonly rate: number;
}

export function ipOf(i: number): string {
  // One /24 per node, so the per-subnet caps see distinct networks.
  return `10.${(i >> 8) & 255}.${i & 255}.1`;
}

/** Listen address of node `i`. */
export function addrOf(i: number): string {
  return `sim://${ipOf(i)}:${PORT}`;
}

/** Latency of a pair: uniform in [lo, hi), fixed by the seed and the pair. */
export function pairLatency(seed: string, a: string, b: string, lo: number, hi: number): number {
  const [x, y] = a < b ? [a, b] : [b, a];
  const h = createHash('sha3-256').update(`${seed}|${x}|${y}`).digest();
  return lo + ((h.readUInt32BE(0) / 2 ** 32) * (hi - lo));
}

/** Process `gen` of node `i` (not started). */
export function makeNode(env: NodeEnv, i: number, gen: number, role: Role, identity: Identity): SimNode {
  const { s, clock, net, dir, rate } = env;
  const ip = ipOf(i);
  // A restarted process keeps its identity, address and peer-store file; its generators are new.
  const tag = gen === 0 ? `${i}` : `${i}/${gen}`;
  const node = new Node({
    identity,
    chainId: 1,
    storePath: path.join(dir, `n${i}.sqlite`),
    listen: [addrOf(i)],
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

/** Router counters of one process: [items sent, duplicates received, ids announced, control messages sent]. */
export function routerTraffic(n: SimNode): number[] {
  const st = n.gossip.router.stats();
  const t = st.topics[TOPIC];
  let control = 0;
  for (const c of Object.values(st.control)) control += c.sent;
  return [t?.sent ?? 0, t?.received.duplicate ?? 0, st.ihaveIds, control];
}
