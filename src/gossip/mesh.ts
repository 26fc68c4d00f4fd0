/**
 * Mesh upkeep, run by the router's heartbeat per topic (docs/spec/gossip.md,
 * "Mesh" and "IHAVE and IWANT"): keep the mesh within D_low..D_high (score
 * and outbound quotas when pruning), replace members P3 finds silent,
 * opportunistic grafting, keep D_unchoked members pushing, and IHAVE gossip
 * to peers outside the mesh. The router supplies its state and actions
 * through `MeshHost`.
 */
import type { Reason } from '../core/errors.ts';
import type { Random } from '../core/random.ts';
import type { CachedItem } from './mcache.ts';
import type { GossipParams } from './params.ts';
import type { TopicCounters } from './scores.ts';
import type { TopicState } from './types.ts';

export interface MeshHost {
  readonly params: GossipParams;
  readonly random: Random;
  /** Heartbeats so far (periodic steps run when it is a multiple of their period). */
  readonly heartbeats: number;
  score(peer: string): number;
  /** We dialled it. */
  outbound(peer: string): boolean;
  /** May it be (or stay) in `t`'s mesh (connected, subscribed, no backoff, score)? */
  meshable(t: TopicState, peer: string, now: number): boolean;
  counters(peer: string, topic: string): TopicCounters | undefined;
  graft(t: TopicState, peer: string, now: number): void;
  prune(t: TopicState, peer: string, now: number, backoffMs: number): void;
  unchoke(t: TopicState, peer: string, now: number): void;
  penalize(peer: string, reason: Reason, detail: string): void;
  ihave(peer: string, topic: string, id: Uint8Array): void;
  shuffle<T>(a: T[]): T[];
}

export function maintainMesh(h: MeshHost, t: TopicState, now: number): void {
  const P = h.params;
  const name = t.spec.name;
  for (const id of [...t.mesh]) {
    if (h.score(id) < P.meshMinScore) {
      h.prune(t, id, now, P.pruneBackoffMs);
      continue;
    }
    // P3: a member long enough in the mesh that delivers (almost) nothing is replaced.
    const sp = t.spec.score;
    const c = h.counters(id, name);
    if (sp.meshDeliveryThreshold > 0 && !t.choke.choking.has(id) && c?.meshSince !== undefined && now - c.meshSince >= sp.meshDeliveryActivationMs && c.meshDeliveries < sp.meshDeliveryThreshold) {
      h.penalize(id, 'GOSSIP_MESH_DEFICIT', `${name}: ${c.meshDeliveries.toFixed(1)} deliveries < ${sp.meshDeliveryThreshold}`);
      h.prune(t, id, now, P.pruneBackoffMs);
    }
  }
  if (t.mesh.size < P.Dlo) {
    const add = h.shuffle([...t.peers].filter((id) => !t.mesh.has(id) && h.meshable(t, id, now)));
    for (const id of add.slice(0, P.D - t.mesh.size)) h.graft(t, id, now);
  }
  if (t.mesh.size > P.Dhi) {
    const keep = keepOnPrune(h, t);
    for (const id of [...t.mesh]) if (!keep.has(id)) h.prune(t, id, now, P.pruneBackoffMs);
  }
  if (t.mesh.size >= P.Dlo) {
    const have = [...t.mesh].filter((id) => h.outbound(id)).length;
    if (have < P.Dout) {
      const add = h.shuffle([...t.peers].filter((id) => !t.mesh.has(id) && h.outbound(id) && h.meshable(t, id, now)));
      for (const id of add.slice(0, P.Dout - have)) h.graft(t, id, now);
    }
  }
  opportunisticGraft(h, t, now);
  // Keep D_unchoked members pushing.
  if (t.choke.enabled) for (const id of t.choke.refill(t.mesh, h.random)) h.unchoke(t, id, now);
}

/** An oversized mesh keeps the D_score best, then random others up to D, with at least D_out outbound. */
function keepOnPrune(h: MeshHost, t: TopicState): Set<string> {
  const P = h.params;
  const ranked = [...t.mesh].sort((a, b) => h.score(b) - h.score(a));
  const keep = new Set(ranked.slice(0, P.Dscore));
  for (const id of h.shuffle(ranked.slice(P.Dscore))) {
    if (keep.size >= P.D) break;
    keep.add(id);
  }
  const outbound = (s: Iterable<string>): number => [...s].filter((id) => h.outbound(id)).length;
  if (outbound(keep) < P.Dout) {
    for (const id of ranked) {
      if (outbound(keep) >= P.Dout) break;
      if (keep.has(id) || !h.outbound(id)) continue;
      const drop = [...keep].reverse().find((k) => !h.outbound(k) && ranked.indexOf(k) >= P.Dscore);
      if (drop === undefined) break;
      keep.delete(drop);
      keep.add(id);
    }
  }
  return keep;
}

/** Opportunistic grafting: every so many heartbeats, a mesh of poor peers takes on better ones. */
function opportunisticGraft(h: MeshHost, t: TopicState, now: number): void {
  const P = h.params;
  if (P.opportunisticGraftTicks > 0 && h.heartbeats % P.opportunisticGraftTicks === 0 && t.mesh.size > 1) {
    const scores = [...t.mesh].map((id) => h.score(id)).sort((a, b) => a - b);
    const median = scores[Math.floor(scores.length / 2)]!;
    if (median < P.opportunisticGraftScore) {
      const better = h.shuffle([...t.peers].filter((id) => !t.mesh.has(id) && h.meshable(t, id, now) && h.score(id) > median));
      for (const id of better.slice(0, P.opportunisticGraftPeers)) h.graft(t, id, now);
    }
  }
}

/**
 * IHAVE with the recent ids to D_lazy (or gossipFactor of the) peers
 * outside the mesh and fanout, each offered the ids it is not known to hold.
 */
export function emitGossip(h: MeshHost, t: TopicState, items: readonly CachedItem[]): void {
  if (items.length === 0) return;
  const inner = t.subscribed ? t.mesh : (t.fanout ?? new Set());
  const eligible = [...t.peers].filter((id) => !inner.has(id) && h.score(id) >= h.params.gossipMinScore);
  const n = Math.max(h.params.Dlazy, Math.floor(eligible.length * h.params.gossipFactor));
  for (const id of h.shuffle(eligible).slice(0, n)) {
    const fresh = items.filter((it) => !it.holders.has(id));
    // A random subset only when there are more ids than one IHAVE may carry.
    const offer = fresh.length > h.params.maxIHaveLength ? h.shuffle(fresh).slice(0, h.params.maxIHaveLength) : fresh;
    for (const it of offer) {
      it.holders.add(id);
      h.ihave(id, t.spec.name, it.id);
    }
  }
}
