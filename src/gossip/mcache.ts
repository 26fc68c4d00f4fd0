/**
 * The message cache (GossipSub's mcache): accepted items kept for
 * `historyLength` heartbeats so IWANT can be served, and the ids of the last
 * `historyGossip` heartbeats offered by IHAVE. `shift` runs once per
 * heartbeat and forgets the oldest window.
 */

export interface CachedItem {
  readonly key: string;
  readonly id: Uint8Array;
  readonly topic: string;
  readonly payload: Uint8Array;
  /** IWANT answers given per peer (bounded by the router's retransmission limit). */
  readonly served: Map<string, number>;
  /**
   * Peers known to have it (they sent or announced it to us) or that we sent
   * or offered it to: IHAVE gossip skips them, since offering them the id
   * again is wasted bytes.
   */
  readonly holders: Set<string>;
}

export class MessageCache {
  readonly #items = new Map<string, CachedItem>();
  /** Windows of keys, newest first. */
  #windows: string[][];
  readonly #gossip: number;

  constructor(historyLength: number, historyGossip: number) {
    if (!(historyLength >= 1) || !(historyGossip >= 0) || historyGossip > historyLength) throw new RangeError('mcache needs historyLength >= 1 and 0 <= historyGossip <= historyLength');
    this.#windows = Array.from({ length: historyLength }, () => []);
    this.#gossip = historyGossip;
  }

  get size(): number {
    return this.#items.size;
  }

  put(key: string, id: Uint8Array, topic: string, payload: Uint8Array): void {
    if (this.#items.has(key)) return;
    this.#items.set(key, { key, id, topic, payload, served: new Map(), holders: new Set() });
    this.#windows[0]!.push(key);
  }

  get(key: string): CachedItem | undefined {
    return this.#items.get(key);
  }

  /** Items to offer by IHAVE for `topic`, newest window first, at most `max`. */
  gossipItems(topic: string, max: number): CachedItem[] {
    const out: CachedItem[] = [];
    for (let w = 0; w < this.#gossip && out.length < max; w++) {
      for (const k of this.#windows[w]!) {
        const it = this.#items.get(k);
        if (it !== undefined && it.topic === topic) {
          out.push(it);
          if (out.length >= max) break;
        }
      }
    }
    return out;
  }

  /** Start a new window; the oldest one's items leave the cache. */
  shift(): void {
    const last = this.#windows.pop()!;
    for (const k of last) this.#items.delete(k);
    this.#windows.unshift([]);
  }
}
