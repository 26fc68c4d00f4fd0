/**
 * Per-topic peer counters (GossipSub v1.1's P1–P4 on pqnet's scale): time in
 * the mesh, first deliveries, mesh deliveries and invalid deliveries, per
 * peer and topic. The router turns increases of P1 and P2 into rewards and
 * invalid deliveries into penalties on the peer's 0–100 score (that is how
 * topic scores feed the peer score), prunes mesh members P3 finds silent, and
 * reports the topic score in the gossip status.
 */
import type { TopicScoreParams } from './topics.ts';

export interface TopicCounters {
  /** When the peer joined our mesh for this topic; undefined when not in it. */
  meshSince: number | undefined;
  /** P1 points already rewarded for this stay (up to meshTimeCap). */
  meshTimePoints: number;
  /** P2: decaying count of first deliveries of valid items. */
  firstDeliveries: number;
  /** P3: decaying count of items delivered first or within the window while in the mesh. */
  meshDeliveries: number;
  /** P4: decaying count of invalid items. */
  invalid: number;
  /** P2 points not yet paid out as a reward. */
  pendingReward: number;
}

export interface TopicScore {
  readonly topic: string;
  readonly inMeshMs: number;
  readonly firstDeliveries: number;
  readonly meshDeliveries: number;
  readonly invalid: number;
  /** weight × (P1 + P2 − invalidWeight × invalid²): positive is good. */
  readonly score: number;
}

export class TopicScores {
  readonly #byPeer = new Map<string, Map<string, TopicCounters>>();

  counters(peer: string, topic: string): TopicCounters {
    let m = this.#byPeer.get(peer);
    if (m === undefined) this.#byPeer.set(peer, (m = new Map()));
    let c = m.get(topic);
    if (c === undefined) m.set(topic, (c = { meshSince: undefined, meshTimePoints: 0, firstDeliveries: 0, meshDeliveries: 0, invalid: 0, pendingReward: 0 }));
    return c;
  }

  peek(peer: string, topic: string): TopicCounters | undefined {
    return this.#byPeer.get(peer)?.get(topic);
  }

  forget(peer: string): void {
    this.#byPeer.delete(peer);
  }

  firstDelivery(peer: string, topic: string, p: TopicScoreParams): void {
    const c = this.counters(peer, topic);
    if (c.firstDeliveries < p.firstDeliveryCap) {
      const add = Math.min(1, p.firstDeliveryCap - c.firstDeliveries);
      c.firstDeliveries += add;
      c.pendingReward += add * p.firstDeliveryPoints;
    }
  }

  /**
   * One heartbeat: decay the counters and return the reward each peer earned
   * since the last one (P1 growth while in the mesh, P2 first deliveries), weighted.
   */
  heartbeat(now: number, params: (topic: string) => TopicScoreParams | undefined): Map<string, number> {
    const rewards = new Map<string, number>();
    for (const [peer, topics] of this.#byPeer) {
      let reward = 0;
      for (const [topic, c] of topics) {
        const p = params(topic);
        if (p === undefined) continue;
        if (c.meshSince !== undefined) {
          const earned = Math.min(p.meshTimeCap, (now - c.meshSince) / p.meshTimeQuantumMs);
          if (earned > c.meshTimePoints) {
            c.pendingReward += earned - c.meshTimePoints;
            c.meshTimePoints = earned;
          }
        }
        reward += c.pendingReward * p.weight;
        c.pendingReward = 0;
        c.firstDeliveries = decay(c.firstDeliveries, p.firstDeliveryDecay);
        c.meshDeliveries = decay(c.meshDeliveries, p.meshDeliveryDecay);
        c.invalid = decay(c.invalid, p.invalidDecay);
        if (c.meshSince === undefined && c.firstDeliveries === 0 && c.meshDeliveries === 0 && c.invalid === 0) topics.delete(topic);
      }
      if (reward > 0) rewards.set(peer, reward);
      if (topics.size === 0) this.#byPeer.delete(peer);
    }
    return rewards;
  }

  snapshot(peer: string, now: number, params: (topic: string) => TopicScoreParams | undefined): TopicScore[] {
    const out: TopicScore[] = [];
    for (const [topic, c] of this.#byPeer.get(peer) ?? []) {
      const p = params(topic);
      if (p === undefined) continue;
      const p1 = c.meshSince === undefined ? 0 : Math.min(p.meshTimeCap, (now - c.meshSince) / p.meshTimeQuantumMs);
      const p2 = c.firstDeliveries * p.firstDeliveryPoints;
      out.push({
        topic,
        inMeshMs: c.meshSince === undefined ? 0 : now - c.meshSince,
        firstDeliveries: round2(c.firstDeliveries),
        meshDeliveries: round2(c.meshDeliveries),
        invalid: round2(c.invalid),
        score: round2(p.weight * (p1 + p2 - p.invalidWeight * c.invalid * c.invalid)),
      });
    }
    return out;
  }
}

/** Multiply by `factor`; a counter this close to 0 becomes 0 (so idle entries can go). */
function decay(x: number, factor: number): number {
  const y = x * factor;
  return y < 0.01 ? 0 : y;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
