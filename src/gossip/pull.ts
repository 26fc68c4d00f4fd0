/**
 * IWANT promises (docs/spec/gossip.md, "IHAVE and IWANT"): the ids we asked
 * one peer for, with the other peers that offered the same id. One offerer is
 * asked at a time; when it leaves or its deadline passes, the promise is
 * broken and the next offerer is asked.
 *
 * Every deadline is `now + timeoutMs` with a monotonic `now`, and a promise
 * passed on is re-inserted, so the map's insertion order is deadline order:
 * the earliest deadline is the first entry, and expiry stops at the first
 * promise still running.
 */

export interface Want {
  readonly topic: string;
  /** The peer asked now, and until when it has to deliver. */
  readonly peer: string;
  readonly deadline: number;
  /** Others that offered the id, asked next in order. */
  readonly alternates: readonly string[];
}

interface Entry {
  readonly topic: string;
  peer: string;
  deadline: number;
  readonly alternates: string[];
}

/** Ask `peer` for the id `key` (an IWANT to send). */
export type Ask = readonly [key: string, peer: string];

export class PullTracker {
  readonly #wanted = new Map<string, Entry>();
  readonly #timeoutMs: number;
  readonly #maxWanted: number;
  readonly #maxAlternates: number;

  constructor(timeoutMs: number, maxWanted = 20_000, maxAlternates = 8) {
    this.#timeoutMs = timeoutMs;
    this.#maxWanted = maxWanted;
    this.#maxAlternates = maxAlternates;
  }

  get size(): number {
    return this.#wanted.size;
  }

  get(key: string): Want | undefined {
    return this.#wanted.get(key);
  }

  /**
   * `peer` offers `key`: 'asked' if we now ask it (send IWANT), 'noted' if
   * another peer is already asked (this one is kept as an alternate), 'skipped'
   * if `mayAsk` is false or the table is full.
   */
  offer(key: string, topic: string, peer: string, now: number, mayAsk: boolean): 'asked' | 'noted' | 'skipped' {
    const w = this.#wanted.get(key);
    if (w !== undefined) {
      if (w.peer !== peer && !w.alternates.includes(peer) && w.alternates.length < this.#maxAlternates) w.alternates.push(peer);
      return 'noted';
    }
    if (!mayAsk || this.#wanted.size >= this.#maxWanted) return 'skipped';
    this.#wanted.set(key, { topic, peer, deadline: now + this.#timeoutMs, alternates: [] });
    return 'asked';
  }

  /** The item arrived: the promise ends. Returns it (who offered the item), if there was one. */
  settle(key: string): Want | undefined {
    const w = this.#wanted.get(key);
    this.#wanted.delete(key);
    return w;
  }

  /** `peer` left: it is no alternate any more, and its promises pass to the next offerer. */
  peerLeft(peer: string, now: number): Ask[] {
    const asks: Ask[] = [];
    for (const [key, w] of [...this.#wanted]) {
      const i = w.alternates.indexOf(peer);
      if (i >= 0) w.alternates.splice(i, 1);
      if (w.peer === peer) this.#next(key, w, now, asks);
    }
    return asks;
  }

  /** Promises past their deadline: how many each peer broke, and the next offerers to ask. */
  expire(now: number): { broken: Map<string, number>; asks: Ask[] } {
    const broken = new Map<string, number>();
    const asks: Ask[] = [];
    for (const [key, w] of this.#wanted) {
      if (w.deadline > now) break;
      broken.set(w.peer, (broken.get(w.peer) ?? 0) + 1);
      this.#next(key, w, now, asks);
    }
    return { broken, asks };
  }

  nextDeadline(): number | undefined {
    for (const w of this.#wanted.values()) return w.deadline;
    return undefined;
  }

  #next(key: string, w: Entry, now: number, asks: Ask[]): void {
    this.#wanted.delete(key);
    const next = w.alternates.shift();
    if (next === undefined) return;
    w.peer = next;
    w.deadline = now + this.#timeoutMs;
    this.#wanted.set(key, w);
    asks.push([key, next]);
  }
}
